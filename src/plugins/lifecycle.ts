import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ProblemError } from '../lib/problem.js'

export interface Lifecycle {
  /** set first on shutdown: readiness fails so load balancers stop sending, requests are still served */
  draining: boolean
  /** set once the server is closing: requests still arriving on open connections get a 503 */
  closing: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

/**
 * Graceful shutdown, step by step: drain (readiness 503), close (refuse new requests with a
 * problem body and `Connection: close`, let in-flight ones finish), then close the store.
 */
async function lifecyclePlugin (app: FastifyInstance): Promise<void> {
  const lifecycle: Lifecycle = { draining: false, closing: false }
  app.decorate('lifecycle', lifecycle)
  app.addHook('preClose', async () => {
    lifecycle.draining = true
    lifecycle.closing = true
  })
  app.addHook('onRequest', async (request, reply) => {
    if (!lifecycle.closing) return
    reply.header('connection', 'close')
    throw new ProblemError(503, 'shutting_down', 'this gateway process is shutting down; retry, another one will answer', {
      headers: { 'retry-after': '1' }
    })
  })
}

export default fp(lifecyclePlugin, { name: 'lifecycle' })
