import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { ulidFactory } from '../src/lib/ulid.js'
import { load, loadScript, pinnedScript } from './lib.js'
import type { BenchGateway, BenchRedis, LoadFigures } from './lib.js'
import { RedisStores } from '../src/store/index.js'
import { AuditService } from '../src/services/audit.js'
import type { AuditEvent, AuditInput } from '../src/services/audit.js'
import { subjectHash } from '../src/services/identifiers.js'
import { DEVELOPMENT_PEPPER } from '../src/config.js'

/**
 * Audit search by subject with a large trail: `events` realistic reuse-query events (default
 * 1,000,000) are appended straight into the store — hash-chained, indexed, as the gateway
 * writes them — spread over 200,000 subjects and 50 agencies, ten of them about the citizen
 * searched for. Then an auditor searches that citizen through the API.
 */
export const CITIZEN = { kind: 'citizen' as const, id: '052090001234' }

/**
 * Where a chain's fill spreads its events in time (ms since the epoch) instead of "now": evenly
 * from `fromMs` to `toMs`, a batch per `checkpointEveryMs`, its head noted at the end of each
 * (bench/audit-verify.ts signs the checkpoints of both chains from them).
 */
export interface FillSpread { fromMs: number, toMs: number, checkpointEveryMs: number }

/** a chain's head at the end of each interval of a spread fill: [time (ms), seq, hash] */
export type FillHeads = Array<[number, number, string]>

/**
 * Appends `events` events of one new chain (the searched citizen's share among them) through
 * the audit service, as the gateway writes them (group commit: the batch in flight, then the
 * rest together). Two of these run at once, one per CPU, while the gateway is idle:
 * bench/audit-fill-worker.ts. With `spread`, the service's clock is the bench's.
 */
export async function appendChain (redis: { url: string, prefix: string }, events: number, share: { every: number, offset: number }, spread?: FillSpread): Promise<{ chain: string, heads: FillHeads }> {
  const store = new RedisStores({ url: redis.url, keyPrefix: redis.prefix, commandTimeoutMs: 60_000, quitTimeoutMs: 1000 })
  await store.connect()
  const ulid = ulidFactory()
  const target = subjectHash(DEVELOPMENT_PEPPER, CITIZEN)
  const others = Array.from({ length: 100_000 }, () => randomBytes(32).toString('hex'))
  let clock = spread?.fromMs ?? Date.now()
  const audit = new AuditService({
    audit: store.audit,
    log: pino({ level: 'silent' }),
    signer: { sign: async () => { throw new Error('the fill makes no checkpoint') } },
    issuer: 'bench',
    cursorKey: 'bench',
    ...(spread ? { now: () => clock } : {})
  })
  const input = (n: number): AuditInput => ({
    actor: `000.00.${String(n % 50).padStart(2, '0')}.H41`,
    action: 'reuse.queried',
    outcome: 'granted',
    subject: n % share.every === 0 ? target : others[n % others.length] as string,
    documents: [{ id: ulid(), version: 1 }],
    purpose: { procedureCode: '1.001193', dossierCode: `000.20.41.H41-261125-${String(n).padStart(7, '0')}` },
    // unique, as the gateway's are, without a system call a line (the fill's time is the audit service's, not the random source's)
    requestId: (n + 1).toString(16).padStart(16, '0'),
    clientAddress: '10.0.0.1',
    detail: { documentTypes: ['giay-khai-sinh'], mode: 'full' }
  })
  const heads: FillHeads = []
  const intervals = spread ? Math.max(1, Math.ceil((spread.toMs - spread.fromMs) / spread.checkpointEveryMs)) : Math.ceil(events / 500)
  try {
    for (let i = 0, done = 0; i < intervals; i++) {
      const upTo = Math.round(events * (i + 1) / intervals)
      const batch: Array<Promise<AuditEvent>> = []
      for (; done < upTo; done++) {
        if (spread) clock = Math.floor(spread.fromMs + (spread.toMs - spread.fromMs) * done / events)
        batch.push(audit.record(input(done + share.offset)))
      }
      const last = (await Promise.all(batch)).at(-1)
      if (spread && last) heads.push([Math.min(spread.toMs, spread.fromMs + (i + 1) * spread.checkpointEveryMs), last.seq, last.hash])
    }
    await audit.stop()
  } finally {
    await store.close()
  }
  return { chain: audit.chain, heads }
}

/** `events` events over 200,000 subjects and 50 agencies, ten of them about the citizen searched for, in two chains filled at once */
export async function fillAuditTrail (redis: BenchRedis, events: number, spread?: FillSpread): Promise<{ seconds: number, chains: Array<{ chain: string, heads: FillHeads }> }> {
  const start = process.hrtime.bigint()
  const every = Math.max(1, Math.floor(events / 10))
  const half = Math.ceil(events / 2)
  const job = (count: number, offset: number): string[] => [JSON.stringify({ url: redis.url, prefix: redis.prefix, events: count, share: { every, offset }, ...(spread ? { spread } : {}) })]
  const filled = await Promise.all([
    pinnedScript<{ chain: string, heads: FillHeads }>('bench/audit-fill-worker.ts', job(half, 0)),
    loadScript<{ chain: string, heads: FillHeads }>('bench/audit-fill-worker.ts', job(events - half, half))
  ])
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, chains: filled.map(({ chain, heads }) => ({ chain, heads })) }
}

export async function benchAuditSearch (g: BenchGateway, seconds: number, connections: number): Promise<LoadFigures> {
  const auditor = await g.agency('000.00.99.H41', 'Thanh tra tỉnh', ['auditor'])
  return await load({ url: `${g.gateway.url}/v1/audit/search`, headers: { authorization: `Bearer ${auditor.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ subject: CITIZEN, limit: 20 }), seconds, connections, ...(g.pid ? { server: g.pid } : {}) })
}
