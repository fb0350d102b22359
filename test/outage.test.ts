import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, requestToken, tokenFor } from './lib/agencies.js'

/**
 * Redis going away under a running gateway: readiness and store-backed routes answer 503 with
 * Retry-After at once (no queueing, no hang, no crash), and everything comes back by itself.
 */
// with AOF, as in production: what was written before the outage is there after it
const redis = await startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
t.teardown(async () => await redis.destroy())

/** a route that needs the store, standing in for every store-backed endpoint */
function storeRoute (app: FastifyInstance): void {
  app.get('/test/needs-store', async () => { await app.store.ping(); return { ok: true } })
}

async function timed<T> (t: Test, what: string, operation: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint()
  const result = await operation()
  t.comment(`${what}: answered in ${Number(process.hrtime.bigint() - started) / 1e6} ms`)
  return result
}

async function waitUntilReady (app: FastifyInstance): Promise<number> {
  // bounded: the client reconnects at least once a second; 30 tries of 500 ms is generous on a loaded machine
  for (let i = 0; i < 60; i++) {
    const res = await app.inject({ method: 'GET', url: '/health/ready' })
    if (res.statusCode === 200) return i
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error('the gateway did not recover after Redis came back')
}

t.test('Redis stopped and restarted under a running gateway', async (t) => {
  const store = await testRedisStore(t, redis)
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, extra: storeRoute, env: adminEnv(admin) })
  const token = await tokenFor(app, admin)
  const agencies = async () => await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${token}` } })
  t.equal((await agencies()).statusCode, 200)
  const pendingAssertion = await assertion(app, admin)

  const before = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(before.statusCode, 200)
  t.same(before.json().store, 'redis')
  t.equal((await app.inject({ method: 'GET', url: '/test/needs-store' })).statusCode, 200)

  await redis.stop()

  const ready = await timed(t, 'readiness with Redis stopped', async () => await app.inject({ method: 'GET', url: '/health/ready' }))
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().status, 'unavailable')
  t.equal(ready.headers['retry-after'], '1')

  const routes = await timed(t, '10 concurrent store-backed requests with Redis stopped', async () =>
    await Promise.all(Array.from({ length: 10 }, async () => await app.inject({ method: 'GET', url: '/test/needs-store' }))))
  for (const res of routes) {
    t.equal(res.statusCode, 503)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal(res.json().code, 'store_unavailable')
    t.equal(res.headers['retry-after'], '1')
  }
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'the process itself is alive')
  const listing = await agencies()
  t.equal(listing.statusCode, 503, 'an authenticated API call')
  t.equal(listing.json().code, 'store_unavailable')
  const token503 = await requestToken(app, pendingAssertion)
  t.equal(token503.statusCode, 503, 'the token endpoint')
  t.equal(token503.headers['retry-after'], '1')

  await redis.start()
  const polls = await waitUntilReady(app)
  t.comment(`ready again after ${polls} polls`)
  t.equal((await app.inject({ method: 'GET', url: '/test/needs-store' })).statusCode, 200, 'store-backed routes are back')
  t.equal((await agencies()).statusCode, 200)
  t.equal((await requestToken(app, pendingAssertion)).statusCode, 200, 'the assertion was not consumed by the failed attempt')
})

t.test('a Redis that hangs (SIGSTOP) is cut off by the command timeout, not waited on', async (t) => {
  const store = await testRedisStore(t, redis, { commandTimeoutMs: 300 })
  const app = await build(t, { store, extra: storeRoute })
  t.equal((await app.inject({ method: 'GET', url: '/test/needs-store' })).statusCode, 200)
  redis.pause()
  t.teardown(() => redis.resume())
  const res = await timed(t, 'store-backed request with Redis frozen', async () => await app.inject({ method: 'GET', url: '/test/needs-store' }))
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'store_unavailable')
  redis.resume()
  await waitUntilReady(app)
  t.equal((await app.inject({ method: 'GET', url: '/test/needs-store' })).statusCode, 200)
})
