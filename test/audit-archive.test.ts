import t from 'tap'
import type { Test } from 'tap'
import pg from 'pg'
import type { LightMyRequestResponse } from 'fastify'
import { AuditArchiver, AuditChainBreakError } from '../src/services/audit-archiver.js'
import type { AuditEvent } from '../src/services/audit.js'
import { ArchiveUnavailableError } from '../src/store/index.js'
import type { RedisStores } from '../src/store/index.js'
import { auditKey } from '../src/store/redis/keys.js'
import { encodeAuditEvent, eventField } from '../src/store/redis/codec-audit.js'
import { PostgresAuditArchive } from '../src/store/postgres/audit-archive.js'
import { startTestPostgres } from './lib/postgres-server.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { bearer, buildWorld, reuseQuery } from './lib/world.js'
import type { World } from './lib/world.js'

/**
 * The audit trail over two tiers: the archiver moves what is older than the hot window from
 * Redis to PostgreSQL, checked link by link, and every reader — search and its cursors, export,
 * verification, the portal's access history — sees one trail, the same before and after. With
 * PostgreSQL down, archiving waits and only the reads that need it are refused (503).
 */
const DAY = 86_400_000
const [redis, postgres] = await Promise.all([startTestRedis(), startTestPostgres()])
t.teardown(async () => { await Promise.all([redis.destroy(), postgres.destroy()]) })

interface Setup { w: World, store: RedisStores, archive: PostgresAuditArchive, archiver: (options?: { days?: number, owner?: string }) => AuditArchiver }

async function setUp (t: Test, database: string): Promise<Setup> {
  const admin = new pg.Client({ connectionString: postgres.url })
  // the server is stopped in a test: this connection's end must not be an uncaught error
  admin.on('error', () => {})
  await admin.connect()
  await admin.query(`CREATE DATABASE ${database}`)
  await admin.end()
  const url = postgres.url.replace(/\/postgres$/, `/${database}`)
  const store = await testRedisStore(t, redis)
  // the gateway's own archiver waits a day: the test's, with its clock days ahead, does the moving
  const w = await buildWorld(t, { store, env: { AUDIT_ARCHIVE_URL: url, AUDIT_ARCHIVE_INTERVAL_MS: String(DAY) } })
  const archive = new PostgresAuditArchive({ url })
  t.teardown(async () => await archive.close())
  const archiver = ({ days = 2 }: { days?: number } = {}): AuditArchiver => new AuditArchiver({
    hot: store.audit, archive, leases: store.leases, log: w.app.log, hotDays: 1, retentionDays: 0, migrate: true,
    signer: w.app.signingKeys, issuer: w.app.config.gatewayIssuer, batchSize: 7, now: () => Date.now() + days * DAY
  })
  return { w, store, archive, archiver }
}

const auditor = (w: World): Record<string, string> => bearer(w.tokens.auditor)

/** every page of a search, following its cursors */
async function searchAll (w: World, body: Record<string, unknown>): Promise<AuditEvent[]> {
  const events: AuditEvent[] = []
  let cursor: string | undefined
  do {
    const res = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: auditor(w), payload: { ...body, ...(cursor ? { cursor } : {}) } })
    if (res.statusCode !== 200) throw new Error(`search: ${res.statusCode} ${res.body}`)
    const page = res.json() as { events: AuditEvent[], nextCursor?: string }
    events.push(...page.events)
    cursor = page.nextCursor
  } while (cursor)
  return events
}

async function history (w: World, extra: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
  return await w.app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: bearer(w.tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen }, ...extra } })
}

async function reuseSome (w: World, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
    if (res.statusCode !== 200) throw new Error(`reuse: ${res.body}`)
  }
}

t.test('one trail over both tiers: the same search pages, export, verification and access history after archiving', async (t) => {
  const { w, store, archive, archiver } = await setUp(t, 'trail')
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
  t.same(await store.audit.auditEvents(archivedIds), [], 'they have left Redis')
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

t.test('PostgreSQL down: archiving waits, nothing is lost, recent reads go on, archived reads answer 503 archive_unavailable', async (t) => {
  const { w, store, archive, archiver } = await setUp(t, 'outage')
  await reuseSome(w, 4)
  await w.app.audit.checkpoint()
  await archiver().run()
  const mark = await store.audit.auditArchiveMark()
  t.ok(mark, 'something archived')
  await reuseSome(w, 3)
  const hotFrom = new Date(Date.now() - 1).toISOString()
  await reuseSome(w, 1)
  await w.app.audit.checkpoint()
  const hotBefore = await store.audit.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 1000 })

  await postgres.stop()
  t.teardown(async () => await postgres.start().catch(() => undefined))
  await t.rejects(archiver({ days: 3 }).run(), ArchiveUnavailableError, 'the archiver pauses')
  t.same(await store.audit.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 1000 }), hotBefore, 'nothing left Redis')
  const recent = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: auditor(w), payload: { from: hotFrom, limit: 5 } })
  t.equal(recent.statusCode, 200, 'a search of the recent days still works')
  t.ok(recent.json().events.length >= 1)
  const old = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: auditor(w), payload: { limit: 1000 } })
  t.equal(old.statusCode, 503)
  t.equal(old.json().code, 'archive_unavailable')
  t.ok(Number(old.headers['retry-after']) > 0, 'with Retry-After')

  await postgres.start()
  const moved = await archiver({ days: 3 }).run()
  t.ok(moved.moved > 0, 'archiving resumes where it stopped')
  t.equal((await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: auditor(w), payload: { limit: 1000 } })).statusCode, 200)
  t.equal((await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })).json().ok, true)
  await archive.ping()
})

t.test('a crash between the commit and the removal from Redis is resumed without a gap or a duplicate; one archiver at a time', async (t) => {
  const { w, store, archive, archiver } = await setUp(t, 'resume')
  await reuseSome(w, 5)
  await w.app.audit.checkpoint()
  const chain = w.app.audit.chain
  // as if an archiver had committed a first batch and died before removing it from Redis
  const first = await store.audit.auditChainSlice(chain, 1, 4)
  await archive.ensurePartitions(new Date(), new Date())
  t.equal(await archive.archiveEvents(chain, 0, first), true)
  t.equal(await archive.archiveEvents(chain, 0, first), false, 'the same batch twice is refused')

  await store.leases.holdLease('audit-archiver', 'another gateway', 60_000)
  t.same((await archiver().run()).busy, true, 'another process holds the lease: nothing done')
  await store.leases.holdLease('audit-archiver', 'another gateway', 1)
  await new Promise((resolve) => setTimeout(resolve, 5))

  const result = await archiver().run()
  const head = (await store.audit.auditCheckpoints(-1, -1))[0]!.chains.find((c) => c.chain === chain)!
  t.equal(result.moved, head.seq - 4, 'the rest moved, the committed batch not again')
  const archived = await archive.auditChainSlice(chain, 1, head.seq + 10)
  t.same(archived.map((e) => e.seq), Array.from({ length: head.seq }, (_, i) => i + 1), 'every seq once, none missing')
  t.same(await store.audit.auditChainSlice(chain, 1, head.seq), [], 'and none left in Redis')
})

t.test('a tampered event stops the archiver before it; nothing past the break moves', async (t) => {
  const { w, store, archive, archiver } = await setUp(t, 'tamper')
  await reuseSome(w, 6)
  await w.app.audit.checkpoint()
  const chain = w.app.audit.chain
  const victim = (await store.audit.auditChainSlice(chain, 10, 1))[0] as AuditEvent & Record<string, unknown>
  t.ok(victim, 'an event to alter')
  // the event rewritten in place, as someone with access to Redis could
  const altered = { ...victim, outcome: victim.outcome === 'granted' ? 'denied' : 'granted' }
  await store.connection.client.hset(auditKey(store.connection, 'ev'), eventField(victim.id), encodeAuditEvent(altered as never))

  const archiving = archiver()
  await t.rejects(archiving.run(), AuditChainBreakError)
  const status = await archiving.status()
  t.equal(status.broken?.chain, chain)
  t.equal(status.broken?.seq, 10)
  t.equal((await archive.archivedHeads()).get(chain)?.seq ?? 0, 7, 'only whole batches before the break were archived')
  t.equal((await store.audit.auditChainSlice(chain, 10, 1)).length, 1, 'the altered event stays in Redis, as evidence')
})

t.test('retention drops whole months of the archive after a signed checkpoint pinning where each chain resumes; what remains verifies', async (t) => {
  const { w, store, archive } = await setUp(t, 'retention')
  await reuseSome(w, 4)
  await w.app.audit.checkpoint()
  await reuseSome(w, 2)
  const kept = await store.audit.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 1000 })
  await w.app.audit.checkpoint()
  const lastCut = (await store.audit.auditCheckpoints(-1, -1))[0]!
  const hotAfter = new Date().toISOString()
  await reuseSome(w, 2)

  // a hundred days on, with forty kept: this month is past retention, the months ahead are not
  const archiver = new AuditArchiver({
    hot: store.audit, archive, leases: store.leases, log: w.app.log, hotDays: 1, retentionDays: 40, migrate: true,
    signer: w.app.signingKeys, issuer: w.app.config.gatewayIssuer, now: () => Date.now() + 100 * DAY
  })
  const month = `audit_events_${new Date().toISOString().slice(0, 7).replace('-', '_')}`
  await archive.migrate()
  await archive.ensurePartitions(new Date(), new Date())
  t.ok((await archive.partitions()).some((p) => p.name === month), `${month} is there before retention`)
  const result = await archiver.run()
  t.ok(result.moved >= kept.length, 'everything up to the last checkpoint was archived first')
  const partitions = (await archive.partitions()).map((p) => p.name)
  t.notOk(partitions.includes(month), `${month} is dropped`)
  t.ok(partitions.length > 0, 'the months ahead stay')
  const checkpoints = await archive.auditCheckpoints()
  const final = checkpoints[checkpoints.length - 1]!
  const head = lastCut.chains.find((c) => c.chain === w.app.audit.chain)!
  t.same(final.chains.find((c) => c.chain === w.app.audit.chain), head, 'a final checkpoint pins the last dropped event of the chain')
  const claims = JSON.parse(Buffer.from(final.jws.split('.')[1]!, 'base64url').toString('utf8')) as { retention?: { before: string } }
  t.ok(claims.retention?.before, 'signed, and saying why it was made')

  const left = await searchAll(w, { limit: 50 })
  t.ok(left.length > 0 && left.every((e) => !kept.includes(e.id)), 'no dropped event is found any more, the recent ones are')
  t.ok(left.some((e) => e.time >= hotAfter), 'the events after the last checkpoint are still in Redis')
  const verify = await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })
  t.equal(verify.json().ok, true, `what remains verifies from the final checkpoint: ${verify.body}`)
})

t.test('a chain whose events are all archived and whose process is gone is forgotten by Redis, not by the trail', async (t) => {
  const { w, store, archiver } = await setUp(t, 'idle')
  const { AuditService } = await import('../src/services/audit.js')
  const gone = new AuditService({ audit: w.app.auditTrail, log: w.app.log as never, signer: w.app.signingKeys, issuer: w.app.config.gatewayIssuer, cursorKey: 'k' })
  for (let i = 0; i < 3; i++) await gone.record({ actor: null, action: 'token.refused', outcome: 'denied' })
  await reuseSome(w, 1)
  await w.app.audit.checkpoint()
  t.ok((await store.audit.auditChains()).includes(gone.chain))
  const result = await archiver().run()
  t.equal(result.forgotten, 2, 'both chains are idle past the cut in this clock')
  t.notOk((await store.audit.auditChains()).includes(gone.chain), 'Redis no longer lists it')
  t.ok((await w.app.auditTrail.auditChains()).includes(gone.chain), 'the trail still does')
  const events = await searchAll(w, { action: 'token.refused', limit: 10 })
  t.equal(events.filter((e) => e.chain === gone.chain).length, 3, 'and its events are found')
  t.equal((await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })).json().ok, true)
})

t.test('a chain whose start retention removed before there was an archive is archived from the checkpoint that pins where it resumes', async (t) => {
  const { w, store, archive, archiver } = await setUp(t, 'pruned')
  await reuseSome(w, 3)
  await w.app.audit.checkpoint()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const boundary = new Date()
  await reuseSome(w, 2)
  await w.app.audit.checkpoint()
  t.ok(await w.app.audit.prune(boundary) > 0, 'the store cut the chain at the first checkpoint')
  const chain = w.app.audit.chain
  const firstKept = (await searchAll(w, { to: new Date().toISOString(), limit: 100 })).filter((e) => e.chain === chain).map((e) => e.seq).sort((a, b) => a - b)[0]!

  const result = await archiver().run()
  t.ok(result.moved > 0)
  const archived = await archive.auditChainSlice(chain, 1, 1000)
  t.equal(archived[0]?.seq, firstKept, 'the archive holds the chain from its first kept event')
  t.equal((await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })).json().ok, true, 'and it verifies from the checkpoint')
  t.same(await store.audit.auditChainSlice(chain, firstKept, 1), [], 'the archived events left Redis')
})
