import t from 'tap'
import type { Test } from 'tap'
import { decodeTime, ulid } from 'ulid'
import { eventHash } from '../../src/services/audit.js'
import type { AuditEvent } from '../../src/services/audit.js'
import { ArchiveUnavailableError, MemoryStores } from '../../src/store/index.js'
import type { AuditCheckpointRecord, AuditIndex, AuditIndexPage, AuditStore, StoredAuditEvent } from '../../src/store/index.js'
import { PostgresAuditArchive } from '../../src/store/postgres/audit-archive.js'
import { startTestPostgres } from '../lib/postgres-server.js'

/**
 * The audit archive on a throwaway PostgreSQL (one server for the file, a schema a test): the
 * schema's migrations, archiving in chain order without a fork or a duplicate, events read back
 * exactly as archived, the same answers as the hot tier's for every index and bound, retention
 * by whole months, and PostgreSQL going away and coming back.
 */
const server = await startTestPostgres()
t.teardown(async () => await server.destroy())

let schemas = 0
/** an archive on a schema of its own, migrated unless told not to */
async function archiveFor (t: Test, options: { schema?: string, migrate?: boolean, connectTimeoutMs?: number } = {}): Promise<PostgresAuditArchive> {
  const archive = new PostgresAuditArchive({ url: server.url, schema: options.schema ?? `archive_${++schemas}`, connectTimeoutMs: options.connectTimeoutMs ?? 2000 })
  t.teardown(async () => await archive.close())
  if (options.migrate !== false) await archive.migrate()
  return archive
}

const GENESIS = '0'.repeat(64)
const DAY = 86_400_000
const NOV = Date.UTC(2026, 10, 1)
const subjectA = 'a1'.repeat(32)
const subjectB = 'b2'.repeat(32)

type Draft = Partial<Omit<AuditEvent, 'id' | 'chain' | 'seq' | 'prevHash' | 'hash'>> & { at: number }

/** events of one chain with real hashes, after `head` (default: the chain's start) */
function chainOf (chain: string, drafts: Draft[], head = { seq: 0, hash: GENESIS }): StoredAuditEvent[] {
  let previous = head
  return drafts.map(({ at, ...draft }) => {
    const id = ulid(at)
    const body = { id, chain, seq: previous.seq + 1, time: new Date(decodeTime(id)).toISOString(), actor: null, action: 'token.issued', outcome: 'granted' as const, ...draft, prevHash: previous.hash }
    const event = { ...body, hash: eventHash(body as Omit<AuditEvent, 'hash'>) }
    previous = event
    return event as unknown as StoredAuditEvent
  })
}

const access = (at: number, subject: string, detail?: Record<string, unknown>): Draft =>
  ({ at, actor: '000.00.12.H41', action: 'reuse.queried', outcome: 'granted', subject, documents: [{ id: `D${at % 3}`, version: 1 }], ...(detail ? { detail } : {}) })

const checkpointAt = (time: string, chains: AuditCheckpointRecord['chains'] = []): AuditCheckpointRecord =>
  ({ time, jws: `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(time).toString('base64url')}.c2ln`, chains })

t.test('migrations: applied once, in order; a second run and a concurrent run apply nothing', async (t) => {
  const archive = await archiveFor(t, { migrate: false })
  t.same(await archive.schemaVersion(), { current: 0, latest: 1 }, 'no schema yet')
  t.same(await archive.migrate(), [1])
  t.same(await archive.migrate(), [], 'nothing left to apply')
  t.same(await archive.schemaVersion(), { current: 1, latest: 1 })

  const schema = `archive_${++schemas}`
  const [one, two] = [await archiveFor(t, { schema, migrate: false }), await archiveFor(t, { schema, migrate: false })]
  const applied = await Promise.all([one.migrate(), two.migrate()])
  t.same(applied.flat(), [1], 'two processes migrating at once: each version applied by one of them')
  t.same(await two.schemaVersion(), { current: 1, latest: 1 })
  t.equal(await one.archiveEvents('C1', 0, chainOf('C1', [{ at: NOV }])), true, 'the schema is usable')
})

t.test('archived events read back exactly as archived, whatever their fields hold', async (t) => {
  const archive = await archiveFor(t)
  const odd = {
    text: 'Nguyễn Văn An — 😀 \u0000 nul, back\\slash \\N, tab\tnew\nline\r carriage, "quotes", {braces}',
    nested: { deep: [{ a: 1 }, [], {}, null, true], empty: '' },
    numbers: [1e21, 0.1, 1.5e-7, 2 ** 53 - 1, -42],
    lone: 'half a pair: \ud83d',
    keys: { 'with space': 1, 'ä': 2, '': 3 }
  }
  const events = chainOf('C1', [
    { ...access(NOV + 1000, subjectA, { fields: ['fullName'], note: odd }), purpose: { procedureCode: '1.001234', dossierCode: 'H41.22-000123' }, requestId: 'req-1', clientAddress: '10.0.0.7', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' },
    { at: NOV + 2000, actor: 'agency\twith\ttabs', action: 'document.indexed', outcome: 'granted', documents: [{ id: '01JDOC', version: 2 }, { id: '01JDOC', version: 3 }, { id: 'D\\2' }] },
    // a field text cannot hold stays in the JSON; so does a time that is not its own ISO form
    { at: NOV + 3000, actor: 'nul\u0000actor', action: 'audit.unconfirmed', outcome: 'error', detail: { events: ['x'] }, time: '2026-11-01T07:00:03+07:00' },
    { at: NOV + 4000, actor: null, action: 'signing-key.rotated', outcome: 'granted' }
  ])
  t.equal(await archive.archiveEvents('C1', 0, events), true)
  const back = await archive.auditEvents([...events].reverse().map((e) => e.id))
  t.strictSame(back, [...events].reverse(), 'deep-equal, in the order asked')
  t.same(back.map((e) => JSON.stringify(e)), [...events].reverse().map((e) => JSON.stringify(e)), 'even the order of their fields')
  for (const event of back) t.equal(eventHash(event as unknown as AuditEvent), event.hash, `the hash of seq ${event.seq} recomputes`)
  t.strictSame(await archive.auditEvents([events[1]!.id, ulid(NOV), events[1]!.id]), [events[1], events[1]], 'missing ones left out, repeated ones repeated')
  t.strictSame(await archive.auditChainSlice('C1', 2, 2), events.slice(1, 3))
  t.strictSame(await archive.auditChainSlice('C1', 3, 10), events.slice(2), 'up to the archived head')
  t.same(await archive.auditChainSlice('C1', 1, 0), [])
  t.same(await archive.auditChainSlice('C2', 1, 5), [])
  t.same(await archive.auditIndexPage({ index: { kind: 'document', value: '01JDOC' }, newestFirst: false, count: 10 }), [events[1]!.id], 'a document listed twice is indexed once')
  t.same(await archive.auditIndexPage({ index: { kind: 'agency', value: 'agency\twith\ttabs' }, newestFirst: false, count: 10 }), [events[1]!.id])
  t.same(await archive.auditIndexPage({ index: { kind: 'agency', value: 'nul\u0000actor' }, newestFirst: false, count: 10 }), [], 'an actor text cannot hold is in no index (the hot tier has it, the trail still holds it)')
  const head = events[3]!
  t.same(await archive.archivedHeads(), new Map([['C1', { seq: 4, hash: head.hash, id: head.id }]]))
})

t.test('archiving: only from the archived head; nothing written otherwise; one of many racing archivers wins', async (t) => {
  const archive = await archiveFor(t)
  const events = chainOf('C1', Array.from({ length: 6 }, (_, i) => ({ at: NOV + i * 1000 })))
  t.equal(await archive.archiveEvents('C1', 0, events.slice(0, 3)), true)
  t.equal(await archive.archiveEvents('C1', 0, events.slice(0, 3)), false, 'the same events again: refused')
  t.equal(await archive.archiveEvents('C1', 4, events.slice(4)), false, 'a gap: refused')
  t.equal(await archive.archiveEvents('C2', 2, chainOf('C2', [{ at: NOV }, { at: NOV + 1 }, { at: NOV + 2 }]).slice(2)), false, 'a new chain starts at 0')
  t.same(await archive.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 100 }), events.slice(0, 3).map((e) => e.id), 'nothing written by the refused ones')
  t.same([...(await archive.archivedHeads()).keys()], ['C1'], 'no head for the chain refused')
  await t.rejects(archive.archiveEvents('C1', 3, [events[4]!]), /consecutive/, 'events that do not follow afterSeq are a bug')
  await t.rejects(archive.archiveEvents('C1', 3, [{ ...events[3]!, prevHash: 'f'.repeat(64) }]), /link/, 'an event that does not link to the archived head is never archived')
  t.equal(await archive.archiveEvents('C1', 3, events.slice(3)), true)

  const rivals = await Promise.all(Array.from({ length: 4 }, async () => await archiveFor(t, { schema: `archive_${schemas}`, migrate: false })))
  const next = Array.from({ length: 4 }, (_, i) => chainOf('C1', [{ at: NOV + 10_000 + i }, { at: NOV + 20_000 + i }], { seq: 6, hash: events[5]!.hash }))
  const won = await Promise.all(rivals.map(async (rival, i) => await rival.archiveEvents('C1', 6, next[i]!)))
  t.equal(won.filter(Boolean).length, 1, 'exactly one archiver extends the chain')
  const winner = next[won.indexOf(true)]!
  t.same(await archive.auditChainSlice('C1', 7, 10), winner)
  t.same((await archive.auditIndexPage({ index: { kind: 'all' }, fromId: ulid(NOV + 10_000).slice(0, 10), newestFirst: false, count: 100 })), winner.map((e) => e.id), 'the losers wrote nothing')
  t.same((await archive.archivedHeads()).get('C1'), { seq: 8, hash: winner[1]!.hash, id: winner[1]!.id })
})

t.test('index pages answer as the hot tier does: every index, both orders, id and time-prefix bounds', async (t) => {
  const archive = await archiveFor(t)
  const hot: AuditStore = new MemoryStores().audit
  const second = 1000
  // two chains interleaved in time, over three subjects' accesses, agencies and documents
  const drafts = (offset: number): Draft[] => Array.from({ length: 30 }, (_, i) => {
    const at = NOV + (2 * i + offset) * second
    if (i % 5 === 0) return access(at, subjectA)
    if (i % 5 === 1) return access(at, subjectB, { hidden: true, hiddenUntil: '2026-11-20', reason: 'Điều tra' })
    if (i % 5 === 2) return { at, actor: `agency-${i % 3}`, action: 'document.indexed', outcome: 'granted', documents: [{ id: `D${i % 4}` }, { id: 'DALL' }] }
    if (i % 5 === 3) return { ...access(at, subjectB), outcome: i % 2 ? 'denied' : 'granted' }
    return access(at, subjectA, { hidden: true, hiddenUntil: i % 2 ? '2099-01-01' : 'never' })
  })
  const chains = [chainOf('CA', drafts(0)), chainOf('CB', drafts(1))]
  for (const events of chains) {
    t.equal(await hot.appendAuditEvents(events.map((event) => ({ event }))), true)
    for (let i = 0; i < events.length; i += 7) t.equal(await archive.archiveEvents(events[0]!.chain, i, events.slice(i, i + 7)), true)
  }
  const ids = chains.flat().map((e) => e.id).sort()
  const indexes: AuditIndex[] = [
    { kind: 'all' }, { kind: 'agency', value: '000.00.12.H41' }, { kind: 'agency', value: 'agency-1' }, { kind: 'agency', value: 'nobody' },
    { kind: 'subject', value: subjectA }, { kind: 'subject', value: subjectB }, { kind: 'document', value: 'DALL' }, { kind: 'document', value: 'D2' },
    { kind: 'history', value: subjectA }, { kind: 'history', value: subjectB }
  ]
  const bounds: Array<Pick<AuditIndexPage, 'fromId' | 'toId'>> = [
    {}, { fromId: ids[10] }, { toId: ids[40] }, { fromId: ids[10], toId: ids[40] }, { fromId: ids[40], toId: ids[10] },
    { fromId: ids[10]!.slice(0, 10) }, { toId: ids[40]!.slice(0, 10) }, { fromId: ulid(NOV + 15 * second).slice(0, 10), toId: ulid(NOV + 33 * second).slice(0, 10) }
  ]
  const compare = async (asOfDay: string): Promise<void> => {
    let pages = 0
    for (const index of indexes) {
      for (const bound of bounds) {
        for (const newestFirst of [true, false]) {
          for (const count of [3, 100]) {
            const page: AuditIndexPage = { index, ...bound, newestFirst, count }
            const [expected, got] = [await hot.auditIndexPage(page), await archive.auditIndexPage({ ...page, asOfDay })]
            if (JSON.stringify(got) !== JSON.stringify(expected)) t.same(got, expected, `${JSON.stringify(page)} as of ${asOfDay}`)
            else pages++
          }
        }
      }
    }
    t.equal(pages, indexes.length * bounds.length * 4, `every page as the hot tier's, as of ${asOfDay}`)
  }
  await compare('2026-11-19')
  t.equal((await archive.auditIndexPage({ index: { kind: 'history', value: subjectB }, newestFirst: true, count: 100, asOfDay: '2026-11-19' })).length, 6,
    'the subject sees only its granted accesses not hidden on that day')
  // the hot tier moves the hidden accesses due by a day into the history; the archive answers from that day on
  await hot.revealAuditHistory(subjectA, '2026-11-20', 100)
  await hot.revealAuditHistory(subjectB, '2026-11-20', 100)
  await compare('2026-11-20')
  t.equal((await archive.auditIndexPage({ index: { kind: 'history', value: subjectB }, newestFirst: true, count: 100, asOfDay: '2026-11-20' })).length, 18)
  t.equal((await archive.auditIndexPage({ index: { kind: 'history', value: subjectA }, newestFirst: true, count: 100 })).length, 12,
    'as of today: accesses hidden until 2099, or with no readable date, stay hidden')
  t.same(await archive.auditIndexPage({ index: { kind: 'all' }, newestFirst: true, count: 0 }), [])
  t.same(await archive.auditIndexPage({ index: { kind: 'subject', value: '' }, newestFirst: true, count: 5 }), [])
  await t.rejects(archive.auditIndexPage({ index: { kind: 'history', value: subjectA }, newestFirst: true, count: 5, asOfDay: '20/11/2026' }), /asOfDay/)
  t.strictSame(await archive.auditChainSlice('CB', 5, 4), await hot.auditChainSlice('CB', 5, 4), 'chain slices as the hot tier\'s')
})

t.test('checkpoints: archived once each, read by position as the hot tier lists them', async (t) => {
  const archive = await archiveFor(t)
  const hot = new MemoryStores().audit
  const [a, b, c, d] = ['2026-11-01T00:00:00.000Z', '2026-11-02T00:00:00.000Z', '2026-11-03T00:00:00.000Z', '2026-11-04T00:00:00.000Z']
    .map((time, i) => checkpointAt(time, [{ chain: 'C1', seq: i + 1, hash: String(i).repeat(64) }, { chain: 'C2', seq: 7, hash: 'e'.repeat(64) }])) as [AuditCheckpointRecord, AuditCheckpointRecord, AuditCheckpointRecord, AuditCheckpointRecord]
  await archive.archiveCheckpoints([a, b])
  await archive.archiveCheckpoints([a, b])
  t.equal(await archive.auditCheckpointCount(), 2, 'archiving them again adds nothing')
  t.equal(await archive.archiveEvents('C1', 0, chainOf('C1', [{ at: NOV }]), [b, c, d, c]), true)
  t.equal(await archive.auditCheckpointCount(), 4)
  for (const cp of [a, b, c, d]) await hot.putAuditCheckpoint(cp)
  t.strictSame(await archive.auditCheckpoints(), [a, b, c, d], 'oldest first, deep-equal')
  for (const [start, stop] of [[0, 0], [1, 2], [2, -1], [0, -2], [3, 10], [5, 9], [2, 1], [0, -5]] as const) {
    t.strictSame(await archive.auditCheckpoints(start, stop), await hot.auditCheckpoints(start, stop), `positions ${start} to ${stop}`)
  }
  t.strictSame(await archive.auditCheckpoints(-2, -1), [c, d], 'a negative start counts from the end too, as LRANGE')
  t.equal(await archive.archiveEvents('C1', 0, [], [checkpointAt('2026-11-05T00:00:00.000Z')]), false, 'checkpoints of a refused batch are not archived either')
  t.equal(await archive.auditCheckpointCount(), 4)
})

t.test('months: events land in their month\'s partition; retention drops whole months, their events and older checkpoints', async (t) => {
  const archive = await archiveFor(t)
  const oct = Date.UTC(2026, 9, 10)
  const events = chainOf('C1', [{ at: oct }, { at: oct + DAY, documents: [{ id: 'D1' }] }, { at: NOV + 5 * DAY, documents: [{ id: 'D1' }] }, { at: NOV + 20 * DAY }, { at: Date.UTC(2026, 11, 3), subject: subjectA }])
  const other = chainOf('C2', [{ at: oct + 2 * DAY }, { at: NOV + 2 * DAY }])
  await archive.ensurePartitions(new Date(NOV), new Date(NOV))
  // October and December were not made ahead of time: made on the way
  t.equal(await archive.archiveEvents('C1', 0, events, [checkpointAt('2026-10-15T00:00:00.000Z'), checkpointAt('2026-10-31T00:00:00.000Z'), checkpointAt('2026-11-10T00:00:00.000Z')]), true)
  t.equal(await archive.archiveEvents('C2', 0, other, [checkpointAt('2026-11-20T00:00:00.000Z')]), true)
  await archive.ensurePartitions(new Date(Date.UTC(2026, 11, 31)), new Date(Date.UTC(2027, 0, 2)))
  const partitions = await archive.partitions()
  t.same(partitions.map(({ name, from, to, rows }) => ({ name, from, to, rows })), [
    { name: 'audit_events_2026_10', from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z', rows: 3 },
    { name: 'audit_events_2026_11', from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', rows: 3 },
    { name: 'audit_events_2026_12', from: '2026-12-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z', rows: 1 },
    { name: 'audit_events_2027_01', from: '2027-01-01T00:00:00.000Z', to: '2027-02-01T00:00:00.000Z', rows: 0 }
  ])
  t.ok(partitions.every((p) => p.bytes > 0), 'with their size on disk')

  t.same(await archive.headsBefore(new Date(NOV)), [{ chain: 'C1', seq: 2, hash: events[1]!.hash }, { chain: 'C2', seq: 1, hash: other[0]!.hash }])
  t.same(await archive.headsBefore(new Date(NOV + 10 * DAY)), [{ chain: 'C1', seq: 3, hash: events[2]!.hash }, { chain: 'C2', seq: 2, hash: other[1]!.hash }])
  t.same(await archive.headsBefore(new Date(oct)), [], 'no chain had an event yet')

  // another process listed the months before they were dropped: it creates a month again rather than failing
  const stale = await archiveFor(t, { schema: `archive_${schemas}`, migrate: false })
  await stale.ensurePartitions(new Date(oct), new Date(NOV))

  t.same(await archive.dropPartitionsBefore(new Date(NOV + 15 * DAY)), ['audit_events_2026_10'], 'only the months wholly before')
  t.same((await archive.partitions()).map((p) => p.name), ['audit_events_2026_11', 'audit_events_2026_12', 'audit_events_2027_01'])
  t.same(await archive.auditEvents([events[0]!.id, events[2]!.id]), [events[2]], 'the dropped month\'s events are gone')
  t.same(await archive.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 100 }), [events[2]!.id, other[1]!.id, events[3]!.id, events[4]!.id].sort())
  t.same(await archive.auditIndexPage({ index: { kind: 'document', value: 'D1' }, newestFirst: false, count: 100 }), [events[2]!.id], 'with their document entries')
  t.same(await archive.auditChainSlice('C1', 1, 10), events.slice(2))
  t.same((await archive.auditCheckpoints()).map((cp) => cp.time), ['2026-11-10T00:00:00.000Z', '2026-11-20T00:00:00.000Z'],
    'checkpoints older than the newest one before the cut are gone; that one anchors what remains')
  t.same((await archive.archivedHeads()).get('C1')?.seq, 5, 'the archived heads stay')
  t.same(await archive.dropPartitionsBefore(new Date(NOV + 15 * DAY)), [], 'again: nothing more')

  const late = chainOf('C3', [{ at: oct + 3 * DAY }])
  t.equal(await stale.archiveEvents('C3', 0, late), true)
  t.same(await archive.auditEvents([late[0]!.id]), late)
})

t.test('PostgreSQL stopped: calls fail with ArchiveUnavailableError within the connect timeout, and work again once it is back', async (t) => {
  const archive = await archiveFor(t, { connectTimeoutMs: 1500 })
  const events = chainOf('C1', [{ at: NOV }, { at: NOV + 1 }])
  t.equal(await archive.archiveEvents('C1', 0, events.slice(0, 1)), true)
  await server.stop()
  let restarted = false
  t.teardown(async () => { if (!restarted) await server.start() })
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['ping', async () => await archive.ping()],
    ['an index page', async () => await archive.auditIndexPage({ index: { kind: 'all' }, newestFirst: true, count: 10 })],
    ['events', async () => await archive.auditEvents([events[0]!.id])],
    ['archiving', async () => await archive.archiveEvents('C1', 1, events.slice(1))],
    ['migrating', async () => await archive.migrate()]
  ]
  for (const [what, call] of calls) {
    const started = Date.now()
    await t.rejects(async () => { await call() }, ArchiveUnavailableError, what)
    t.ok(Date.now() - started < 1500 + 1000, `${what}: answered within the connect timeout`)
  }
  await server.start()
  restarted = true
  let back = false
  for (let i = 0; i < 100 && !back; i++) back = await archive.ping().then(() => true, async () => { await new Promise((resolve) => setTimeout(resolve, 50)); return false })
  t.ok(back, 'answers again')
  t.equal(await archive.archiveEvents('C1', 1, events.slice(1)), true, 'archiving resumes where it stopped')
  t.same(await archive.auditEvents(events.map((e) => e.id)), events)
})
