import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, requestToken, tokenFor } from './lib/agencies.js'
import type { LightMyRequestResponse } from 'fastify'
import type { SampleDocument } from '../src/sample-data/generate.js'
import { births, indexOne, loadWorld, released, reuseQuery, verifyAudit } from './lib/load-world.js'

/**
 * Redis going away under a running gateway: readiness and store-backed routes answer 503 with
 * Retry-After at once (no queueing, no hang, no crash), and everything comes back by itself.
 */
// with AOF, as in production: what was written before the outage is there after it
const redis = await startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
t.teardown(async () => await redis.destroy())

/** a route that needs the store, standing in for every store-backed endpoint */
function storeRoute (app: FastifyInstance): void {
  app.get('/test/needs-store', async () => { await app.stores.ping(); return { ok: true } })
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

t.test('Redis stopped and started under a steady load of reuse queries and registrations', async (t) => {
  const commandTimeoutMs = 500
  const store = await testRedisStore(t, redis, { commandTimeoutMs })
  const w = await loadWorld(t, store)
  const people = births(40, 7301)
  const seeded = await Promise.all(people.map(async (doc) => (await indexOne(w, doc)).statusCode))
  t.ok(seeded.every((status) => status === 201), 'the people whose results are queried are indexed')
  const fresh = births(4000, 7302)

  // A request makes a handful of store round trips one after the other, each cut off at the
  // command timeout: one still pending well past that has hung.
  const hungAfterMs = 10 * commandTimeoutMs + 5000
  interface Answer { kind: 'reuse' | 'index', res: LightMyRequestResponse | 'hung', phase: 'before' | 'down' | 'after', doc?: SampleDocument }
  const answers: Answer[] = []
  let phase: Answer['phase'] = 'before'
  const timed = async (request: Promise<LightMyRequestResponse>): Promise<LightMyRequestResponse | 'hung'> => {
    let timer: NodeJS.Timeout | undefined
    const hung = new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), hungAfterMs) })
    try { return await Promise.race([request, hung]) } finally { clearTimeout(timer) }
  }
  let stop = false
  let n = 0
  const worker = async (): Promise<void> => {
    while (!stop) {
      const i = n++
      const started = phase
      if (i % 2 === 0) {
        answers.push({ kind: 'reuse', res: await timed(reuseQuery(w, (people[i % people.length] as SampleDocument).subject.id)), phase: started })
      } else {
        const doc = fresh[i % fresh.length] as SampleDocument
        answers.push({ kind: 'index', res: await timed(indexOne(w, doc)), phase: started, doc })
      }
    }
  }
  const workers = Array.from({ length: 20 }, worker)
  const waitFor = async (what: string, done: () => boolean): Promise<void> => {
    for (let i = 0; !done(); i++) {
      if (i > 600) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  try {
    await waitFor('answers before the outage', () => answers.length >= 150)
    await redis.stop()
    phase = 'down'
    const downFrom = answers.length
    await waitFor('answers during the outage', () => answers.length >= downFrom + 100)
    await redis.start()
    phase = 'after'
    // recovered by itself: both kinds of request succeed again, with nobody waiting for it
    await waitFor('2xx answers after the restart', () => answers.filter((a) => a.phase === 'after' && a.res !== 'hung' && a.res.statusCode < 300).length >= 100)
  } finally {
    stop = true
    await Promise.all(workers)
  }

  const hung = answers.filter((a) => a.res === 'hung')
  t.equal(hung.length, 0, `no request still pending after ${hungAfterMs} ms`)
  const done = answers.filter((a): a is Answer & { res: LightMyRequestResponse } => a.res !== 'hung')
  const statuses = new Map<string, number>()
  for (const a of done) statuses.set(`${a.kind} ${a.res.statusCode}`, (statuses.get(`${a.kind} ${a.res.statusCode}`) ?? 0) + 1)
  t.comment(`${done.length} answers: ${[...statuses].map(([k, v]) => `${k}: ${v}`).join(', ')}`)
  t.same(done.filter((a) => ![200, 201, 503].includes(a.res.statusCode)).map((a) => `${a.kind} ${a.res.statusCode} ${a.res.body}`), [], 'every answer a 2xx or a 503')
  const refused = done.filter((a) => a.res.statusCode === 503)
  t.ok(refused.length > 0, 'the outage was seen')
  t.ok(refused.every((a) => a.res.headers['retry-after'] !== undefined && a.res.headers['content-type'] === 'application/problem+json; charset=utf-8'), 'every 503 a problem with Retry-After')
  for (const kind of ['reuse', 'index'] as const) {
    t.ok(done.some((a) => a.kind === kind && a.phase === 'after' && a.res.statusCode < 300), `${kind} requests succeed again after the restart`)
  }

  // no released data without its audit event, no acknowledged registration lost
  const releases = done.filter((a) => a.kind === 'reuse' && a.res.statusCode === 200).map((a) => released(a.res))
  t.ok(releases.every((r) => r.documents.length > 0), 'every answered query released data')
  const events = new Map<string, { documents?: unknown }>()
  for (let i = 0; i < releases.length; i += 200) {
    for (const event of await store.audit.auditEvents(releases.slice(i, i + 200).map((r) => r.queryId))) events.set(event.id, event)
  }
  t.equal(releases.filter((r) => JSON.stringify(events.get(r.queryId)?.documents) === JSON.stringify(r.documents)).length, releases.length,
    `the audit event of each of ${releases.length} released answers is there, naming what was released`)
  const created = done.filter((a) => a.kind === 'index' && a.res.statusCode === 201)
  const present = await Promise.all(created.map(async (a) => (await store.documents.getDocument(a.res.json().id))?.document.versions[0]?.documentNumber === a.doc?.documentNumber))
  t.equal(present.filter(Boolean).length, created.length, `each of ${created.length} acknowledged registrations is there`)
  const verified = await verifyAudit(w)
  t.equal(verified.ok, true, verified.reason ?? 'the audit chains verify')
})
