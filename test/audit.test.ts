import type { AuditCheckpointRecord } from '../src/store/index.js'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, register, requestToken, tokenFor } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'
import { MemoryStores } from '../src/store/index.js'
import type { RedisStores, Stores } from '../src/store/index.js'
import { subjectHash } from '../src/services/identifiers.js'
import { ulidToBytes } from '../src/store/redis/binary.js'

/**
 * The auditor's view: every token issued or refused and every agency change is on record;
 * search, export and verify work and are themselves audited; tampering is detected; and when
 * the trail cannot be written, nothing happens.
 */
const redis = await startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
t.teardown(async () => await redis.destroy())

const AUDITOR = '000.00.00.A02'
const ISSUER = '000.00.12.H41'

interface World { app: FastifyInstance, admin: TestAgency, auditor: TestAgency, issuer: TestAgency, adminToken: string, auditorToken: string }

async function world (t: Test, store: Stores): Promise<World> {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: adminEnv(admin) })
  const adminToken = await tokenFor(app, admin)
  const auditor = await makeAgency(AUDITOR)
  const issuer = await makeAgency(ISSUER)
  await register(app, adminToken, auditor, ['auditor'])
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  return { app, admin, auditor, issuer, adminToken, auditorToken: await tokenFor(app, auditor) }
}

const search = async (w: World, body: Record<string, unknown>) =>
  await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: { authorization: `Bearer ${w.auditorToken}` }, payload: body })
const getAs = async (w: World, url: string) =>
  await w.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${w.auditorToken}` } })

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('tokens issued and refused, and agency changes, are on record', async (t) => {
      const w = await world(t, await makeStore(t))
      await requestToken(w.app, await assertion(w.app, w.issuer, { claims: { aud: 'https://elsewhere.example' } }))
      await w.app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${await tokenFor(w.app, w.issuer)}` } })

      const issued = (await search(w, { action: 'token.issued' })).json().events
      t.same(issued.map((e: { actor: string }) => e.actor), [ISSUER, AUDITOR, ADMIN_CODE], 'newest first')
      t.ok(issued.every((e: { outcome: string, detail: { scope: string } }) => e.outcome === 'granted' && typeof e.detail.scope === 'string'))

      const refused = (await search(w, { action: 'token.refused' })).json().events
      t.equal(refused.length, 1)
      t.same(refused[0].detail, { code: 'audience_invalid', claimedAgency: ISSUER })
      t.equal(refused[0].actor, null, 'an unverified claim is not an actor')

      const denied = (await search(w, { action: 'access.refused', outcome: 'denied' })).json().events
      t.equal(denied.length, 1)
      t.equal(denied[0].actor, ISSUER)
      t.equal(denied[0].detail.code, 'insufficient_scope')

      const created = (await search(w, { agency: ADMIN_CODE, action: 'agency.created' })).json().events
      t.same(created.map((e: { detail: { agency: string } }) => e.detail.agency), [ISSUER, AUDITOR])
      t.ok(created.every((e: { requestId: string, clientAddress: string }) => e.requestId && e.clientAddress))
    })

    t.test('search by agency pages with a cursor, newest first, without gaps or repeats', async (t) => {
      const w = await world(t, await makeStore(t))
      for (let i = 0; i < 12; i++) await tokenFor(w.app, w.issuer)
      const seen: string[] = []
      let cursor: string | undefined
      for (let page = 0; page < 10; page++) {
        const res = await search(w, { agency: ISSUER, limit: 5, ...(cursor ? { cursor } : {}) })
        t.equal(res.statusCode, 200)
        seen.push(...res.json().events.map((e: { id: string }) => e.id))
        cursor = res.json().nextCursor
        if (!cursor) break
      }
      t.equal(seen.length, 12)
      t.equal(new Set(seen).size, 12)
      t.same([...seen].sort().reverse(), seen, 'newest first throughout')
    })

    t.test('search by subject matches the keyed hash; the identifier is never stored', async (t) => {
      const w = await world(t, await makeStore(t))
      const subject = { kind: 'citizen' as const, id: '001099012345' }
      const hash = subjectHash(w.app.config.subjectPepper, subject)
      await w.app.audit.record({ actor: ISSUER, action: 'document.indexed', outcome: 'granted', subject: hash, documents: [{ id: '01JDOC', version: 1 }] })
      await w.app.audit.record({ actor: ISSUER, action: 'document.indexed', outcome: 'granted', subject: subjectHash(w.app.config.subjectPepper, { kind: 'citizen', id: '079199000111' }) })
      const res = await search(w, { subject })
      t.equal(res.statusCode, 200)
      const events = res.json().events
      t.equal(events.length, 1)
      t.equal(events[0].subject, hash)
      t.same((await search(w, { documentId: '01JDOC' })).json().events.map((e: { subject: string }) => e.subject), [hash])
      const exported = (await getAs(w, '/v1/audit/export')).body
      t.notMatch(exported, /001099012345/, 'no identifier in clear anywhere in the trail')
      const searched = (await search(w, { action: 'audit.searched' })).json().events
      t.ok(searched.some((e: { subject?: string }) => e.subject === hash), 'the search itself is on record, with the hash')
    })

    t.test('export streams every event as NDJSON, oldest first; verify says ok; both are audited', async (t) => {
      const w = await world(t, await makeStore(t))
      const res = await getAs(w, '/v1/audit/export')
      t.equal(res.statusCode, 200)
      t.match(String(res.headers['content-type']), /application\/x-ndjson/)
      const events = res.body.trim().split('\n').map((line) => JSON.parse(line))
      t.equal(events.length, 6, 'the admin from configuration, two tokens, two agencies, and the export')
      t.same(events.map((e) => e.id), [...events.map((e) => e.id)].sort(), 'oldest first')
      t.equal(events[events.length - 1].action, 'audit.exported', 'the export itself is on record, before its first line')
      const from = events[2].time
      const ranged = (await getAs(w, `/v1/audit/export?from=${encodeURIComponent(from)}`)).body.trim().split('\n')
      t.ok(ranged.length < events.length + 1 && ranged.length >= events.length - 2)

      const verify = await getAs(w, '/v1/audit/verify')
      t.equal(verify.statusCode, 200)
      t.same(verify.json(), { ok: true, checked: events.length + 1, chains: 1, checkpoints: 0, complete: true }, 'and the second export')
      await w.app.audit.checkpoint()
      const again = (await getAs(w, '/v1/audit/verify')).json()
      t.equal(again.ok, true)
      t.equal(again.checkpoints, 1)
      t.equal((await search(w, { action: 'audit.verified' })).json().events.length, 2)
    })

    t.test('signed checkpoints are published to auditors, by range; reading them is audited', async (t) => {
      const w = await world(t, await makeStore(t))
      t.same((await getAs(w, '/v1/audit/checkpoints')).json(), { checkpoints: [] }, 'none yet')
      const first = await w.app.audit.checkpoint()
      await new Promise((resolve) => setTimeout(resolve, 5))
      const between = new Date().toISOString()
      await tokenFor(w.app, w.issuer)
      const second = await w.app.audit.checkpoint() as AuditCheckpointRecord
      const all = await getAs(w, '/v1/audit/checkpoints')
      t.equal(all.statusCode, 200)
      t.same(all.json().checkpoints, [first, second], 'oldest first, as signed')
      t.same((await getAs(w, `/v1/audit/checkpoints?from=${encodeURIComponent(between)}`)).json().checkpoints, [second])
      t.same((await getAs(w, `/v1/audit/checkpoints?to=${encodeURIComponent(between)}`)).json().checkpoints, [first])
      const [header, claims] = second.jws.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
      t.equal(header.typ, 'audit-checkpoint+jwt')
      t.same(claims.chains, second.chains)
      t.equal(claims.writer, w.app.audit.chain)
      const read = (await search(w, { action: 'audit.checkpoints_read' })).json().events
      t.same(read.map((e: { outcome: string, detail: { returned: number } }) => [e.outcome, e.detail.returned]), [['granted', 1], ['granted', 1], ['granted', 2], ['empty', 0]])
      t.equal((await getAs(w, '/v1/audit/checkpoints?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z')).json().code, 'invalid_time_range')
      t.equal((await getAs(w, '/v1/audit/checkpoints?from=nonsense')).statusCode, 400)
    })

    t.test('bad search input is a 400 problem', async (t) => {
      const w = await world(t, await makeStore(t))
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ subject: { kind: 'citizen', id: '12345' } }, 'invalid_subject'],
        [{ subject: { kind: 'citizen', id: '999099012345' } }, 'invalid_subject'],
        [{ subject: { kind: 'organization', id: '01234-5678' } }, 'invalid_subject'],
        [{ from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 'invalid_time_range'],
        [{ limit: 1001 }, 'validation_failed'],
        [{ limit: 0 }, 'validation_failed'],
        [{ agency: 'H41' }, 'validation_failed'],
        [{ cursor: 'forged.cursor' }, 'invalid_cursor'],
        [{ unknown: true }, 'validation_failed'],
        [{ from: 'yesterday' }, 'validation_failed']
      ]
      for (const [body, code] of cases) {
        const res = await search(w, body)
        t.equal(res.statusCode, 400, code)
        t.equal(res.json().code, code)
      }
      for (let i = 0; i < 3; i++) await tokenFor(w.app, w.issuer)
      const page = (await search(w, { agency: ISSUER, limit: 1 })).json()
      t.ok(page.nextCursor)
      const swapped = await search(w, { agency: AUDITOR, limit: 1, cursor: page.nextCursor })
      t.equal(swapped.json().code, 'invalid_cursor', 'a cursor only continues the search it came from')
      const [payload] = String(page.nextCursor).split('.')
      t.equal((await search(w, { agency: ISSUER, limit: 1, cursor: `${payload}.AAAAAAAAAAAAAAAAAAAAAA` })).json().code, 'invalid_cursor')
      t.equal((await getAs(w, '/v1/audit/export?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z')).statusCode, 400)
      t.equal((await getAs(w, '/v1/audit/verify?from=nonsense')).statusCode, 400)
    })

    t.test('only auditors read the trail', async (t) => {
      const w = await world(t, await makeStore(t))
      const token = await tokenFor(w.app, w.issuer)
      for (const [method, url] of [['POST', '/v1/audit/search'], ['GET', '/v1/audit/export'], ['GET', '/v1/audit/verify'], ['GET', '/v1/audit/checkpoints']] as const) {
        const res = await w.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(method === 'POST' ? { payload: {} } : {}) })
        t.equal(res.statusCode, 403, `${method} ${url}`)
      }
      t.equal((await w.app.inject({ method: 'GET', url: '/v1/audit/export', headers: { authorization: `Bearer ${w.adminToken}` } })).statusCode, 403, 'not even an admin')
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))

t.test('tampering with the stored trail is detected, naming the first bad event', async (t) => {
  async function tampered (t: Test, tamper: (store: RedisStores, events: any[]) => Promise<void>): Promise<{ result: any, events: any[] }> {
    const store = await testRedisStore(t, redis)
    const w = await world(t, store)
    for (let i = 0; i < 5; i++) await tokenFor(w.app, w.issuer)
    await w.app.audit.checkpoint()
    const events: any[] = (await getAs(w, "/v1/audit/export")).body.trim().split("\n").map((line) => JSON.parse(line))
    t.equal((await getAs(w, '/v1/audit/verify')).json().ok, true, 'untouched, it verifies')
    await tamper(store, events)
    return { result: (await getAs(w, '/v1/audit/verify')).json(), events }
  }
  const ev = (store: RedisStores) => store.key('audit', 'ev')
  // where the store keeps an event (its id as 16 bytes) and a chain position (a bucket of 128 seqs)
  const field = (id: string) => ulidToBytes(id)
  const chainBucket = (store: RedisStores, chain: string, seq: number) => store.key('audit', 'chain', chain, String(seq >> 7))

  t.test('an edited event', async (t) => {
    const { result, events } = await tampered(t, async (store, events) => {
      const victim = { ...events[4], outcome: 'denied' }
      await store.client.hset(ev(store), field(victim.id), JSON.stringify(victim))
    })
    t.equal(result.ok, false)
    t.equal(result.firstBadEvent, events[4].id)
    t.match(result.reason, /altered/)
  })

  t.test('an edited event with its hash recomputed still breaks the link', async (t) => {
    const { eventHash } = await import('../src/services/audit.js')
    const { result, events } = await tampered(t, async (store, events) => {
      const victim = { ...events[4], actor: '000.00.99.H41' }
      victim.hash = eventHash(victim)
      await store.client.hset(ev(store), field(victim.id), JSON.stringify(victim))
    })
    t.equal(result.ok, false)
    t.equal(result.firstBadEvent, events[5].id, 'the next event no longer links to it')
  })

  t.test('a deleted event in the middle', async (t) => {
    const { result, events } = await tampered(t, async (store, events) => {
      const victim = events[3]
      await store.client.hdel(ev(store), field(victim.id))
      await store.client.hdel(chainBucket(store, victim.chain, victim.seq), String(victim.seq))
    })
    t.equal(result.ok, false)
    t.equal(result.firstBadEvent, events[4].id)
    t.match(result.reason, /missing/)
  })

  t.test('reordered events', async (t) => {
    const { result, events } = await tampered(t, async (store, events) => {
      const [a, b] = [events[2], events[3]]
      await store.client.hset(chainBucket(store, a.chain, a.seq), String(a.seq), field(b.id), String(b.seq), field(a.id))
    })
    t.equal(result.ok, false)
    t.equal(result.firstBadEvent, events[3].id)
  })

  t.test('a truncated tail', async (t) => {
    const { result, events } = await tampered(t, async (store, events) => {
      const chain = events[0].chain
      const cut = events.filter((e) => e.seq >= 6 && e.chain === chain)
      for (const e of cut) {
        await store.client.hdel(ev(store), field(e.id))
        await store.client.hdel(chainBucket(store, chain, e.seq), String(e.seq))
      }
      const last = events.find((e) => e.seq === 5)
      await store.client.hset(store.key('audit', 'head'), chain, `5 ${last.hash}`)
    })
    t.equal(result.ok, false)
    t.match(result.reason, /cut off its end/)
    t.equal(result.firstBadEvent, `${events[0].chain}#6`)
  })

  t.test('a forged checkpoint', async (t) => {
    const { result } = await tampered(t, async (store) => {
      const raw = await store.client.lindex(store.key('audit', 'cp'), 0) as string
      const checkpoint = JSON.parse(raw)
      const [h, p] = checkpoint.jws.split('.')
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
      claims.chains[0].seq = 3
      checkpoint.jws = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${checkpoint.jws.split('.')[2]}`
      await store.client.lset(store.key('audit', 'cp'), 0, JSON.stringify(checkpoint))
    })
    t.equal(result.ok, false)
    t.match(result.reason, /forged or altered/)
  })
})

t.test('fail closed: with the store failing, nothing is released or changed unaudited', async (t) => {
  const store = await testRedisStore(t, redis)
  const w = await world(t, store)
  const pending = await assertion(w.app, w.issuer)
  const other = await makeAgency('000.00.44.H41')
  const before = await w.app.audit.search({ limit: 1000 })

  // the audit append fails while everything else would still work
  const append = store.audit.appendAuditEvents.bind(store.audit)
  store.audit.appendAuditEvents = async () => { throw new (await import('../src/store/index.js')).StoreUnavailableError('audit append failed') }
  const token = await requestToken(w.app, pending)
  t.equal(token.statusCode, 503, 'no token without its audit event')
  t.notOk(token.json().access_token)
  const put = await w.app.inject({ method: 'PUT', url: `/v1/agencies/${other.code}`, headers: { authorization: `Bearer ${w.adminToken}` }, payload: { name: 'x', roles: ['admin'], jwks: other.jwks } })
  t.equal(put.statusCode, 503)
  t.equal(put.json().code, 'store_unavailable')
  const read = await search(w, {})
  t.equal(read.statusCode, 503, 'no search result without its audit event')
  store.audit.appendAuditEvents = append

  t.equal(await store.agencies.getAgency(other.code), undefined, 'the agency change did not happen')
  const after = await w.app.audit.search({ limit: 1000 })
  t.equal(after.events.length, before.events.length, 'and nothing half-written')
  t.equal((await getAs(w, '/v1/audit/verify')).json().ok, true, 'the chain continues cleanly afterwards')

  // and with Redis itself gone mid-flight
  await redis.stop()
  const down = await requestToken(w.app, await assertion(w.app, w.issuer))
  t.equal(down.statusCode, 503)
  await redis.start()
  for (let i = 0; i < 40 && (await w.app.inject({ method: 'GET', url: '/health/ready' })).statusCode !== 200; i++) await new Promise((resolve) => setTimeout(resolve, 250))
  t.equal((await requestToken(w.app, await assertion(w.app, w.issuer))).statusCode, 200)
  t.equal((await getAs(w, '/v1/audit/verify')).json().ok, true)
})
