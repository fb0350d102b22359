import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ProblemError } from '../lib/problem.js'
import { StoreUnavailableError } from '../store/errors.js'

export interface Lifecycle {
  /** set first on shutdown: readiness fails so load balancers stop sending, requests are still served */
  draining: boolean
  /** set once the server is closing: requests still arriving on open connections get a 503 */
  closing: boolean
  /**
   * why this process must not serve yet (its store's persistence not checked or found unsafe,
   * its signing keys not read yet): every request but liveness gets a 503 with this code and
   * detail until every reason is released
   */
  readonly holding: Holding | undefined
  /** holds the process for `reason` (one hold per reason; a second call replaces the first) */
  hold(reason: string, why: Holding): void
  release(reason: string): void
  /**
   * Start-up work that needs the store (reading the signing keys, registering the admin
   * agency): done now if the store answers; if it does not, the process holds and tries again
   * every second until it does. Any other error stops the start, as it did before.
   */
  whenStoreAnswers(what: string, work: () => Promise<void>): Promise<void>
}

export interface Holding {
  code: string
  detail: string
}

/** how often start-up work the store refused is tried again */
const RETRY_MS = 1000

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
  const reasons = new Map<string, Holding>()
  const timers = new Set<NodeJS.Timeout>()
  const lifecycle: Lifecycle = {
    draining: false,
    closing: false,
    get holding () { return reasons.values().next().value },
    hold (reason, why) { reasons.set(reason, why) },
    release (reason) { reasons.delete(reason) },
    async whenStoreAnswers (what, work) {
      try {
        await work()
        return
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err
      }
      const reason = `store:${what}`
      app.log.warn(`the store does not answer at start: ${what} not done yet; every request but liveness gets a 503 until it is (trying again every second)`)
      lifecycle.hold(reason, { code: 'store_unavailable', detail: 'the gateway cannot reach its store yet; retry shortly' })
      const retry = (): void => {
        const timer = setTimeout(() => {
          timers.delete(timer)
          work().then(() => {
            lifecycle.release(reason)
            app.log.info(`the store answers: ${what} done`)
          }, (err: unknown) => {
            if (!(err instanceof StoreUnavailableError)) app.log.error({ err }, `${what} failed; trying again every second`)
            retry()
          })
        }, RETRY_MS)
        timer.unref()
        timers.add(timer)
      }
      retry()
    }
  }
  app.decorate('lifecycle', lifecycle)
  app.addHook('onClose', async () => { for (const timer of timers) clearTimeout(timer) })
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
