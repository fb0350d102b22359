import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ProblemError } from '../lib/problem.js'

export interface Lifecycle {
  /** set first on shutdown: readiness fails so load balancers stop sending, requests are still served */
  draining: boolean
  /** set once the server is closing: requests still arriving on open connections get a 503 */
  closing: boolean
  /**
   * why this process must not serve yet (its store's persistence not checked, or found unsafe):
   * every request but liveness gets a 503 with this code and detail until it is cleared
   */
  holding: { code: string, detail: string } | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

/**
 * Graceful shutdown, step by step: drain (readiness 503), close (refuse new requests with a
 * problem body and `Connection: close`, let in-flight ones finish), then close the store. And
 * holding: a process that may not serve yet answers 503 to everything but liveness.
 */
async function lifecyclePlugin (app: FastifyInstance): Promise<void> {
  const lifecycle: Lifecycle = { draining: false, closing: false, holding: undefined }
  app.decorate('lifecycle', lifecycle)
  app.addHook('preClose', async () => {
    lifecycle.draining = true
    lifecycle.closing = true
  })
  app.addHook('onRequest', async (request, reply) => {
    if (!lifecycle.closing && !lifecycle.holding) return
    const path = request.url.split('?')[0]
    if (lifecycle.closing) reply.header('connection', 'close')
    // readiness answers draining or holding itself, in its own shape (routes/health)
    if (path === '/health/ready') return
    if (lifecycle.closing) {
      throw new ProblemError(503, 'shutting_down', 'this gateway process is shutting down; retry, another one will answer', {
        headers: { 'retry-after': '1' }
      })
    }
    if (path === '/health/live') return
    const holding = lifecycle.holding as NonNullable<Lifecycle['holding']>
    throw new ProblemError(503, holding.code, holding.detail, { headers: { 'retry-after': '1' } })
  })
}

export default fp(lifecyclePlugin, { name: 'lifecycle' })
