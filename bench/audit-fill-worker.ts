import { appendChain } from './audit-search.js'
import type { FillSpread } from './audit-search.js'

/** One chain of the audit trail the audit benches read (bench/audit-search.ts fillAuditTrail): its job as JSON in argv[2]. */
const job = JSON.parse(process.argv[2] as string) as { url: string, prefix: string, events: number, share: { every: number, offset: number }, spread?: FillSpread }
const { chain, heads } = await appendChain(job, job.events, job.share, job.spread)
console.log(JSON.stringify({ events: job.events, chain, heads }))
