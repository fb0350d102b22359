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
  /** with the archive: the back-fill's rate and time, in daily stages when it does not fit the {audit} master at once */
  archivedBackfill?: { docsPerSecond: number, hours: number, staged: boolean }
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
  const archivedBackfill = archived ? backfillWithArchive(f, w, backfillDocsPerSecond, auditGbPerDay) : undefined
  // with an archive the {audit} master holds the hot window only: during the back-fill a day of
  // its events beside a day of the others (AUDIT_HOT_DAYS=1), afterwards the usual days
  const auditMasterGbWithArchive = archivedBackfill
    ? Math.max(Math.min(w.results, archivedBackfill.docsPerSecond * 86_400 * BACKFILL_HOT_DAYS) * f.auditBytesPerDocument / GB + auditGbPerDay * BACKFILL_HOT_DAYS, auditGbHot)
    : undefined
  const firstBottleneck = archivedBackfill
    ? archivedBackfill.bottleneck
    : auditMasterGbAtBackfill > MASTER_GB * MASTER_FILL
    ? `the {audit} master's memory: the back-fill's audit and outbox records (${(w.results * f.auditBytesPerDocument / GB).toFixed(0)} GB) do not fit one ${MASTER_GB} GB master — archive as the back-fill goes, or shard the trail`
    : auditGbInYears > MASTER_GB * MASTER_FILL
      ? `the {audit} master's memory after ${((MASTER_GB * MASTER_FILL - w.results * f.auditBytesPerDocument / GB) / auditGbPerDay).toFixed(0)} days of audit without an archive`
      : 'none within the plan'
  return { workload: w, peakReusePerSecond, tokensPerSecond, gatewayProcesses, documentsGb, auditEventsPerDay, auditGbPerDay, auditGbInYears, auditGbHot, dataMasters, auditMasterGbAtBackfill, backfillDocsPerSecond, backfillHours, backfillGatewayProcesses, ...(archiveGbInYears !== undefined ? { archiveGbInYears } : {}), ...(auditMasterGbWithArchive !== undefined ? { auditMasterGbWithArchive } : {}), ...(archivedBackfill ? { archivedBackfill: { docsPerSecond: archivedBackfill.docsPerSecond, hours: archivedBackfill.hours, staged: archivedBackfill.staged } } : {}), firstBottleneck }
}

/**
 * The back-fill with the archive. Its events wait a day in Redis before the archiver may move
 * them (AUDIT_HOT_DAYS counts whole days), so the {audit} master holds a day of them beside a
 * day of the other events. When the whole back-fill fits there it runs at its full rate (the
 * archiver catches up afterwards); otherwise it goes in daily stages, each at most what the
 * master holds and what the archiver, planned at half what it measured, moves in a day.
 */
function backfillWithArchive (f: BenchFigures, w: Workload, fullRate: number, auditGbPerDay: number): { docsPerSecond: number, hours: number, staged: boolean, bottleneck: string } {
  const archiverPlanned = (f.archiverEventsPerSecond as number) * HEADROOM
  const heldDocs = (MASTER_GB * MASTER_FILL - auditGbPerDay * BACKFILL_HOT_DAYS) * GB / f.auditBytesPerDocument
  if (w.results <= heldDocs) {
    return { docsPerSecond: fullRate, hours: w.results / fullRate / 3600, staged: false, bottleneck: 'none within the plan: the whole back-fill fits the {audit} master, and the archive keeps it to its hot window' }
  }
  const byMemory = heldDocs / 86_400 / BACKFILL_HOT_DAYS
  const docsPerSecond = Math.min(fullRate, archiverPlanned, byMemory)
  const bottleneck = docsPerSecond === byMemory
    ? `the {audit} master's memory: it holds a day of ${(heldDocs / 1e6).toFixed(0)} M documents' audit and outbox records, so the back-fill goes in daily stages of that many (${docsPerSecond.toFixed(0)}/s)`
    : docsPerSecond === archiverPlanned
      ? `the archiver: ${(f.archiverEventsPerSecond as number).toFixed(0)} events/s measured (${archiverPlanned.toFixed(0)} planned), the back-fill appends ${fullRate.toFixed(0)}/s — the back-fill waits for it`
      : 'the {audit} master\'s CPU: the back-fill at its full rate, in daily stages the master holds'
  return { docsPerSecond, hours: w.results / docsPerSecond / 3600, staged: true, bottleneck }
}


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
          row(`with the archive: the {audit} master at its peak (hot window of ${BACKFILL_HOT_DAYS} day during the back-fill, then ${HOT_DAYS})`, (p) => `${n(p.auditMasterGbWithArchive ?? 0, 1)} GB`),
          row('with the archive: the back-fill', (p) => p.archivedBackfill === undefined
            ? ''
            : p.archivedBackfill.staged
              ? `${n(p.archivedBackfill.hours / 24, 1)} days in daily stages of ${n(p.archivedBackfill.docsPerSecond * 86_400)} documents (${n(p.archivedBackfill.docsPerSecond)}/s)`
              : `${n(p.archivedBackfill.hours, 1)} hours at the full rate`)
        ]
      : []),
    row('first bottleneck', (p) => p.firstBottleneck)
  ].join('\n')
}
