import { benchImport } from './import.js'

/**
 * The benchmark suite. Figures are printed, never asserted: each beside a baseline measured in
 * the same run, so the ratios hold from machine to machine. See bench/README.md.
 */
const count = Number(process.env.BENCH_DOCS ?? 100_000)
const f = await benchImport(count)
const row = (name: string, value: string, baseline: string, ratio: string): string => `| ${name} | ${value} | ${baseline} | ${ratio} |`
console.log(`\nbatch import of ${f.documents} generated documents\n`)
console.log('| figure | gateway | baseline | ratio |')
console.log('|---|---|---|---|')
console.log(row('documents/s', f.gatewayDocsPerSecond.toFixed(0), `${f.baselineSetsPerSecond.toFixed(0)} (plain SET per line)`, (f.gatewayDocsPerSecond / f.baselineSetsPerSecond).toFixed(3)))
console.log(row('bytes/document', `${f.redisBytesPerDocument.toFixed(0)} (Redis used_memory)`, `${f.rawBytesPerDocument.toFixed(0)} (raw NDJSON)`, (f.redisBytesPerDocument / f.rawBytesPerDocument).toFixed(2)))
