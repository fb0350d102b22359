import t from 'tap'
import type { Test } from 'tap'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { startTestPostgres } from './lib/postgres-server.js'
import { startTestRedis } from './lib/redis-server.js'
import { startTestCluster } from './lib/redis-cluster.js'
import { testRedisStore } from './lib/redis-store.js'
import { archiveWorld, auditor, history, reuseSome, searchAll } from './lib/audit-archive-world.js'

/**
 * One trail over both tiers, with the hot tier on the embedded store, on Redis and on a Redis
 * Cluster: after the archiver has moved what is older than the hot window to PostgreSQL, every
 * search answers page by page as before (its cursors crossing from one tier to the other), the
 * export is the same byte for byte, the citizen's access history the same, and the whole trail
 * verifies across the boundary.
 */
const [redis, cluster, postgres] = await Promise.all([startTestRedis(), startTestCluster(), startTestPostgres()])
t.teardown(async () => { await Promise.all([redis.destroy(), cluster.destroy(), postgres.destroy()]) })

const backends: Array<[string, (t: Test) => Promise<Stores>]> = [
  ['embedded store', async () => new MemoryStores()],
  ['Redis', async (t) => await testRedisStore(t, redis)],
  ['Redis Cluster', async (t) => await testRedisStore(t, cluster)]
]

for (const [name, makeStore] of backends) {
  t.test(`${name}: one trail over both tiers, the same search pages, export, verification and access history after archiving`, async (t) => {
    const { w, store, archive, archiver } = await archiveWorld(t, postgres, await makeStore(t))
    await reuseSome(w, 6)
    await w.app.audit.checkpoint()
    await reuseSome(w, 3)
    const to = new Date(Date.now() + 1).toISOString()
    await new Promise((resolve) => setTimeout(resolve, 5))

    const searches = [{ to, limit: 4 }, { to, agency: w.agencies.requester.code, limit: 2 }, { to, subject: { kind: 'citizen', id: w.citizen }, limit: 3 }, { to, action: 'reuse.queried', limit: 5 }]
    const before = await Promise.all(searches.map(async (body) => await searchAll(w, body)))
    const exportBefore = (await w.app.inject({ method: 'GET', url: `/v1/audit/export?to=${encodeURIComponent(to)}`, headers: auditor(w) })).body
    const historyBefore = (await history(w, { to })).json()
    t.ok(before[0]!.length > 20 && before[2]!.length >= 9, 'a trail to archive')

    const result = await archiver().run()
    const cut = await store.audit.auditCheckpoints(0, 0)
    t.ok(result.moved > 0, `${result.moved} events moved`)
    const archivedIds = before[0]!.filter((e) => e.seq <= (cut[0]!.chains.find((c) => c.chain === e.chain)?.seq ?? 0)).map((e) => e.id)
    t.equal(archivedIds.length, result.moved, 'every event up to the cut, and only those')
    t.same(await store.audit.auditEvents(archivedIds), [], 'they have left the store')
    t.equal((await archive.auditEvents(archivedIds)).length, archivedIds.length, 'and are in PostgreSQL')
    t.ok(before[0]!.some((e) => !archivedIds.includes(e.id)), 'the events after the cut stay hot')

    const after = await Promise.all(searches.map(async (body) => await searchAll(w, body)))
    t.same(after, before, 'every search, page by page across the tiers, answers as before')
    const exportAfter = (await w.app.inject({ method: 'GET', url: `/v1/audit/export?to=${encodeURIComponent(to)}`, headers: auditor(w) })).body
    t.equal(exportAfter, exportBefore, 'the export is the same, byte for byte')
    t.same((await history(w, { to })).json(), historyBefore, "the citizen's access history is the same")
    const verify = await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })
    t.equal(verify.json().ok, true, 'the whole trail verifies across the boundary')

    const again = await archiver().run()
    t.equal(again.moved, 0, 'a second run finds nothing more to move')
  })
}
