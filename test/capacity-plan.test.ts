import { test } from 'tap'
import { formatPlans, plan, WORKLOADS, MASTER_GB, MASTER_FILL } from '../bench/capacity.js'
import type { BenchFigures } from '../bench/capacity.js'

// figures of the kind `npm run bench` prints (docs/capacity.md)
const measured: BenchFigures = { reusePerSecond: 1989, tokensPerSecond: 2845, importGatewayMicros: 265, importRedisMicros: 49.5, bytesPerDocument: 2197, auditBytesPerDocument: 774.4, bytesPerAuditEvent: 959, postgresBytesPerAuditEvent: 1176, archiverEventsPerSecond: 11_462 }
const [province, country] = WORKLOADS as [typeof WORKLOADS[0], typeof WORKLOADS[0]]
const budgetGb = MASTER_GB * MASTER_FILL

test('with the archive, a back-fill that fits the {audit} master runs at its full rate', async (t) => {
  const p = plan(measured, province)
  t.equal(p.archivedBackfill?.staged, false)
  t.equal(p.archivedBackfill?.docsPerSecond, p.backfillDocsPerSecond, 'the rate the master\'s CPU allows')
  t.ok((p.auditMasterGbWithArchive as number) <= budgetGb, 'the master\'s peak within what is planned of it')
  t.match(p.firstBottleneck, /^none within the plan/)
})

test('with the archive, a back-fill larger than the master goes in daily stages the master holds', async (t) => {
  const p = plan(measured, country)
  const stage = p.archivedBackfill
  t.equal(stage?.staged, true)
  // a day of stage beside a day of the other events fills the master's planned share, no more
  const dayGb = (stage?.docsPerSecond ?? 0) * 86_400 * measured.auditBytesPerDocument / 1e9 + p.auditGbPerDay
  t.ok(Math.abs(dayGb - budgetGb) < 0.01, `a day of stage takes ${dayGb.toFixed(2)} GB of ${budgetGb} GB`)
  t.ok(Math.abs((p.auditMasterGbWithArchive as number) - budgetGb) < 0.01, 'the master\'s peak is that day')
  t.ok(Math.abs((stage?.hours ?? 0) - country.results / (stage?.docsPerSecond ?? 1) / 3600) < 1e-9, 'the time is the results at the stage rate')
  t.ok((stage?.docsPerSecond ?? Infinity) < p.backfillDocsPerSecond, 'slower than the master\'s CPU allows')
  t.match(p.firstBottleneck, /^the \{audit\} master's memory/)
})

test('with the archive, a slow archiver paces the stages', async (t) => {
  const p = plan({ ...measured, archiverEventsPerSecond: 400 }, country)
  t.equal(p.archivedBackfill?.docsPerSecond, 200, 'half of what the archiver measured')
  t.match(p.firstBottleneck, /^the archiver: 400 events\/s measured \(200 planned\)/)
})

test('without the archive, the back-fill\'s records must fit the one master', async (t) => {
  const { postgresBytesPerAuditEvent: _p, archiverEventsPerSecond: _a, ...hotOnly } = measured
  const p = plan(hotOnly, country)
  t.equal(p.archivedBackfill, undefined)
  t.equal(p.auditMasterGbWithArchive, undefined)
  t.match(p.firstBottleneck, /do not fit one 64 GB master/)
})

test('the printed plan says how each back-fill runs, a column a workload', async (t) => {
  const row = formatPlans(measured).split('\n').find((line) => line.startsWith('| with the archive: the back-fill |'))
  t.match(row, /\| 0\.4 hours at the full rate \| 10\.4 days in daily stages of 48,254,282 documents \(558\/s\) \|$/)
})
