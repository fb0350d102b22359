import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { RedisStores } from '../src/store/index.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, register, requestToken, tokenFor } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'

/**
 * Rate limits are the agency's, per route, whichever gateway process answers: processes on one
 * Redis share one count. Another agency, or another route, has a count of its own; the count
 * starts again once the window is over; Redis going away never turns the limiter into an error.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

let stores = 0
/** Gateways of one deployment: stores of their own, on one Redis, with one key prefix. */
async function deployment (t: Test, processes: number): Promise<RedisStores[]> {
  const keyPrefix = `rl${process.pid}-${++stores}:`
  const out: RedisStores[] = []
  for (let i = 0; i < processes; i++) {
    const store = new RedisStores({ url: redis.url, keyPrefix, commandTimeoutMs: 1000, quitTimeoutMs: 500 })
    await store.connect()
    t.teardown(async () => await store.close())
    out.push(store)
  }
  return out
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const get = async (app: FastifyInstance, url: string, token: string) => await app.inject({ method: 'GET', url, headers: bearer(token) })

t.test('two gateway processes on one Redis share an agency\'s count; other agencies and routes keep theirs', async (t) => {
  const [storeA, storeB] = await deployment(t, 2) as [RedisStores, RedisStores]
  const admin = await makeAgency(ADMIN_CODE)
  const other = await makeAgency('000.00.07.H41')
  const env = { ...adminEnv(admin), RATE_LIMIT_PER_MINUTE: '1000', RATE_LIMIT_ROUTES: 'document-types=3', RATE_LIMIT_AGENCIES: `${other.code}=5` }
  const a = await build(t, { store: storeA, env })
  const b = await build(t, { store: storeB, env })
  const adminToken = await tokenFor(a, admin)
  await register(a, adminToken, other, ['requester'])
  const otherToken = await tokenFor(b, other)

  const remaining: string[] = []
  for (const app of [a, b, a]) {
    const res = await get(app, '/v1/document-types', adminToken)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['ratelimit-limit'], '3')
    remaining.push(String(res.headers['ratelimit-remaining']))
  }
  t.same(remaining, ['2', '1', '0'], 'the two processes counted the same three requests')

  for (const app of [b, a]) {
    const refused = await get(app, '/v1/document-types', adminToken)
    t.equal(refused.statusCode, 429, 'over the limit on either process')
    t.match(refused.headers['content-type'], /^application\/problem\+json/)
    t.equal(refused.json().code, 'rate_limited')
    t.match(refused.json().detail, ADMIN_CODE)
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After is a delay in seconds (${String(refused.headers['retry-after'])})`)
    t.equal(refused.headers['ratelimit-remaining'], '0')
  }

  t.equal((await get(a, '/v1/document-types/giay-khai-sinh', adminToken)).statusCode, 200, 'another route of the same group has its own count')
  t.equal((await get(b, '/v1/agencies', adminToken)).statusCode, 200, 'another route group has its own count')

  // the other agency: its own count, and its own quota (RATE_LIMIT_AGENCIES) on the same route
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await get(i % 2 === 0 ? a : b, '/v1/document-types', otherToken)).statusCode)
  t.same(statuses, [200, 200, 200, 200, 200, 429], 'five requests for the other agency, then 429')

  // what Redis holds: the agency code and the route under the deployment's prefix, in a hash slot of the agency's
  const keys = (await storeA.client.keys(`${storeA.key('rl:*')}*`)).sort()
  t.ok(keys.includes(storeA.key(`rl:${ADMIN_CODE}`, 'GET:/v1/document-types')), `the agency's count is ${storeA.key(`rl:${ADMIN_CODE}`, 'GET:/v1/document-types')}`)
  for (const key of keys) t.match(key, /^rl\d+-\d+:\{rl:[^}]+\}:[A-Z]+:\/[^\s]*$/, `${key}: prefix, hash tag, method and route`)
  t.notOk(keys.some((key) => key.includes('127.0.0.1')), 'no client address in clear')
})

t.test('the count starts again once the window is over', async (t) => {
  const [store] = await deployment(t, 1) as [RedisStores]
  const admin = await makeAgency(ADMIN_CODE)
  // 120 a minute over a 1 s window: 2 a window
  const app = await build(t, { store, env: { ...adminEnv(admin), RATE_LIMIT_PER_MINUTE: '1000', RATE_LIMIT_ROUTES: 'document-types=120', RATE_LIMIT_WINDOW_MS: '1000' } })
  const token = await tokenFor(app, admin)
  let refused
  for (let i = 0; i < 10 && refused === undefined; i++) {
    const res = await get(app, '/v1/document-types', token)
    if (res.statusCode === 429) refused = res
  }
  t.ok(refused, 'refused once the window\'s two requests are used')
  t.equal(refused?.headers['retry-after'], '1')
  const deadline = Date.now() + 10_000
  let status = 429
  while (status === 429 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    status = (await get(app, '/v1/document-types', token)).statusCode
  }
  t.equal(status, 200, 'served again in the next window')
})

t.test('with Redis gone the limiter lets requests through: they fail on the store (503), never with a 500', async (t) => {
  const [store] = await deployment(t, 1) as [RedisStores]
  const admin: TestAgency = await makeAgency(ADMIN_CODE)
  const app = await build(t, {
    store,
    env: { ...adminEnv(admin), RATE_LIMIT_PER_MINUTE: '2' },
    // a limited route that does not need the store: only the limiter talks to Redis here
    extra: (app) => { app.get('/test/plain', { schema: { tags: ['documents'] } }, async () => ({ ok: true })) }
  })
  t.equal((await app.inject({ method: 'GET', url: '/test/plain' })).headers['ratelimit-limit'], '2', 'the route is limited')
  const pending = await assertion(app, admin)
  await redis.stop()
  let restarted = false
  t.teardown(async () => { if (!restarted) await redis.start() })
  for (let i = 0; i < 4; i++) {
    const res = await app.inject({ method: 'GET', url: '/test/plain' })
    t.equal(res.statusCode, 200, `request ${i + 1} served without a count`)
  }
  const token = await requestToken(app, pending)
  t.equal(token.statusCode, 503, 'the token endpoint (limited per client address) fails on the store')
  t.equal(token.json().code, 'store_unavailable')
  await redis.start()
  restarted = true
})

t.test('configuration: an unknown route group stops the start; 0 turns rate limits off', async (t) => {
  await t.rejects(build(t, { env: { RATE_LIMIT_ROUTES: 'documents=10,reuse-querys=5' } }), /RATE_LIMIT_ROUTES names no route group reuse-querys/)
  const off = await build(t, { env: { RATE_LIMIT_PER_MINUTE: '0' } })
  const statuses = new Set<number>()
  for (let i = 0; i < 3; i++) {
    const res = await off.inject({ method: 'GET', url: '/v1/document-types' })
    statuses.add(res.statusCode)
    t.equal(res.headers['ratelimit-limit'], undefined, 'no rate-limit headers')
  }
  t.same([...statuses], [401], 'never 429')
})
