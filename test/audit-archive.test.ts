import t from 'tap'
import type { Test } from 'tap'
import pg from 'pg'
import { AuditArchiver, AuditChainBreakError } from '../src/services/audit-archiver.js'
import type { AuditEvent } from '../src/services/audit.js'
import { ArchiveUnavailableError } from '../src/store/index.js'
import type { RedisStores } from '../src/store/index.js'
import { auditKey } from '../src/store/redis/keys.js'
import { encodeAuditEvent, eventField } from '../src/store/redis/codec-audit.js'
import { startTestPostgres } from './lib/postgres-server.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { archiveWorld, auditor, DAY, reuseSome, searchAll } from './lib/audit-archive-world.js'
import type { ArchiveWorld } from './lib/audit-archive-world.js'

/**
 * The archiver on Redis: PostgreSQL stopped and started, a crash between a commit and the
 * removal, one archiver at a time, a tampered trail, retention, idle chains, a chain retention
 * cut before there was an archive, and what verification finds done to the archive itself.
 * (test/audit-archive-backends.test.ts: one trail over both tiers, on every store.)
 */
const [redis, postgres] = await Promise.all([startTestRedis(), startTestPostgres()])
t.teardown(async () => { await Promise.all([redis.destroy(), postgres.destroy()]) })

async function setUp (t: Test, _name: string): Promise<ArchiveWorld<RedisStores>> {
  return await archiveWorld(t, postgres, await testRedisStore(t, redis))
}

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

t.test('verification finds what was done to the archive: a row altered, a row deleted, a month dropped outside retention', async (t) => {
  const { w, archive, archiver } = await setUp(t, 'tampered')
  await reuseSome(w, 6)
  await w.app.audit.checkpoint()
  await reuseSome(w, 1)
  await archiver().run()
  const url = w.app.config.audit.archive!.url
  const sql = new pg.Client({ connectionString: url })
  sql.on('error', () => {})
  await sql.connect()
  t.teardown(async () => await sql.end())
  const verify = async (): Promise<{ ok: boolean, firstBadEvent?: string, reason?: string }> =>
    (await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })).json()
  t.equal((await verify()).ok, true, 'intact at first')
  const chain = w.app.audit.chain
  const [victim] = await archive.auditChainSlice(chain, 5, 1)

  await sql.query('UPDATE audit_events SET outcome = $2 WHERE id = $1', [victim!.id, victim!.outcome === 'granted' ? 'denied' : 'granted'])
  const altered = await verify()
  t.equal(altered.ok, false, 'an altered row is found')
  t.equal(altered.firstBadEvent, victim!.id)
  await sql.query('UPDATE audit_events SET outcome = $2 WHERE id = $1', [victim!.id, victim!.outcome])
  t.equal((await verify()).ok, true, 'and intact once put back')

  const saved = (await sql.query('SELECT * FROM audit_events WHERE id = $1', [victim!.id])).rows[0] as Record<string, unknown>
  await sql.query('DELETE FROM audit_events WHERE id = $1', [victim!.id])
  const deleted = await verify()
  t.equal(deleted.ok, false, 'a deleted row is found')
  t.match(deleted.reason, /missing/)
  const columns = Object.keys(saved)
  await sql.query(`INSERT INTO audit_events (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, columns.map((c) => saved[c]))
  t.equal((await verify()).ok, true)

  const month = (await archive.partitions())[0]!.name
  await sql.query(`ALTER TABLE audit_events DETACH PARTITION ${month}`)
  await sql.query(`DROP TABLE ${month}`)
  const dropped = await verify()
  t.equal(dropped.ok, false, `a month dropped outside retention is found: ${dropped.reason ?? ''}`)
})

t.test('PostgreSQL stopped and started while queries keep coming and the archiver keeps running: nothing acknowledged is lost', async (t) => {
  const { w, archiver } = await setUp(t, 'load')
  const archiving = archiver()
  let running = true
  let acknowledged = 0
  let refused = 0
  // four clients querying without pause: every answer 200 is an audit event on record
  const clients = Array.from({ length: 4 }, async () => {
    while (running) {
      const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { authorization: `Bearer ${w.tokens.requester}` }, payload: { subject: { kind: 'citizen', id: w.citizen }, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: '1.001193', dossierCode: '000.20.41.H41-260301-0001' } } })
      if (res.statusCode === 200) acknowledged++
      else refused++
    }
  })
  const failures: string[] = []
  const archiveLoop = (async () => {
    while (running) {
      await w.app.audit.checkpoint()
      await archiving.run().catch((err: Error) => { failures.push(err.name) })
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 500))
  await postgres.stop()
  await new Promise((resolve) => setTimeout(resolve, 700))
  await postgres.start()
  await new Promise((resolve) => setTimeout(resolve, 700))
  running = false
  await Promise.all([...clients, archiveLoop])
  t.equal(refused, 0, 'queries never needed PostgreSQL')
  t.ok(failures.length > 0 && failures.every((name) => name === 'ArchiveUnavailableError'), `archiving paused while PostgreSQL was down (${failures.length} passes)`)
  await w.app.audit.checkpoint()
  const after = await archiving.run()
  t.equal(after.busy, undefined)
  const found = await searchAll(w, { agency: w.agencies.requester.code, action: 'reuse.queried', limit: 1000 })
  t.equal(found.length, acknowledged, `every acknowledged query is on record, across the tiers (${acknowledged})`)
  const verify = await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auditor(w) })
  t.equal(verify.json().ok, true, 'and the trail verifies')
})
