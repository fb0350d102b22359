import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, tokenFor } from './lib/agencies.js'
import { MemoryStores, RedisStores } from '../src/store/index.js'
import type { Stores, StoredAuditEvent } from '../src/store/index.js'
import { RefusalLedger } from '../src/services/refusals.js'
import type { AuditEvent, AuditInput } from '../src/services/audit.js'

/**
 * A client without a token cannot grow the store: its refused requests are counted per client
 * address before anything is written for them, past AUTH_FAILURE_LIMIT_PER_MINUTE it gets 429,
 * and repeated refusals are audited as one event per address, reason and interval — yet the
 * audit trail still says how many times it was refused, and for what. An agency on the same
 * address is served all along.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const FLOOD = 2000
const LIMIT = 20
const ATTACKER = '192.0.2.66'

/** every audit event in the store, oldest first */
async function auditTrail (store: Stores): Promise<StoredAuditEvent[]> {
  const ids = await store.audit.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 100_000 })
  return await store.audit.auditEvents(ids)
}

type Event = StoredAuditEvent & { action: string, clientAddress?: string, detail?: Record<string, unknown> }

async function usedMemory (store: Stores): Promise<number | undefined> {
  if (!(store instanceof RedisStores)) return undefined
  const info = await store.client.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1])
}

function isTooMany (t: Test, res: LightMyRequestResponse): void {
  t.equal(res.statusCode, 429)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/)
  t.equal(res.json().code, 'rate_limited')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After in seconds (${String(res.headers['retry-after'])})`)
}

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test(`${FLOOD} refused requests from one address: 429 past the limit, a handful of audit events, the count in a summary`, async (t) => {
      const store = await makeStore(t)
      const admin = await makeAgency(ADMIN_CODE)
      const app = await build(t, { store, env: { ...adminEnv(admin), AUTH_FAILURE_LIMIT_PER_MINUTE: String(LIMIT) } })
      const token = await tokenFor(app, admin)
      const forged = `${token.slice(0, -12)}AAAAAAAAAAAA`
      // three ways to be refused, in turn: no token, not a bearer token, a forged signature
      const attempts: Array<[string | undefined, string]> = [[undefined, 'token_missing'], ['Basic dXNlcjpwYXNz', 'token_malformed'], [`Bearer ${forged}`, 'signature_invalid']]
      const call = async (remoteAddress: string, authorization?: string): Promise<LightMyRequestResponse> =>
        await app.inject({ method: 'GET', url: '/v1/agencies', remoteAddress, headers: authorization === undefined ? {} : { authorization } })

      await app.refusals.flush()
      const eventsBefore = (await auditTrail(store)).length
      const memoryBefore = await usedMemory(store)
      const keysBefore = store instanceof RedisStores ? await store.client.dbsize() : 0

      const statuses = new Map<number, number>()
      const sent = new Map<string, number>()
      for (let i = 0; i < FLOOD; i++) {
        const [authorization, code] = attempts[i % attempts.length] as [string | undefined, string]
        const res = await call(ATTACKER, authorization)
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        sent.set(code, (sent.get(code) ?? 0) + 1)
        if (i < LIMIT) {
          t.equal(res.statusCode, 401, `refusal ${i + 1} is within the limit: 401`)
          t.equal(res.json().code, code)
        }
        if (i === LIMIT) isTooMany(t, res)
        if (i === FLOOD / 2) {
          t.equal((await call(ATTACKER, `Bearer ${token}`)).statusCode, 200, 'an agency on the same address, with a valid token, is served during the flood')
          t.equal((await call('192.0.2.67')).json().code, 'token_missing', 'another address is refused for what it sent, not limited')
        }
      }
      const unlimited = statuses.get(401) ?? 0
      t.ok(unlimited >= LIMIT && unlimited <= 2 * LIMIT, `${unlimited} answered 401 (the limit is ${LIMIT} a window)`)
      t.equal(statuses.get(429), FLOOD - unlimited, 'every other one: 429')

      const added = (await auditTrail(store)).slice(eventsBefore) as Event[]
      t.ok(added.length <= 2 * attempts.length, `${added.length} audit events for ${FLOOD + 1} refusals: the first of each reason (and the other address's)`)
      const memoryAfter = await usedMemory(store)
      if (memoryBefore !== undefined && memoryAfter !== undefined) {
        // one event is about 800 B: one per refusal would be 1.6 MB
        t.ok(memoryAfter - memoryBefore < 256 * 1024, `Redis grew by ${memoryAfter - memoryBefore} B`)
        const keys = await (store as RedisStores).client.keys('*')
        t.ok(keys.length - keysBefore <= 3, `${keys.length - keysBefore} new keys: the two addresses' refusal counts, the agency's request count`)
        t.notOk(keys.some((key) => key.includes('192.0.2')), 'no client address in clear in a key')
      }

      // the interval's tallies are written at shutdown at the latest
      await app.close()
      const trail = (await auditTrail(store)).slice(eventsBefore) as Event[]
      const fromAttacker = trail.filter((e) => e.action === 'access.refused' && e.clientAddress === ATTACKER)
      for (const [, code] of attempts) {
        const events = fromAttacker.filter((e) => e.detail?.code === code)
        const summary = events.find((e) => e.detail?.count !== undefined)
        const first = events.find((e) => e.detail?.count === undefined)
        t.ok(first, `${code}: the first refusal on record as it is`)
        t.equal(events.length, 2, `${code}: that and one summary`)
        t.equal(summary?.detail?.count, sent.get(code), `${code}: the summary counts all ${String(sent.get(code))}`)
        t.equal(summary?.detail?.firstEvent, first?.id, `${code}: and points at the first`)
        t.ok(Number(summary?.detail?.limited) > 0, `${code}: ${String(summary?.detail?.limited)} of them answered 429`)
        t.ok(Date.parse(String(summary?.detail?.from)) <= Date.parse(String(summary?.detail?.to)), `${code}: over an interval`)
      }
      t.equal(fromAttacker.reduce((sum, e) => sum + Number(e.detail?.count ?? 0), 0), FLOOD, 'the summaries add up to every refusal')
    })

    t.test('a flood of refused token requests is limited the same way', async (t) => {
      const store = await makeStore(t)
      const admin = await makeAgency(ADMIN_CODE)
      const app = await build(t, { store, env: { ...adminEnv(admin), AUTH_FAILURE_LIMIT_PER_MINUTE: '5' } })
      const wrongAudience = await assertion(app, admin, { claims: { aud: 'https://elsewhere.example' } })
      const request = async (clientAssertion: string): Promise<LightMyRequestResponse> => await app.inject({
        method: 'POST',
        url: '/v1/oauth/token',
        remoteAddress: '198.51.100.7',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion }).toString()
      })
      const statuses: number[] = []
      for (let i = 0; i < 8; i++) statuses.push((await request(wrongAudience)).statusCode)
      t.same(statuses, [401, 401, 401, 401, 401, 429, 429, 429], 'five refusals, then 429')
      isTooMany(t, await request(wrongAudience))
      t.equal((await request(await assertion(app, admin))).statusCode, 200, 'a valid assertion from that address still gets its token')
      const refused = (await app.audit.search({ action: 'token.refused', limit: 100 })).events
      t.equal(refused.length, 1, 'one event so far: the first refusal')
      t.same(refused[0]?.detail, { code: 'audience_invalid', claimedAgency: ADMIN_CODE })
    })
  })
}

suite('memory store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))

t.test('an interval\'s tally is written once the interval is over, without waiting for shutdown', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const app: FastifyInstance = await build(t, { env: { ...adminEnv(admin), AUTH_FAILURE_AUDIT_INTERVAL_MS: '200' } })
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ method: 'GET', url: '/v1/agencies', remoteAddress: '203.0.113.9' })).statusCode, 401)
  const deadline = Date.now() + 10_000
  let summary: AuditEvent | undefined
  while (!summary && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    summary = (await app.audit.search({ action: 'access.refused', limit: 100 })).events.find((e) => e.detail?.count !== undefined)
  }
  t.equal(summary?.detail?.count, 5, 'the summary counts the five')
  t.equal(summary?.clientAddress, '203.0.113.9')
  t.equal(summary?.detail?.code, 'token_missing')
})

t.test('the tallies are bounded: past the cap the oldest is written out early', async (t) => {
  const written: AuditInput[] = []
  let id = 0
  const ledger = new RefusalLedger({
    record: async (input) => { written.push(input); return { ...input, id: String(++id) } as AuditEvent },
    intervalMs: 60_000,
    maxKeys: 2,
    onError: (err) => { throw err }
  })
  const refusal = (code: string) => ({ actor: null, action: 'access.refused', outcome: 'denied' as const, detail: { code } })
  for (const key of ['a', 'a', 'a', 'b', 'b']) await ledger.refused(key, refusal(key), { clientNetwork: key, limited: false })
  t.equal(written.length, 2, 'the first of each key')
  await ledger.refused('c', refusal('c'), { clientNetwork: 'c', limited: false })
  await ledger.flush()
  t.same(written.map((e) => [e.detail?.code, e.detail?.count]), [['a', undefined], ['b', undefined], ['a', 3], ['c', undefined], ['b', 2]], 'a third key wrote out the oldest tally, the flush the rest')
})
