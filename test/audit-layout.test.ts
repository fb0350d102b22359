import type { AuditCheckpointRecord } from '../src/store/index.js'
import t from 'tap'
import { pino } from 'pino'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { AuditService } from '../src/services/audit.js'
import type { AuditEvent, AuditInput } from '../src/services/audit.js'
import { verifyAuditTrail } from '../src/services/audit-verify.js'
import { auditIndexEntries } from '../src/store/audit-keys.js'
import type { AuditStore, RedisStores, StoredAuditEvent } from '../src/store/index.js'

/**
 * A trail written by the earlier layout (events as JSON, chain positions and index members as
 * text ids) is still read, searched, verified, revealed and pruned once the compact layout
 * writes beside it — also when an old process goes on writing the old way meanwhile (a rolling
 * upgrade), so that old and new entries interleave in time within one index.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const { privateKey, publicKey } = await generateKeyPair('ES256')
const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'gw-1', alg: 'ES256' }] })
const signer = {
  sign: async (claims: Record<string, unknown>, typ: string): Promise<string> =>
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'gw-1', typ }).sign(privateKey)
}
const silent = pino({ level: 'silent' })
const SUBJECT = 'ab'.repeat(32)
const AGENCY = '000.00.12.H41'

/** an audit store that writes what it is given the way the earlier layout did, straight into Redis */
function earlierLayout (stores: RedisStores): AuditStore {
  const client = stores.client
  const key = (...rest: string[]): string => stores.key('audit', ...rest)
  // reads and checkpoints as the store does them; appends as the earlier layout did
  return Object.assign(Object.create(stores.audit) as AuditStore, {
    async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>) {
      for (const { event, announce } of batch) {
        await client.hset(key('ev'), event.id, JSON.stringify(event))
        await client.hset(key('chain', event.chain), String(event.seq), event.id)
        for (const { name, score } of auditIndexEntries(event)) await client.zadd(key('idx', name), score, event.id)
        if (announce) await client.zadd(key('ob', 'src'), Date.parse(String(event.time)), `a:${event.id}`)
        await client.hset(key('head'), event.chain, `${event.seq} ${event.hash}`)
      }
      return true
    }
  })
}

const access = (n: number, detail: Record<string, unknown> = {}): AuditInput =>
  ({ actor: AGENCY, action: 'reuse.queried', outcome: 'granted', subject: SUBJECT, documents: [{ id: `01JDOC0000000000000000000${n % 2}`, version: 1 }], requestId: `req-${n}`, clientAddress: '10.0.0.1', detail })

t.test('a trail of the earlier layout is read, searched, verified and pruned beside the compact one', async (t) => {
  const stores = await testRedisStore(t, redis)
  const old = new AuditService({ audit: earlierLayout(stores), log: silent, signer, issuer: 'https://gateway.test', cursorKey: 'k' })
  const current = new AuditService({ audit: stores.audit, log: silent, signer, issuer: 'https://gateway.test', cursorKey: 'k' })
  t.teardown(async () => { await old.stop(); await current.stop() })
  const recorded: AuditEvent[] = []
  const some = async (service: AuditService, from: number, count: number): Promise<void> => {
    for (let n = from; n < from + count; n++) {
      recorded.push(await service.record(n % 5 === 4 ? access(n, { hidden: true, hiddenUntil: '2026-03-01' }) : access(n)))
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }
  // old, new, old again (a process not yet upgraded), new again: interleaved in time
  await some(old, 0, 6)
  await some(current, 6, 6)
  await some(old, 12, 6)
  await some(current, 18, 6)
  await old.checkpoint()
  const visible = recorded.filter((e) => e.detail?.hidden === undefined)

  t.same(await stores.audit.auditEvents(recorded.map((e) => e.id)), recorded, 'every event reads back exactly as appended')

  const newestFirst = [...recorded].reverse()
  const paged: string[] = []
  let cursor: string | undefined
  do {
    const page = await current.search({ subject: SUBJECT, limit: 5, ...(cursor ? { cursor } : {}) })
    paged.push(...page.events.map((e) => e.id))
    cursor = page.nextCursor
  } while (cursor)
  t.same(paged, newestFirst.map((e) => e.id), 'search by subject pages through both layouts in time order')
  t.same((await current.search({ agency: AGENCY, limit: 100 })).events, newestFirst, 'by agency')
  t.same((await current.search({ documentId: '01JDOC00000000000000000001', limit: 100 })).events.map((e) => e.id),
    newestFirst.filter((e) => e.documents?.[0]?.id === '01JDOC00000000000000000001').map((e) => e.id), 'by document')
  const middle = recorded[9] as AuditEvent
  t.same((await current.search({ from: middle.time, limit: 100 })).events.map((e) => e.id),
    newestFirst.filter((e) => e.time >= middle.time).map((e) => e.id), 'a time range')
  const exported: AuditEvent[] = []
  for await (const event of current.export({})) exported.push(event)
  t.same(exported, recorded, 'the export, oldest first')

  const history = await current.history(SUBJECT, { limit: 100 }, '2026-01-01')
  t.same(history.events.map((e) => e.id), [...visible].reverse().map((e) => e.id), 'the access history leaves out what is hidden')
  const revealed = await current.history(SUBJECT, { limit: 100 }, '2026-03-01')
  t.same(revealed.events.map((e) => e.id), newestFirst.map((e) => e.id), 'hidden accesses of both layouts are revealed on their day')

  const checkpoints = [...await current.checkpoints(), await current.checkpoint() as AuditCheckpointRecord]
  t.same(await verifyAuditTrail(current.chainEvents(), checkpoints, keys, { requireAllChains: true }), { ok: true, checked: 24, chains: 2, checkpoints: 2 })

  // retention: the old chain up to its checkpoint (its first 12 events), wherever they are indexed
  const oldChain = old.chain
  t.equal(await stores.audit.pruneAudit({ [oldChain]: 12 }), 12)
  const kept = recorded.filter((e) => e.chain !== oldChain)
  t.same((await current.search({ subject: SUBJECT, limit: 100 })).events.map((e) => e.id), [...kept].reverse().map((e) => e.id))
  t.same((await current.history(SUBJECT, { limit: 100 }, '2026-03-01')).events.map((e) => e.id), [...kept].reverse().map((e) => e.id))
  t.same(await stores.audit.auditChainSlice(oldChain, 1, 20), [])
  t.same(await verifyAuditTrail(current.chainEvents(), checkpoints, keys, { requireAllChains: false }), { ok: true, checked: 12, chains: 1, checkpoints: 2 })
})

t.test('an announced change of the earlier layout still reaches the outbox', async (t) => {
  const stores = await testRedisStore(t, redis)
  const old = new AuditService({ audit: earlierLayout(stores), log: silent, signer, issuer: 'https://gateway.test', cursorKey: 'k' })
  t.teardown(async () => await old.stop())
  const event = await old.record({ actor: AGENCY, action: 'document.indexed', outcome: 'granted', subject: SUBJECT, documents: [{ id: '01JDOC00000000000000000009', version: 1 }] }, { announce: true })
  t.same(await stores.outbox.dueOutboxSources(Date.now() + 1000, 10), [`a:${event.id}`])
  const [read] = await stores.audit.auditEvents([event.id]) as StoredAuditEvent[]
  t.same(read, event)
})

t.test('an outbox event of the earlier layout (its body part kept whole) is still read, and not published twice', async (t) => {
  const stores = await testRedisStore(t, redis)
  const id = '01JDOC00000000000000000007.1.indexed'
  const earlier = { id, type: 'document.indexed', occurredAt: '2026-11-25T03:00:00.000Z', documentId: '01JDOC00000000000000000007', payload: { document: { id: '01JDOC00000000000000000007', version: 1, status: 'valid' } } }
  await stores.client.hset(stores.key('audit', 'ob', 'ev'), id, `5 ${JSON.stringify(earlier)}`)
  t.same(await stores.outbox.outboxEvent(id), { ...earlier, version: 1, cursor: 5 })
  const again = { id, type: 'document.indexed' as const, documentId: earlier.documentId, version: 1, published: { status: 'valid', latestVersion: 1 } }
  t.equal(await stores.outbox.publishOutboxEvent(undefined, again, [{ destination: 'portal' }], [], Date.now()), undefined, 'the same fact, already published')
})
