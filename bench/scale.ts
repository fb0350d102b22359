import { benchGateway, CPUS, load } from './lib.js'
import type { BenchGateway, BenchRedis, LoadFigures } from './lib.js'
import type { ReuseSetup } from './reuse.js'

/**
 * Scale-out: a second gateway process on the same Redis (on the other CPU), both loaded at once
 * with the same reuse query, half the connections each, against the first alone. On a
 * two-CPU machine the second gateway shares its CPU with Redis and the load generator, so the
 * figure understates what two free cores give.
 */
export async function benchScale (first: BenchGateway, redis: BenchRedis, setup: ReuseSetup, seconds: number, connections: number): Promise<{ one: LoadFigures, two: LoadFigures }> {
  const one = await load({ url: setup.url, body: setup.body, headers: setup.headers, seconds, connections })
  const second = await benchGateway(redis, CPUS?.second, { OUTBOX_WORKER: 'false' })
  try {
    const path = new URL(setup.url).pathname
    const plan = { body: setup.body, headers: setup.headers, seconds, connections: Math.ceil(connections / 2) }
    await load({ ...plan, url: `${second.gateway.url}${path}`, seconds: 2 })
    const [a, b] = await Promise.all([load({ ...plan, url: setup.url }), load({ ...plan, url: `${second.gateway.url}${path}` })])
    return {
      one,
      two: { requestsPerSecond: a.requestsPerSecond + b.requestsPerSecond, requests: a.requests + b.requests, p50: Math.max(a.p50, b.p50), p99: Math.max(a.p99, b.p99), errors: a.errors + b.errors, non2xx: a.non2xx + b.non2xx }
    }
  } finally {
    await second.stop()
  }
}
