import { execFileSync } from 'node:child_process'
import { benchGateway, benchRedis, CPUS } from './lib.js'
import type { LoadFigures } from './lib.js'
import { benchReuse } from './reuse.js'
import { benchToken } from './token.js'
import { benchImport } from './import.js'
import { benchAuditSearch, fillAuditTrail } from './audit-search.js'
import { benchScale } from './scale.js'

/**
 * The benchmark suite. Figures are printed, never asserted: each beside a baseline measured in
 * the same run, so the ratios hold from machine to machine. See bench/README.md.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const documents = Number(process.env.BENCH_DOCS ?? 100_000)
const auditEvents = Number(process.env.BENCH_AUDIT_EVENTS ?? 1_000_000)
const fixedRate = Number(process.env.BENCH_FIXED_RATE ?? 500)
const started = Date.now()
// this process (and what it starts without a CPU of its own: Redis, the import client) on the load CPU
if (CPUS) execFileSync('taskset', ['-pc', CPUS.load, String(process.pid)], { stdio: 'ignore' })

const rows: string[][] = []
const fmt = (x: LoadFigures): string => `${x.requestsPerSecond.toFixed(0)} req/s, p50 ${x.p50} ms, p99 ${x.p99} ms${x.errors + x.non2xx ? `, ${x.errors} errors, ${x.non2xx} non-2xx` : ''}${x.server ? ` (server: ${x.server.cpuUsPerRequest.toFixed(0)} µs CPU a request, ${x.server.cpuPercent.toFixed(0)}% of a CPU, ${x.server.runQueueWaitMsPerSecond.toFixed(0)} ms/s waiting for one)` : ''}`
const ratio = (a: number, b: number, digits = 3): string => (a / b).toFixed(digits)
const progress = (what: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${what}\n`) }

const redis = await benchRedis()
try {
  const g = await benchGateway(redis, CPUS?.server)
  try {
    progress('reuse queries')
    const reuse = await benchReuse(g, seconds, connections, fixedRate)
    rows.push(['1. reuse query finding one document', fmt(reuse.full), `bare Fastify route: ${fmt(reuse.bare)}`, ratio(reuse.full.requestsPerSecond, reuse.bare.requestsPerSecond)])
    rows.push([`1b. reuse query at a fixed ${fixedRate} req/s`, fmt(reuse.fixed), `bare Fastify route at ${fixedRate} req/s: ${fmt(reuse.bareFixed)}`, `p99 ${ratio(reuse.fixed.p99, Math.max(reuse.bareFixed.p99, 1), 1)} ×`])
    rows.push(['2. reuse query, mode status', fmt(reuse.status), `bare Fastify route: ${fmt(reuse.bare)}`, ratio(reuse.status.requestsPerSecond, reuse.bare.requestsPerSecond)])
    progress('token endpoint')
    const token = await benchToken(g, seconds, connections)
    rows.push(['3. token endpoint', fmt(token.endpoint), `jose verify + sign loop: ${token.jose.opsPerSecond.toFixed(0)} /s`, ratio(token.endpoint.requestsPerSecond, token.jose.opsPerSecond)])
    progress('scale-out')
    const scale = await benchScale(g, redis, reuse.setup, seconds, connections)
    rows.push(['6. two gateway processes, reuse query', fmt(scale.two), `one process: ${fmt(scale.one)}`, ratio(scale.two.requestsPerSecond, scale.one.requestsPerSecond, 2)])
    progress(`filling the audit trail with ${auditEvents} events`)
    const fill = await fillAuditTrail(redis, auditEvents)
    progress('audit search')
    const search = await benchAuditSearch(g, seconds, 10)
    rows.push([`5. audit search by subject, ${auditEvents} events (10 connections)`, fmt(search), `bare Fastify route: ${fmt(reuse.bare)}`, ratio(search.requestsPerSecond, reuse.bare.requestsPerSecond)])
    rows.push(['   (trail filled at)', `${(auditEvents / fill.seconds).toFixed(0)} events/s`, '', ''])
  } finally {
    await g.stop()
  }
} finally {
  await redis.stop()
}
progress(`batch import of ${documents} documents`)
const f = await benchImport(documents)
rows.push(['4. batch import: documents/s', f.gatewayDocsPerSecond.toFixed(0), `plain SET per line: ${f.baselineSetsPerSecond.toFixed(0)}`, ratio(f.gatewayDocsPerSecond, f.baselineSetsPerSecond)])
rows.push(['4. batch import: Redis bytes/document', f.redisBytesPerDocument.toFixed(0), `raw NDJSON: ${f.rawBytesPerDocument.toFixed(0)}`, ratio(f.redisBytesPerDocument, f.rawBytesPerDocument, 2)])

console.log(`\nreuse gateway benchmarks — ${seconds} s a load, ${connections} connections, ${CPUS ? `server on CPU ${CPUS.server}, load generator on CPU ${CPUS.load}` : 'no CPU pinning (taskset or a second CPU missing)'}, ${((Date.now() - started) / 1000).toFixed(0)} s in all\n`)
console.log('| scenario | figures | baseline (same run) | ratio |')
console.log('|---|---|---|---|')
for (const row of rows) console.log(`| ${row.join(' | ')} |`)
