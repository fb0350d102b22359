import t from 'tap'
import { startTestRedis } from '../lib/redis-server.js'
import { testRedisStore } from '../lib/redis-store.js'
import type { StoredAuditEvent } from '../../src/store/index.js'
import { auditContract } from './audit-contract.js'

const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

auditContract(t, async (t) => await testRedisStore(t, redis))

t.test('every audit key shares one hash tag, so the append script stays in one cluster slot', async (t) => {
  const store = await testRedisStore(t, redis)
  const event: StoredAuditEvent = {
    id: '01J00000AB0000000000000001', chain: 'C1', seq: 1, prevHash: '0'.repeat(64), hash: 'a'.repeat(64),
    actor: '000.00.12.H41', subject: 'b'.repeat(64), documents: [{ id: 'D1', version: 1 }]
  }
  t.equal(await store.appendAuditEvent(event), true)
  await store.putAuditCheckpoint({ time: '2026-01-01T00:00:00.000Z', jws: 'h.p.s', chains: [] })
  const prefix = store.key('x').split('{')[0] as string
  const keys = await store.client.keys(`${prefix}*`)
  t.ok(keys.length >= 7, `events, heads, chain, checkpoints and four indexes (${keys.length} keys)`)
  const tags = new Set(keys.map((key) => /\{([^}]*)\}/.exec(key)?.[1]))
  t.same([...tags], ['audit'])
})

t.test('retention of a long chain runs in bounded batches and removes exactly what was asked', async (t) => {
  const store = await testRedisStore(t, redis)
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
