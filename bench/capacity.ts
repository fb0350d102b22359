/**
 * A capacity plan computed from the figures of one `npm run bench` run (docs/capacity.md explains
 * each line): how many gateway processes and Redis masters a province and the whole country
 * need, the back-fill time, the audit trail's growth, and the first bottleneck. Nothing here is
 * guessed except the workload, which is stated.
 */

/** what the bench measured, as the plan uses it */
export interface BenchFigures {
  /** row 1: reuse queries a second one gateway process answers at 50 connections */
  reusePerSecond: number
  /** row 3: tokens a second one process issues */
  tokensPerSecond: number
  /** row 4: gateway CPU microseconds per imported document (validation, audit, write, announcement) */
  importGatewayMicros: number
  /** row 4: Redis CPU microseconds per imported document */
  importRedisMicros: number
  /** row 4: Redis bytes per document with full buckets (document, its audit event, outbox record, indexes) */
  bytesPerDocument: number
  /** row 4: of which the audit trail and the outbox (the {audit} hash tag: one cluster slot) */
  auditBytesPerDocument: number
  /** row 5: Redis bytes per reuse-query audit event, its indexes included */
  bytesPerAuditEvent: number
  /** row 7: PostgreSQL bytes per archived audit event (row, indexes, document entry); absent without the archive part */
  postgresBytesPerAuditEvent?: number
  /** row 7: events a second the archiver moves */
  archiverEventsPerSecond?: number
}

export interface Workload {
  name: string
  citizens: number
  results: number
  reuseQueriesPerDay: number
  /** the peak second's rate as a multiple of the day's average */
  peakFactor: number
  /** agency processes holding tokens, each renewing every 5 minutes (each issuance is audited) */
  agencyProcesses: number
  auditYears: number
}

export const WORKLOADS: Workload[] = [
  { name: 'a province', citizens: 3_000_000, results: 15_000_000, reuseQueriesPerDay: 15_000, peakFactor: 20, agencyProcesses: 100, auditYears: 5 },
  { name: 'the country', citizens: 100_000_000, results: 500_000_000, reuseQueriesPerDay: 500_000, peakFactor: 20, agencyProcesses: 2_000, auditYears: 5 }
]

/** the planning rules: a process or a master is planned at this share of what the bench measured */
export const HEADROOM = 0.5
/** memory of one Redis master, and the share of it planned for data (the rest: fork for AOF rewrite, fragmentation) */
export const MASTER_GB = 64
export const MASTER_FILL = 0.6
/** the hot window the audit trail keeps in Redis once archived (AUDIT_HOT_DAYS, the default) */
export const HOT_DAYS = 30

const GB = 1e9

export interface Plan {
  workload: Workload
  peakReusePerSecond: number
  tokensPerSecond: number
  gatewayProcesses: number
  documentsGb: number
  auditEventsPerDay: number
  auditGbPerDay: number
  auditGbInYears: number
  auditGbHot: number
  dataMasters: number
  /** the {audit} tag's master: the back-fill's audit events and the hot window, on one master */
  auditMasterGbAtBackfill: number
  backfillDocsPerSecond: number
  backfillHours: number
  backfillGatewayProcesses: number
  /** with the archive: the trail in PostgreSQL after the years (back-fill included) */
  archiveGbInYears?: number
  /** with the archive and a hot window of one day during the back-fill: the {audit} master's peak */
  auditMasterGbWithArchive?: number
  firstBottleneck: string
}

/** the hot window during a back-fill, with an archive (AUDIT_HOT_DAYS=1) */
export const BACKFILL_HOT_DAYS = 1

export function plan (f: BenchFigures, w: Workload): Plan {
  const peakReusePerSecond = w.reuseQueriesPerDay / 86_400 * w.peakFactor
  const tokensPerDay = w.agencyProcesses * 288
  const tokensPerSecond = tokensPerDay / 86_400
  // at least two, so one can be lost or restarted without an outage
  const gatewayProcesses = Math.max(2, Math.ceil(peakReusePerSecond / (f.reusePerSecond * HEADROOM) + tokensPerSecond / (f.tokensPerSecond * HEADROOM)))
  const documentsGb = w.results * (f.bytesPerDocument - f.auditBytesPerDocument) / GB
  const auditEventsPerDay = w.reuseQueriesPerDay + tokensPerDay
  const auditGbPerDay = auditEventsPerDay * f.bytesPerAuditEvent / GB
  const auditGbInYears = auditGbPerDay * 365.25 * w.auditYears
  const auditGbHot = auditGbPerDay * HOT_DAYS
  const dataMasters = Math.max(1, Math.ceil(documentsGb / (MASTER_GB * MASTER_FILL)))
  // the back-fill's own audit events and outbox records are all under the {audit} tag
  const auditMasterGbAtBackfill = w.results * f.auditBytesPerDocument / GB + auditGbHot
  // gateways scale out; the {audit} master does not: every document's audit event is appended there
  const backfillDocsPerSecond = 1e6 / f.importRedisMicros * HEADROOM
  const backfillGatewayProcesses = Math.ceil(backfillDocsPerSecond / (1e6 / f.importGatewayMicros))
  const backfillHours = w.results / backfillDocsPerSecond / 3600
  const archived = f.postgresBytesPerAuditEvent !== undefined && f.archiverEventsPerSecond !== undefined
  const archiveGbInYears = archived ? (auditEventsPerDay * 365.25 * w.auditYears + w.results) * (f.postgresBytesPerAuditEvent as number) / GB : undefined
  // with an archive the {audit} master holds the hot window only: a day of back-fill at most, then the usual days
  const auditMasterGbWithArchive = archived ? Math.min(w.results, backfillDocsPerSecond * 86_400 * BACKFILL_HOT_DAYS) * f.auditBytesPerDocument / GB + auditGbHot : undefined
  const archiverKeepsUp = !archived || (f.archiverEventsPerSecond as number) * HEADROOM >= backfillDocsPerSecond
  const firstBottleneck = archived
    ? !archiverKeepsUp
        ? `the archiver: ${(f.archiverEventsPerSecond as number).toFixed(0)} events/s measured (${((f.archiverEventsPerSecond as number) * HEADROOM).toFixed(0)} planned), the back-fill appends ${backfillDocsPerSecond.toFixed(0)}/s — the back-fill waits for it`
        : (auditMasterGbWithArchive as number) > MASTER_GB * MASTER_FILL
            ? `the {audit} master's memory even with the archive (a day of back-fill, ${n2(auditMasterGbWithArchive as number)} GB)`
            : 'none within the plan: the archive keeps the {audit} master to its hot window'
    : auditMasterGbAtBackfill > MASTER_GB * MASTER_FILL
    ? `the {audit} master's memory: the back-fill's audit and outbox records (${(w.results * f.auditBytesPerDocument / GB).toFixed(0)} GB) do not fit one ${MASTER_GB} GB master — archive as the back-fill goes, or shard the trail`
    : auditGbInYears > MASTER_GB * MASTER_FILL
      ? `the {audit} master's memory after ${((MASTER_GB * MASTER_FILL - w.results * f.auditBytesPerDocument / GB) / auditGbPerDay).toFixed(0)} days of audit without an archive`
      : 'none within the plan'
  return { workload: w, peakReusePerSecond, tokensPerSecond, gatewayProcesses, documentsGb, auditEventsPerDay, auditGbPerDay, auditGbInYears, auditGbHot, dataMasters, auditMasterGbAtBackfill, backfillDocsPerSecond, backfillHours, backfillGatewayProcesses, ...(archiveGbInYears !== undefined ? { archiveGbInYears } : {}), ...(auditMasterGbWithArchive !== undefined ? { auditMasterGbWithArchive } : {}), firstBottleneck }
}

const n2 = (x: number): string => x.toFixed(1)

export function formatPlans (f: BenchFigures): string {
  const plans = WORKLOADS.map((w) => plan(f, w))
  const row = (label: string, value: (p: Plan) => string): string => `| ${label} | ${plans.map(value).join(' | ')} |`
  const n = (x: number, digits = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  return [
    `| | ${plans.map((p) => p.workload.name).join(' | ')} |`,
    `|---|${plans.map(() => '---').join('|')}|`,
    row('citizens, results', (p) => `${n(p.workload.citizens)}, ${n(p.workload.results)}`),
    row('reuse queries a day; at the peak second', (p) => `${n(p.workload.reuseQueriesPerDay)}; ${n(p.peakReusePerSecond, 1)}/s`),
    row('tokens (5-minute renewals)', (p) => `${n(p.tokensPerSecond, 1)}/s`),
    row('gateway processes (one core each)', (p) => n(p.gatewayProcesses)),
    row('Redis for documents', (p) => `${n(p.documentsGb, 1)} GB: ${n(p.dataMasters)} ${p.dataMasters === 1 ? 'master' : 'masters'} of ${MASTER_GB} GB`),
    row('audit events a day; Redis a day', (p) => `${n(p.auditEventsPerDay)}; ${n(p.auditGbPerDay, 2)} GB`),
    row(`audit trail over ${WORKLOADS[0]?.auditYears ?? 5} years; its last ${HOT_DAYS} days`, (p) => `${n(p.auditGbInYears, 0)} GB; ${n(p.auditGbHot, 1)} GB`),
    row('the {audit} master after the back-fill', (p) => `${n(p.auditMasterGbAtBackfill, 1)} GB`),
    row('back-fill rate (the {audit} master at half its CPU)', (p) => `${n(p.backfillDocsPerSecond)} documents/s with ${n(p.backfillGatewayProcesses)} gateway processes`),
    row('back-fill time', (p) => `${n(p.backfillHours, 1)} hours`),
    ...(plans[0]?.archiveGbInYears !== undefined
      ? [
          row(`with the archive: PostgreSQL after ${WORKLOADS[0]?.auditYears ?? 5} years, back-fill included`, (p) => `${n(p.archiveGbInYears ?? 0, 0)} GB`),
          row(`with the archive: the {audit} master at its peak (hot window of ${BACKFILL_HOT_DAYS} day during the back-fill, then ${HOT_DAYS})`, (p) => `${n(p.auditMasterGbWithArchive ?? 0, 1)} GB`)
        ]
      : []),
    row('first bottleneck', (p) => p.firstBottleneck)
  ].join('\n')
}
