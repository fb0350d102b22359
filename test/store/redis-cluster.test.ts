import { Redis } from 'ioredis'
import t from 'tap'
import { startTestCluster, watchScriptKeys } from '../lib/redis-cluster.js'
import { testRedisStore } from '../lib/redis-store.js'
import { StoreUnavailableError } from '../../src/store/index.js'
import { allContracts } from './stores-contract.js'

/**
 * The stores on a Redis Cluster of three masters: every contract the standalone stores meet, with
 * each script checked (MONITOR on every master) to touch only the keys it is given.
 */
const cluster = await startTestCluster()
t.teardown(async () => await cluster.destroy())
const watch = await watchScriptKeys(cluster)
t.teardown(() => watch.stop())

allContracts(t, async (t) => await testRedisStore(t, cluster))

t.test('no store script touched a key it was not given in KEYS', async (t) => {
  const { scripts, commands, undeclared } = await watch.report()
  t.ok(scripts > 50 && commands > scripts, `scripts ran and were watched (${scripts} scripts, ${commands} commands)`)
  t.same(undeclared, [])
})

t.test('operations on keys of every master, scripts among them, issued in the same tick all succeed', async (t) => {
  // auto-pipelining groups what is issued together by node: each command must go where its keys are
  const store = await testRedisStore(t, cluster)
  const now = Date.now()
  const ops: Array<Promise<unknown>> = []
  for (let i = 0; i < 20; i++) {
    const id = `01J00000CC${String(i).padStart(16, '0')}`
    ops.push(store.audit.appendAuditEvent({ id, chain: `C${i}`, seq: 1, prevHash: '0'.repeat(64), hash: 'a'.repeat(64), actor: `A${i}`, subject: `s${i}`, documents: [{ id: `D${i}` }], time: new Date(now).toISOString() }, { announce: true }))
    ops.push(store.leases.claimOnce('tick', `jti-${i}`, 60_000))
    ops.push(store.outbox.publishOutboxEvent(undefined, { id: `01J00000DD${String(i).padStart(16, '0')}.1.indexed`, type: 'document.indexed', documentId: `01J00000DD${String(i).padStart(16, '0')}`, version: 1, published: { status: 'valid', latestVersion: 1 } }, [{ destination: 'portal' }, { destination: `agency:A${i}` }], [], now))
    ops.push(store.agencies.putAgency({ code: `000.00.${String(i).padStart(2, '0')}.H41`, name: 'x', roles: ['issuer'], jwks: { keys: [] }, status: 'active', createdAt: 'x', updatedAt: 'x' }))
    ops.push(store.reuseRecords.addReuseCounts(`2026-01-${String(i + 1).padStart(2, '0')}`, { queries: 1 }))
  }
  const results = await Promise.allSettled(ops)
  t.same(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [], 'none refused')
  const claimed = await Promise.all([store.outbox.claimOutboxDeliveries(now, 60_000, 100, 'w1'), store.audit.auditChains(), store.outbox.dueOutboxSources(now, 100)])
  t.equal(claimed[0].length, 40, 'every delivery claimable')
  t.equal(claimed[1].length, 20)
  t.equal(claimed[2].length, 20, 'every announced source queued')
})

t.test('the store\'s keys spread over every master', async (t) => {
  const store = await testRedisStore(t, cluster)
  for (let i = 0; i < 30; i++) await store.leases.claimOnce('spread', `id-${i}`, 60_000)
  const prefix = store.key('x').split('{')[0] as string
  const counts = await Promise.all(cluster.nodes.map(async ({ port }) => {
    const node = new Redis({ port, host: '127.0.0.1' })
    try {
      return (await node.keys(`${prefix}*`)).length
    } finally {
      node.disconnect()
    }
  }))
  t.equal(counts.reduce((a, b) => a + b), 30)
  t.ok(counts.every((n) => n > 0), `each master holds some (${counts.join(', ')})`)
})

t.test('persistence is that of the least durable master', async (t) => {
  const store = await testRedisStore(t, cluster)
  const masters = cluster.nodes.map(({ port }) => new Redis({ port, host: '127.0.0.1' }))
  t.teardown(async () => {
    await Promise.all(masters.map(async (node) => await node.config('SET', 'appendonly', 'no')))
    for (const node of masters) node.disconnect()
  })
  t.same(await store.persistence(), { aof: false, rdb: false })
  await Promise.all(masters.slice(0, 2).map(async (node) => await node.config('SET', 'appendonly', 'yes')))
  t.same(await store.persistence(), { aof: false, rdb: false }, 'one master without AOF is enough to lose writes')
  await masters[2]?.config('SET', 'appendonly', 'yes')
  t.same(await store.persistence(), { aof: true, appendfsync: 'everysec', rdb: false })
  await masters[1]?.config('SET', 'appendfsync', 'no')
  t.teardown(async () => { await masters[1]?.config('SET', 'appendfsync', 'everysec') })
  t.same(await store.persistence(), { aof: true, appendfsync: 'no', rdb: false })
})

// last: it stops a master of the file's cluster
t.test('a master that is gone makes ping fail at once with StoreUnavailableError', async (t) => {
  const store = await testRedisStore(t, cluster)
  await t.resolves(store.ping())
  await cluster.kill(2)
  const started = Date.now()
  await t.rejects(store.ping(), StoreUnavailableError)
  t.ok(Date.now() - started < 5000, 'without waiting for the cluster to notice')
})
