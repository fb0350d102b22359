import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import { clientAddressKey, clientNetwork } from '../lib/client-address.js'
import { ProblemError } from '../lib/problem.js'
import { RefusalLedger } from '../services/refusals.js'
import { routeGroup } from './rate-limit.js'
import { RedisStores } from '../store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    refusals: Refusals
  }
}

export interface Refusals {
  /**
   * Counts a refused request against its client address, then puts it on record (services/
   * refusals.ts). Past the address's limit it throws a 429 `rate_limited` instead of letting
   * the caller answer its 401 or 403.
   */
  refuse(request: FastifyRequest, refusal: { action: string, code: string, detail?: Record<string, unknown> }): Promise<void>
  /** writes out the refusals tallied so far (at shutdown; an audit reader that cannot wait an interval) */
  flush(): Promise<void>
}

/** client networks whose counts are kept at most in this process's memory (without Redis) */
const LOCAL_COUNTS = 10_000

// @fastify/rate-limit's two counter stores (its Lua for Redis, its bounded LRU in memory): it
// ships them, but neither exports nor declares them
const require = createRequire(import.meta.url)
const RateLimitRedisStore = require('@fastify/rate-limit/store/RedisStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, redis: unknown, key: string) => FastifyRateLimitStore
const RateLimitLocalStore = require('@fastify/rate-limit/store/LocalStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, cache: number) => FastifyRateLimitStore

/**
 * Refused requests — authentication or authorization refused in the auth hook, a token request
 * refused — cost the client's address, not the store: each address gets
 * AUTH_FAILURE_LIMIT_PER_MINUTE refusals a minute (scaled to RATE_LIMIT_WINDOW_MS), counted with
 * @fastify/rate-limit's stores, in the store's Redis when there is one so every process shares
 * the count. The count is taken before anything is written for the refusal; past it the client
 * gets 429 and the refusal is only tallied. Only refusals count: a request that authenticates is
 * never limited here, so an agency sharing an address with a client that floods keeps working
 * (its own rate limits apply, rate-limit.ts).
 */
async function refusalsPlugin (app: FastifyInstance): Promise<void> {
  const { limitPerMinute, auditIntervalMs } = app.config.refusals
  const windowMs = app.config.rateLimit.windowMs
  const max = Math.max(1, Math.ceil(limitPerMinute * windowMs / 60_000))
  const store = app.stores instanceof RedisStores ? app.stores : undefined
  const counter = limitPerMinute === 0
    ? undefined
    : store ? new RateLimitRedisStore(false, false, store.client, '') : new RateLimitLocalStore(false, false, LOCAL_COUNTS)
  // in the hash slot of the address's other counts (rate-limit.ts)
  const keyOf = (who: string): string => store ? store.key(`rl:ip:${who}`, 'refusals') : who

  const ledger = new RefusalLedger({
    record: async (input) => await app.audit.record(input),
    intervalMs: auditIntervalMs,
    onError: (err) => { app.log.warn({ err: { message: (err as Error).message } }, 'refusal summary not written to the audit trail') }
  })

  async function count (who: string): Promise<{ current: number, ttl: number } | undefined> {
    if (!counter) return undefined
    try {
      return await new Promise((resolve, reject) => {
        counter.incr(keyOf(who), (err, result) => { err || !result ? reject(err) : resolve(result) }, windowMs, max)
      })
    } catch {
      // Redis unreachable: not limited here; the refusal's audit record fails on the store anyway
      return undefined
    }
  }

  app.decorate('refusals', {
    async refuse (request: FastifyRequest, { action, code, detail }: { action: string, code: string, detail?: Record<string, unknown> }): Promise<void> {
      const who = clientAddressKey(app.config.subjectPepper, request.ip)
      const counted = await count(who)
      const limited = counted !== undefined && counted.current > max
      const actor = request.caller?.code ?? null
      await ledger.refused(`${actor ?? ''}\n${who}\n${action}\n${code}`, {
        actor,
        action,
        outcome: 'denied',
        requestId: request.id,
        clientAddress: request.ip,
        detail: { code, ...detail }
      }, { clientNetwork: clientNetwork(request.ip), limited })
      if (limited) {
        app.metrics?.rateLimited('refusals', routeGroup(request))
        const seconds = Math.max(1, Math.ceil((counted?.ttl ?? windowMs) / 1000))
        throw new ProblemError(429, 'rate_limited', `this client address has had its ${max} refused requests for this window; retry in ${seconds} s`, {
          headers: { 'retry-after': String(seconds) }
        })
      }
    },
    flush: async () => { await ledger.flush() }
  })

  app.addHook('onReady', async () => { ledger.start() })
  // runs before the audit trail and the store close (hooks run in reverse registration order)
  app.addHook('onClose', async () => { await ledger.stop() })
}

export default fp(refusalsPlugin, { name: 'refusals', dependencies: ['store', 'audit'] })
