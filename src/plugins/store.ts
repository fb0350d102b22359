import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Store } from '../store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

export interface StorePluginOptions {
  store: Store
  /** close the store with the app (false when the caller owns it, as tests sharing one store do) */
  closeWithApp: boolean
}

/**
 * Makes the store available to services and, at the first moment it answers, says how durable
 * it is: the embedded store keeps nothing, and Redis without AOF loses acknowledged writes
 * on a crash.
 */
async function storePlugin (app: FastifyInstance, options: StorePluginOptions): Promise<void> {
  const { store } = options
  app.decorate('store', store)
  if (options.closeWithApp) app.addHook('onClose', async () => await store.close())

  if (store.kind === 'memory') {
    app.log.warn('EMBEDDED IN-MEMORY STORE: nothing is kept when this process stops. Set REDIS_URL (or REDIS_CLUSTER_NODES) to keep data.')
    return
  }
  app.addHook('onReady', async () => {
    try {
      const persistence = await store.persistence()
      if (!persistence.aof) {
        app.log.warn({ persistence }, 'Redis has AOF persistence off: acknowledged writes can be lost in a crash. Run Redis with appendonly yes (see README, "Running in production").')
      } else if (persistence.appendfsync === 'no') {
        app.log.warn({ persistence }, 'Redis AOF uses appendfsync no: the last seconds of acknowledged writes can be lost in a crash')
      }
    } catch {
      app.log.warn('could not read Redis persistence settings (Redis unreachable or CONFIG disabled)')
    }
  })
}

export default fp(storePlugin, { name: 'store' })
