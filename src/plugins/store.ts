import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from '../config.js'
import { StoreUnavailableError } from '../store/index.js'
import type { Persistence, Stores } from '../store/index.js'
import { tracedStores } from '../lib/traced-stores.js'

declare module 'fastify' {
  interface FastifyInstance {
    stores: Stores
  }
}

export interface StorePluginOptions {
  store: Stores
  /** close the store with the app (false when the caller owns it, as tests sharing one store do) */
  closeWithApp: boolean
}

/** how often persistence is checked again while it could not be read (Redis not reachable yet) */
const RECHECK_MS = 1000

/** What Redis persistence settings lose in a crash; undefined when an acknowledged write survives one. */
export function durabilityGap (persistence: Persistence): string | undefined {
  if (!persistence.aof) {
    return persistence.rdb
      ? 'appendonly is no: only RDB snapshots are taken, so every write since the last snapshot is lost when Redis stops'
      : 'appendonly is no and no snapshot is taken: every write is lost when Redis stops'
  }
  if (persistence.appendfsync === 'no') return 'appendfsync is no: acknowledged writes reach the disk when the operating system decides, the last seconds are lost in a crash'
  return undefined
}

const HOW_TO_FIX = 'Run Redis with "appendonly yes" and "appendfsync always" (docs/production.md, "Redis settings for durability"), or set ALLOW_NO_PERSISTENCE=true to start anyway.'

/**
 * Makes the store available to services and, at the first moment it answers, says how durable
 * it is: the embedded store keeps nothing, and Redis without AOF loses acknowledged writes
 * on a crash.
 *
 * In production (unless ALLOW_NO_PERSISTENCE=true) a Redis that would lose acknowledged writes
 * stops the start, with a message naming the settings to use. A Redis that cannot be reached at
 * start cannot be checked: the process starts, holds every request but liveness (503, readiness
 * included) and checks again every second; once the settings are read it serves, or, in
 * production, keeps holding with an error logged if they are unsafe (CONFIG SET appendonly yes
 * then releases it).
 */
async function storePlugin (app: FastifyInstance, options: StorePluginOptions): Promise<void> {
  const { store } = options
  // with tracing on, the services' store calls are spans (lib/traced-stores.ts)
  app.decorate('stores', app.config.tracing ? tracedStores(store) : store)
  if (options.closeWithApp) app.addHook('onClose', async () => await store.close())

  if (store.kind === 'memory') {
    app.log.warn('EMBEDDED IN-MEMORY STORE: nothing is kept when this process stops. Set REDIS_URL (or REDIS_CLUSTER_NODES) to keep data.')
    return
  }
  const enforce = app.config.nodeEnv === 'production' && !app.config.allowNoPersistence
  const production = app.config.nodeEnv === 'production'

  /** the settings, or undefined while Redis cannot be reached; anything else (CONFIG refused) throws */
  const read = async (): Promise<Persistence | undefined> => {
    try {
      return await store.persistence()
    } catch (err) {
      if (err instanceof StoreUnavailableError) return undefined
      throw err
    }
  }

  let timer: NodeJS.Timeout | undefined
  let foundUnsafe = false
  app.addHook('onClose', async () => clearTimeout(timer))

  /** settings that lose acknowledged writes, where that does not stop the start: said as a warning */
  const warnAbout = (persistence: Persistence, gap: string): void => {
    if (production) {
      app.log.warn({ persistence }, `Redis does not keep acknowledged writes across a crash (${gap}); starting anyway because ALLOW_NO_PERSISTENCE=true`)
    } else if (!persistence.aof) {
      app.log.warn({ persistence }, 'Redis has AOF persistence off: acknowledged writes can be lost in a crash. Run Redis with appendonly yes (see docs/production.md).')
    } else {
      app.log.warn({ persistence }, 'Redis AOF uses appendfsync no: the last seconds of acknowledged writes can be lost in a crash')
    }
  }

  /** while holding: check again until the settings can be read */
  const recheck = (): void => {
    timer = setTimeout(() => {
      read().then((persistence) => {
        if (persistence === undefined) return recheck()
        const gap = durabilityGap(persistence)
        if (gap === undefined) {
          app.lifecycle.release('persistence')
          app.log.info({ persistence }, 'Redis persistence checked: acknowledged writes survive a crash; serving')
          return
        }
        if (!enforce) {
          app.lifecycle.release('persistence')
          warnAbout(persistence, gap)
          return
        }
        if (!foundUnsafe) {
          foundUnsafe = true
          app.log.error({ persistence }, `Redis does not keep acknowledged writes across a crash (${gap}); this gateway serves nothing until it does. ${HOW_TO_FIX}`)
        }
        app.lifecycle.hold('persistence', { code: 'store_not_durable', detail: 'the gateway\'s store is not configured to keep acknowledged writes across a crash; the operator has been told' })
        recheck()
      }, (err: unknown) => {
        if (!enforce) {
          app.lifecycle.release('persistence')
          app.log.warn({ err }, 'could not read Redis persistence settings (CONFIG GET refused); make sure Redis runs with appendonly yes')
          return
        }
        app.log.error({ err }, `could not read Redis persistence settings; this gateway serves nothing until it can. ${HOW_TO_FIX}`)
        recheck()
      })
    }, RECHECK_MS)
    timer.unref()
  }

  app.addHook('onReady', async () => {
    let persistence: Persistence | undefined
    try {
      persistence = await read()
    } catch (err) {
      const why = `could not read Redis persistence settings (CONFIG GET refused: ${(err as Error).message})`
      if (enforce) throw new ConfigError(`${why}. Allow CONFIG GET to the gateway, or, if the provider guarantees AOF with appendfsync always, set ALLOW_NO_PERSISTENCE=true`)
      app.log.warn(`${why}; make sure Redis runs with appendonly yes`)
      return
    }
    if (persistence === undefined) {
      // outside production too: a process that cannot reach its store is not ready for traffic
      app.log.warn(enforce
        ? 'Redis unreachable at start: its persistence settings cannot be checked; every request but liveness gets a 503 until they are'
        : 'Redis unreachable at start: every request but liveness gets a 503 until it answers')
      app.lifecycle.hold('persistence', { code: 'store_unavailable', detail: 'the gateway has not been able to check its store yet; retry shortly' })
      recheck()
      return
    }
    const gap = durabilityGap(persistence)
    if (gap === undefined) return
    if (enforce) throw new ConfigError(`Redis does not keep acknowledged writes across a crash (${gap}). ${HOW_TO_FIX}`)
    warnAbout(persistence, gap)
  })
}

export default fp(storePlugin, { name: 'store', dependencies: ['lifecycle'] })
