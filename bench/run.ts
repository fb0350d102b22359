import { benchImport } from './import.js'
import { benchReuse } from './reuse.js'

/**
 * The benchmark suite. Figures are printed, never asserted: each beside a baseline measured in
 * the same run, so the ratios hold from machine to machine. See bench/README.md.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const r = await benchReuse(seconds, connections)
const fmt = (x: { requestsPerSecond: number, p50: number, p99: number, errors: number }): string => `${x.requestsPerSecond.toFixed(0)} req/s, p50 ${x.p50} ms, p99 ${x.p99} ms${x.errors ? `, ${x.errors} errors` : ''}`
console.log(`\nreuse query finding one document, ${connections} connections, ${seconds} s each\n`)
console.log('| scenario | figures | baseline (bare Fastify route, constant JSON) | throughput ratio |')
console.log('|---|---|---|---|')
console.log(`| reuse query (attestation, receipt, audit) | ${fmt(r.gateway)} | ${fmt(r.bare)} | ${(r.gateway.requestsPerSecond / r.bare.requestsPerSecond).toFixed(3)} |`)
console.log(`| reuse query, mode status | ${fmt(r.statusMode)} | ${fmt(r.bare)} | ${(r.statusMode.requestsPerSecond / r.bare.requestsPerSecond).toFixed(3)} |`)

const count = Number(process.env.BENCH_DOCS ?? 100_000)
const f = await benchImport(count)
const row = (name: string, value: string, baseline: string, ratio: string): string => `| ${name} | ${value} | ${baseline} | ${ratio} |`
console.log(`\nbatch import of ${f.documents} generated documents\n`)
console.log('| figure | gateway | baseline | ratio |')
console.log('|---|---|---|---|')
console.log(row('documents/s', f.gatewayDocsPerSecond.toFixed(0), `${f.baselineSetsPerSecond.toFixed(0)} (plain SET per line)`, (f.gatewayDocsPerSecond / f.baselineSetsPerSecond).toFixed(3)))
console.log(row('bytes/document', `${f.redisBytesPerDocument.toFixed(0)} (Redis used_memory)`, `${f.rawBytesPerDocument.toFixed(0)} (raw NDJSON)`, (f.redisBytesPerDocument / f.rawBytesPerDocument).toFixed(2)))
