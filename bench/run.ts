import { execFileSync } from 'node:child_process'
import { benchGateway, benchRedis, CPUS } from './lib.js'
import type { LoadFigures } from './lib.js'
import { benchReuse } from './reuse.js'
import { benchToken } from './token.js'
import { benchImport, usedMemory } from './import.js'
import { benchAuditSearch, CITIZEN } from './audit-search.js'
import { ARCHIVED_CITIZEN, benchArchive, benchArchivedSearch, benchArchiver, fillArchive } from './audit-archive.js'
import type { BenchArchive } from './audit-archive.js'
import { benchAuditVerify, fillMonthOfTrail, signMonthCheckpoints, VERIFY_ISSUER } from './audit-verify.js'
import { monthOf, monthStart } from '../src/store/postgres/partitions.js'
import { benchScale } from './scale.js'
import { formatBreakdown } from './memory-usage.js'
import type { MemoryClass } from './memory-usage.js'
import { formatPlans } from './capacity.js'
import type { BenchFigures } from './capacity.js'

/**
 * The benchmark suite. Figures are printed, never asserted: each beside a baseline measured in
 * the same run, so the ratios hold from machine to machine. See bench/README.md.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const documents = Number(process.env.BENCH_DOCS ?? 100_000)
const auditEvents = Number(process.env.BENCH_AUDIT_EVENTS ?? 1_000_000)
const fixedRate = Number(process.env.BENCH_FIXED_RATE ?? 500)
/** events the archiver moves to PostgreSQL, and events written straight into the archive's past months */
const archiverEvents = Number(process.env.BENCH_ARCHIVER_EVENTS ?? 100_000)
const olderEvents = Number(process.env.BENCH_ARCHIVED_EVENTS ?? 10_000_000)
/** BENCH_VERIFY_MONTH=1: row 7 also verifies the whole month, cursor after cursor (about 40 s more) */
const verifyMonth = process.env.BENCH_VERIFY_MONTH === '1'
/** BENCH_ONLY=import,audit: only those parts (reuse, token, scale, audit, verify, import) */
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((part) => part.trim())) : undefined
const runs = (part: string): boolean => !only || only.has(part)
const started = Date.now()
// this process (and what it starts without a CPU of its own: Redis, the import client) on the load CPU
if (CPUS) execFileSync('taskset', ['-pc', CPUS.load, String(process.pid)], { stdio: 'ignore' })

const rows: string[][] = []
/** what the capacity plan is computed from, as the parts measure it */
const measured: Partial<BenchFigures> = {}
const fmt = (x: LoadFigures): string => `${x.requestsPerSecond.toFixed(0)} req/s, p50 ${x.p50} ms, p99 ${x.p99} ms${x.errors + x.non2xx ? `, ${x.errors} errors, ${x.non2xx} non-2xx` : ''}${x.server ? ` (server: ${x.server.cpuUsPerRequest.toFixed(0)} µs CPU a request, ${x.server.cpuPercent.toFixed(0)}% of a CPU, ${x.server.runQueueWaitMsPerSecond.toFixed(0)} ms/s waiting for one)` : ''}`
const ratio = (a: number, b: number, digits = 3): string => (a / b).toFixed(digits)
const progress = (what: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${what}\n`) }

const auditing = runs('audit') || runs('verify')
if (runs('reuse') || runs('token') || runs('scale') || auditing) {
  const redis = await benchRedis()
  // the audit trail's archive tier, a PostgreSQL of the suite's own behind the gateway (its own archiver idle: the bench moves events itself)
  const archive: BenchArchive | undefined = runs('audit') ? await benchArchive() : undefined
  // the audit trail the audit rows share (5, 7, 8, 9): a month of it, with the archiver's share
  // on top (the hot trail is `auditEvents` once it has moved), filled before the gateway starts
  // with the checkpoints the gateway would have signed every 10 minutes
  const trail = auditEvents + (archive ? archiverEvents : 0)
  try {
    let trailFill: { seconds: number, checkpoints: number } | undefined
    if (auditing) {
      progress(`filling a month of audit trail with ${trail} events, and its checkpoints`)
      const memoryBefore = await usedMemory(redis.url)
      const fill = await fillMonthOfTrail(redis, trail)
      measured.bytesPerAuditEvent = (await usedMemory(redis.url) - memoryBefore) / trail
      trailFill = { seconds: fill.seconds, checkpoints: await signMonthCheckpoints(redis, fill) }
    }
    const g = await benchGateway(redis, CPUS?.server, { GATEWAY_ISSUER: VERIFY_ISSUER, ...(archive ? { AUDIT_ARCHIVE_URL: archive.url, AUDIT_ARCHIVE_INTERVAL_MS: '86400000' } : {}) })
    try {
      if (runs('verify')) {
        // first, while the trail holds only the month (the loads below add to it)
        progress(`audit verification of the last day${verifyMonth ? ', then of the whole month' : ''}`)
        const v = await benchAuditVerify(g, verifyMonth)
        const day = v.lastDay
        rows.push([
          `7. verify the last day of a ${trail}-event month (target ≤ 1000 ms)`,
          `${day.medianMs.toFixed(0)} ms median, ${day.maxMs.toFixed(0)} ms max of 5; ${day.checked} events, ${day.ok ? 'ok' : 'NOT OK'}${day.complete ? '' : ', incomplete'}`,
          `the day's ${v.plainEvents} events re-hashed in a plain loop: ${v.plainHashMs.toFixed(0)} ms`,
          `${ratio(day.medianMs, v.plainHashMs, 1)} ×`
        ])
        if (v.whole) rows.push(['   (the whole month, cursor after cursor)', `${v.whole.ms.toFixed(0)} ms, ${v.whole.requests} requests, ${v.whole.checked} events, ${v.whole.ok ? 'ok' : 'NOT OK'}`, 'the last day\'s median', `${ratio(v.whole.ms, day.medianMs, 0)} ×`])
      }
      // the bare route's figures, measured with the reuse query, are the baseline of several rows
      let bare: LoadFigures | undefined
      let setup
      if (runs('reuse') || runs('scale') || runs('audit')) {
        progress('reuse queries')
        const reuse = await benchReuse(g, seconds, connections, fixedRate)
        bare = reuse.bare
        setup = reuse.setup
        measured.reusePerSecond = reuse.full.requestsPerSecond
        rows.push(['1. reuse query finding one document', fmt(reuse.full), `bare Fastify route: ${fmt(reuse.bare)}`, ratio(reuse.full.requestsPerSecond, reuse.bare.requestsPerSecond)])
        rows.push([`1b. reuse query at a fixed ${fixedRate} req/s`, fmt(reuse.fixed), `bare Fastify route at ${fixedRate} req/s: ${fmt(reuse.bareFixed)}`, `p99 ${ratio(reuse.fixed.p99, Math.max(reuse.bareFixed.p99, 1), 1)} ×`])
        rows.push(['2. reuse query, mode status', fmt(reuse.status), `bare Fastify route: ${fmt(reuse.bare)}`, ratio(reuse.status.requestsPerSecond, reuse.bare.requestsPerSecond)])
      }
      if (runs('token')) {
        progress('token endpoint')
        const token = await benchToken(g, seconds, connections)
        measured.tokensPerSecond = token.endpoint.requestsPerSecond
        rows.push(['3. token endpoint', fmt(token.endpoint), `jose verify + sign loop: ${token.jose.opsPerSecond.toFixed(0)} /s`, ratio(token.endpoint.requestsPerSecond, token.jose.opsPerSecond)])
      }
      if (runs('scale') && setup) {
        progress('scale-out')
        const scale = await benchScale(g, redis, setup, seconds, connections)
        rows.push(['6. two gateway processes, reuse query', fmt(scale.two), `one process: ${fmt(scale.one)}`, ratio(scale.two.requestsPerSecond, scale.one.requestsPerSecond, 2)])
      }
      if (runs('audit')) {
        progress('audit search')
        const search = await benchAuditSearch(g, seconds, 10)
        rows.push([`5. audit search by subject, ${trail} events (10 connections)`, fmt(search), bare ? `bare Fastify route: ${fmt(bare)}` : '(not measured: BENCH_ONLY)', bare ? ratio(search.requestsPerSecond, bare.requestsPerSecond) : ''])
      }
      if (trailFill) {
        rows.push(['   (trail filled at)', `${(trail / trailFill.seconds).toFixed(0)} events/s, ${trailFill.checkpoints} checkpoints`, 'a month of events in two chains, appended through the audit service', ''])
        rows.push(['   (Redis bytes per reuse-query audit event)', (measured.bytesPerAuditEvent ?? 0).toFixed(0), 'the event, its chain position and its index entries', ''])
      }
      if (runs('audit') && archive) {
        progress(`archiving ${archiverEvents} events`)
        const moved = await benchArchiver(redis, archive, archiverEvents)
        measured.postgresBytesPerAuditEvent = moved.postgresBytesPerEvent
        measured.archiverEventsPerSecond = moved.eventsPerSecond
        rows.push([`8. archiver: events moved to PostgreSQL (${moved.moved}: read, every hash recomputed and link checked, committed, removed from Redis; target ≥ 20,000/s)`, `${moved.eventsPerSecond.toFixed(0)} events/s`, `COPY into a bare table: ${moved.baselineRowsPerSecond.toFixed(0)} rows/s`, ratio(moved.eventsPerSecond, moved.baselineRowsPerSecond)])
        rows.push(['   (Redis memory, the trail bounded by the hot window)', `${(moved.redisBytesAfter / 2 ** 20).toFixed(0)} MiB after`, `${(moved.redisBytesBefore / 2 ** 20).toFixed(0)} MiB before: ${((moved.redisBytesBefore - moved.redisBytesAfter) / Math.max(1, moved.moved)).toFixed(0)} B freed an archived event`, ratio(moved.redisBytesAfter, moved.redisBytesBefore, 2)])
        rows.push(['   (PostgreSQL bytes per archived event)', moved.postgresBytesPerEvent.toFixed(0), 'row, indexes and document entry (durable server: fsync on)', ''])
        progress(`writing ${olderEvents} events into the archive's past months`)
        // the year of months before the trail's first (the archiver has just written into that one)
        const older = await fillArchive(archive, olderEvents, monthStart(monthOf(Date.now() - 31 * 86_400_000)).getTime())
        rows.push(['   (archive filled at)', `${(olderEvents / older.seconds).toFixed(0)} events/s`, 'each month made by INSERT … SELECT in PostgreSQL on two connections (unlogged), indexed, then attached', ''])
        progress('audit search across the tiers')
        const spanning = await benchArchivedSearch(g, seconds, 10, CITIZEN)
        const archivedOnly = await benchArchivedSearch(g, seconds, 10, ARCHIVED_CITIZEN)
        const hot = trail - moved.moved
        rows.push([`9. audit search, a subject in both tiers (${hot} events hot, ${olderEvents + moved.moved} archived; 10 connections; target p99 ≤ 30 ms)`, fmt(spanning), bare ? `bare Fastify route: ${fmt(bare)}` : '(not measured: BENCH_ONLY)', bare ? ratio(spanning.requestsPerSecond, bare.requestsPerSecond) : ''])
        rows.push(['9b. audit search, a subject whose events are all archived (target p99 ≤ 30 ms)', fmt(archivedOnly), bare ? `bare Fastify route: ${fmt(bare)}` : '', bare ? ratio(archivedOnly.requestsPerSecond, bare.requestsPerSecond) : ''])
      }
    } finally {
      await g.stop()
    }
  } finally {
    await redis.stop()
    await archive?.stop()
  }
}
let breakdown = ''
if (runs('import')) {
  progress(`batch import of ${documents} documents`)
  const f = await benchImport(documents)
  // At the bench's scale each bucket holds a record or two and its key costs more than they do:
  // the bucketed classes are counted again as they are in buckets as full as at 500 M documents
  const byClass = (name: string): MemoryClass | undefined => f.breakdown.find((c) => c.class === name)
  const benchScale = (names: string[]): number => names.reduce((sum, name) => sum + (byClass(name)?.bytes ?? 0), 0) / documents
  const subjects = byClass('documents {s:}:docs')?.keys ?? 0
  const outboxEvents = byClass('outbox e:')?.entries ?? 0
  const auditAtScale = (f.fullAuditBuckets.documentEntry * documents + f.fullAuditBuckets.subjectEntry * subjects + f.fullAuditBuckets.outboxEvent * outboxEvents) / documents
  const atScale = f.redisBytesPerDocument -
    benchScale(['documents {u:} registrations', 'documents {i:} id pointers', 'audit i1:', 'outbox e:']) +
    f.fullBuckets.registration + f.fullBuckets.pointer + auditAtScale
  const auditClasses = f.breakdown.filter((c) => c.class.startsWith('audit') || c.class.startsWith('outbox')).map((c) => c.class)
  Object.assign(measured, {
    importGatewayMicros: f.gatewayCpuMicros,
    importRedisMicros: f.redisCpuMicros,
    bytesPerDocument: atScale,
    auditBytesPerDocument: benchScale(auditClasses) - benchScale(['audit i1:', 'outbox e:']) + auditAtScale
  })
  breakdown = `\nRedis memory after the import of ${documents} documents, by key class (MEMORY USAGE):\n\n${formatBreakdown(f.breakdown, documents)}\n`
  rows.push(['4. batch import: documents/s', f.gatewayDocsPerSecond.toFixed(0), `plain SET per line: ${f.baselineSetsPerSecond.toFixed(0)}`, ratio(f.gatewayDocsPerSecond, f.baselineSetsPerSecond)])
  rows.push(['   (indexed and announced)', `${f.announcedDocsPerSecond.toFixed(0)} documents/s`, 'until the outbox has published every new document', ''])
  rows.push(['   (CPU per document)', `gateway ${f.gatewayCpuMicros.toFixed(0)} µs, Redis ${f.redisCpuMicros.toFixed(0)} µs`, `one core's worth: ${(1e6 / Math.max(f.gatewayCpuMicros, f.redisCpuMicros)).toFixed(0)} documents/s`, ''])
  rows.push(['4. batch import: Redis bytes/document', f.redisBytesPerDocument.toFixed(0), `raw NDJSON: ${f.rawBytesPerDocument.toFixed(0)}`, ratio(f.redisBytesPerDocument, f.rawBytesPerDocument, 2)])
  rows.push(['   (with full buckets, as at 500 M documents)', atScale.toFixed(0), `registration ${f.fullBuckets.registration.toFixed(0)} B + id pointer ${f.fullBuckets.pointer.toFixed(0)} B + audit index and outbox entries ${auditAtScale.toFixed(0)} B a document, in full buckets (${f.fullBuckets.encoding})`, ratio(atScale, f.rawBytesPerDocument, 2)])
}

console.log(`\nreuse gateway benchmarks — ${seconds} s a load, ${connections} connections, ${CPUS ? `server on CPU ${CPUS.server}, load generator on CPU ${CPUS.load}` : 'no CPU pinning (taskset or a second CPU missing)'}, ${((Date.now() - started) / 1000).toFixed(0)} s in all\n`)
console.log('| scenario | figures | baseline (same run) | ratio |')
console.log('|---|---|---|---|')
for (const row of rows) console.log(`| ${row.join(' | ')} |`)
if (breakdown) console.log(breakdown)
const complete = (m: Partial<BenchFigures>): m is BenchFigures => ['reusePerSecond', 'tokensPerSecond', 'importGatewayMicros', 'importRedisMicros', 'bytesPerDocument', 'auditBytesPerDocument', 'bytesPerAuditEvent'].every((k) => typeof m[k as keyof BenchFigures] === 'number')
if (complete(measured)) console.log(`\nCapacity plan from these figures (bench/capacity.ts, docs/capacity.md):\n\n${formatPlans(measured)}`)
