import t from 'tap'
import { startTestRedis } from '../lib/redis-server.js'
import { testRedisStore } from '../lib/redis-store.js'
import { RedisStores, StoreUnavailableError } from '../../src/store/index.js'
import type { StoredAuditEvent } from '../../src/store/index.js'
import { allContracts } from './stores-contract.js'

// every aggregate's contract on a standalone Redis, then what only Redis has to say
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

allContracts(t, async (t) => await testRedisStore(t, redis))

t.test('persistence reflects the server settings', async (t) => {
  const stores = await testRedisStore(t, redis)
  const off = await stores.persistence()
  t.equal(off.aof, false)
  await stores.client.config('SET', 'appendonly', 'yes')
  t.teardown(async () => { await stores.client.config('SET', 'appendonly', 'no') })
  const on = await stores.persistence()
  t.equal(on.aof, true)
  t.equal(on.appendfsync, 'everysec')
})

t.test('keys carry a hash tag so that multi-key operations stay in one cluster slot', async (t) => {
  const stores = await testRedisStore(t, redis)
  const key = stores.key('agency:000.00.00.H41', 'keys')
  t.match(key, /^t\d+-\d+:\{agency:000\.00\.00\.H41\}:keys$/)
})

t.test('a server-side failure that is not an outage is not reported as one', async (t) => {
  const stores = await testRedisStore(t, redis)
  const attempt = stores.run(
    async () => await stores.client.call('NO-SUCH-COMMAND'))
  await t.rejects(attempt, { name: 'ReplyError' })
})

t.test('an unreachable server is StoreUnavailableError at once, not a hang', async (t) => {
  const stores = await testRedisStore(t, redis)
  const other = await startTestRedis()
  await other.destroy()
  const away = new RedisStores({ url: other.url, keyPrefix: 'x:', commandTimeoutMs: 500, quitTimeoutMs: 100 })
  await away.connect()
  t.teardown(async () => await away.close())
  await t.rejects(away.ping(), StoreUnavailableError)
  await t.resolves(stores.ping(), 'the healthy store is unaffected')
})

t.test('every audit key shares one hash tag, so the append script stays in one cluster slot', async (t) => {
  const stores = await testRedisStore(t, redis)
  const store = stores.audit
  const event: StoredAuditEvent = {
    id: '01J00000AB0000000000000001', chain: 'C1', seq: 1, prevHash: '0'.repeat(64), hash: 'a'.repeat(64),
    actor: '000.00.12.H41', subject: 'b'.repeat(64), documents: [{ id: 'D1', version: 1 }]
  }
  t.equal(await store.appendAuditEvent(event), true)
  await store.putAuditCheckpoint({ time: '2026-01-01T00:00:00.000Z', jws: 'h.p.s', chains: [] })
  const prefix = stores.key('x').split('{')[0] as string
  const keys = await stores.client.keys(`${prefix}*`)
  t.ok(keys.length >= 7, `events, heads, chain, checkpoints and four indexes (${keys.length} keys)`)
  const tags = new Set(keys.map((key) => /\{([^}]*)\}/.exec(key)?.[1]))
  t.same([...tags], ['audit'])
})

t.test('retention of a long chain runs in bounded batches and removes exactly what was asked', async (t) => {
  const store = (await testRedisStore(t, redis)).audit
  let prevHash = '0'.repeat(64)
  const appends: Array<Promise<boolean>> = []
  for (let seq = 1; seq <= 1000; seq++) {
    const hash = seq.toString(16).padStart(64, 'c')
    appends.push(store.appendAuditEvent({ id: `01J00000AB${String(seq).padStart(16, '0')}`, chain: 'C1', seq, prevHash, hash, actor: `A${seq % 3}`, documents: [{ id: `D${seq}` }] }))
    prevHash = hash
  }
  t.notOk((await Promise.all(appends)).includes(false))
  t.equal(await store.pruneAudit({ C1: 700 }), 700)
  t.equal(await store.pruneAudit({ C1: 700 }), 0)
  t.same((await store.auditChainSlice('C1', 699, 3)).map((e) => e.seq), [701])
  t.equal((await store.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 2000 })).length, 300)
  t.equal((await store.auditIndexPage({ index: { kind: 'agency', value: 'A1' }, newestFirst: false, count: 2000 })).length, 100)
  t.equal(await store.pruneAudit({ C1: 1000 }), 300)
  t.same(await store.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 10 }), [])
})

t.test('a document\'s and a subject\'s index: the first entries kept in a shared bucket, the rest in their own set, read as one', async (t) => {
  const stores = await testRedisStore(t, redis)
  const store = stores.audit
  const subject = 'cd'.repeat(32)
  const document = '01J00000DD0000000000000001'
  const id = (n: number): string => `01J00000AB${String(n).padStart(16, '0')}`
  let prevHash = '0'.repeat(64)
  for (let seq = 1; seq <= 10; seq++) {
    const hash = seq.toString(16).padStart(64, 'e')
    t.ok(await store.appendAuditEvent({ id: id(seq), chain: 'C1', seq, prevHash, hash, actor: 'A', subject, documents: [{ id: document, version: 1 }] }))
    prevHash = hash
  }
  const page = async (kind: 'subject' | 'document', extra: { fromId?: string, toId?: string, newestFirst?: boolean, count?: number } = {}): Promise<string[]> =>
    await store.auditIndexPage({ index: { kind, value: kind === 'subject' ? subject : document }, newestFirst: extra.newestFirst ?? true, count: extra.count ?? 100, ...(extra.fromId ? { fromId: extra.fromId } : {}), ...(extra.toId ? { toId: extra.toId } : {}) })
  const all = Array.from({ length: 10 }, (_, i) => id(10 - i))
  t.same(await page('subject'), all)
  t.same(await page('document', { newestFirst: false }), [...all].reverse())
  t.same(await page('subject', { count: 2, toId: id(3) }), [id(2), id(1)], 'a page among the first entries')
  t.same(await page('subject', { count: 3, fromId: id(2), toId: id(6) }), [id(5), id(4), id(3)], 'across both')
  t.same(await page('document', { count: 2, fromId: id(2), newestFirst: false }), [id(2), id(3)])
  t.equal(await store.pruneAudit({ C1: 2 }), 2)
  t.same(await page('subject'), all.slice(0, 8), 'retention takes them out of the bucket')
  t.equal(await store.pruneAudit({ C1: 6 }), 4)
  t.same(await page('document'), all.slice(0, 4), 'and out of the set')
})
