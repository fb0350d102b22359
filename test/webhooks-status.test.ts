import t from 'tap'
import type { Test } from 'tap'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { startTestRedis, waitFor } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { startReceiver } from './lib/webhook-receiver.js'
import { CODES, bearer, buildWorld } from './lib/world.js'

/**
 * The outbox as an admin looks after it (the console's deliveries page): every destination's
 * backlog, any destination's deliveries and dead letters, and a replay of any destination;
 * other agencies still see and replay only their own.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    const portal = await startReceiver()
    t.teardown(async () => await portal.close())
    portal.behaviour = () => 500
    // the world indexes four results: four announcements to the portal, each given up at its first failure
    const store = await makeStore(t)
    const w = await buildWorld(t, { store, env: { OUTBOX_WORKER: 'true', OUTBOX_POLL_MS: '30', OUTBOX_MAX_ATTEMPTS: '1', PORTAL_WEBHOOK_URL: portal.url } })
    await waitFor(async () => (await store.outbox.outboxStatus()).some((s) => s.destination === 'portal' && s.dead === 4 && s.queued === 0), 15_000, 'four dead letters')
    const get = async (url: string, token: string) => await w.app.inject({ method: 'GET', url, headers: bearer(token) })

    t.test('the admin reads every destination\'s backlog; nobody else does', async (t) => {
      const res = await get('/v1/webhooks/status', w.tokens.admin)
      t.equal(res.statusCode, 200)
      t.same(res.json(), { destinations: [{ destination: 'portal', queued: 0, delivered: 0, dead: 4 }] })
      for (const who of ['auditor', 'portal', 'requester', 'issuer'] as const) {
        const refused = await get('/v1/webhooks/status', w.tokens[who])
        t.equal(refused.statusCode, 403, who)
        t.equal(refused.json().code, 'insufficient_scope')
      }
      t.equal((await w.app.inject({ method: 'GET', url: '/v1/webhooks/status' })).statusCode, 401)
    })

    t.test('the admin names a destination to read its deliveries and dead letters', async (t) => {
      const res = await get('/v1/webhooks/deliveries?destination=portal', w.tokens.admin)
      t.equal(res.statusCode, 200)
      const { destination, deliveries } = res.json()
      t.equal(destination, 'portal')
      t.equal(deliveries.length, 4)
      t.ok(deliveries.every((d: { state: string, lastError?: string }) => d.state === 'dead' && /500/.test(d.lastError ?? '')), 'dead, with the receiver\'s answer')
      t.same(await get('/v1/webhooks/deliveries?destination=portal', w.tokens.portal).then((r) => [r.statusCode, r.json().code]), [403, 'insufficient_scope'], 'the portal reads its own without naming it')
      t.equal((await get('/v1/webhooks/deliveries', w.tokens.portal)).json().deliveries.length, 4)
      t.same(await get(`/v1/webhooks/deliveries?destination=agency:${CODES.requester}`, w.tokens.requester).then((r) => [r.statusCode, r.json().code]), [403, 'insufficient_scope'])
      t.same(await get(`/v1/webhooks/deliveries?destination=agency:${CODES.requester}`, w.tokens.admin).then((r) => [r.statusCode, r.json().deliveries]), [200, []], 'an agency destination with nothing sent')
      for (const bad of ['somewhere', 'agency:x', 'agency:000.00.00.A01x', 'PORTAL']) {
        const refused = await get(`/v1/webhooks/deliveries?destination=${encodeURIComponent(bad)}`, w.tokens.admin)
        t.same([refused.statusCode, refused.json().code], [400, 'validation_failed'], bad)
      }
      t.same(await get('/v1/webhooks/deliveries', w.tokens.admin).then((r) => [r.statusCode, r.json().code]), [404, 'no_webhook'], 'without a destination, an admin\'s own (it has none)')
    })

    t.test('the admin replays a destination\'s dead letters, on record', async (t) => {
      const refused = await w.app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: bearer(w.tokens.requester), payload: { after: 0, destination: 'portal' } })
      t.same([refused.statusCode, refused.json().code], [403, 'insufficient_scope'])
      portal.behaviour = () => 204
      const res = await w.app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: bearer(w.tokens.admin), payload: { after: 0, destination: 'portal' } })
      t.equal(res.statusCode, 202)
      t.same(res.json(), { destination: 'portal', requeued: 4 })
      await portal.until((acknowledged) => acknowledged.length === 4, 15_000)
      await waitFor(async () => (await get('/v1/webhooks/status', w.tokens.admin)).json().destinations[0]?.delivered === 4, 15_000, 'delivered')
      t.same((await get('/v1/webhooks/status', w.tokens.admin)).json(), { destinations: [{ destination: 'portal', queued: 0, delivered: 4, dead: 0 }] })
      const recorded = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { action: 'webhook.replay_requested', agency: CODES.admin } })
      t.match(recorded.json().events, [{ actor: CODES.admin, outcome: 'granted', detail: { destination: 'portal', after: 0 } }])
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))
