import { fillAuditTrail } from './audit-search.js'
import type { BenchGateway, BenchRedis } from './lib.js'
import { RedisStores } from '../src/store/index.js'
import { CHECKPOINT_TYP, eventHash } from '../src/services/audit.js'
import type { AuditEvent } from '../src/services/audit.js'
import { SigningKeys } from '../src/services/signing-keys.js'

/**
 * Verifying the last day of a month-long trail: the events of the audit benches' trail
 * (bench/run.ts: 1,200,000 by default) spread evenly over 30 days in two chains, with the checkpoints the gateway makes every 10 minutes
 * (both chains' heads, signed with the gateway's key, stored in time order), then
 * `GET /v1/audit/verify?from=<a day ago>`. It reads each chain from the checkpoint before the
 * day, so it should cost what a day holds (about 40,000 events), not the month.
 */
export const VERIFY_ISSUER = 'https://bench.gateway.test'
const DAY = 86_400_000

export interface VerifyFigures {
  /** the last day's verification, over `runs` requests */
  lastDay: { medianMs: number, maxMs: number, checked: number, complete: boolean, ok: boolean }
  /** the same day's events, fetched through the export, re-hashed in a plain loop */
  plainHashMs: number
  plainEvents: number
  /** the whole trail, cursor after cursor (when asked for) */
  whole?: { ms: number, checked: number, requests: number, ok: boolean }
}

/** The fill of a month of trail: `events` events spread evenly over the last 30 days, in two chains (bench/audit-search.ts fillAuditTrail). */
export async function fillMonthOfTrail (redis: BenchRedis, events: number): Promise<Awaited<ReturnType<typeof fillAuditTrail>>> {
  const now = Date.now()
  return await fillAuditTrail(redis, events, { fromMs: now - 30 * DAY, toMs: now - 60_000, checkpointEveryMs: 10 * 60_000 })
}

/**
 * Signs the checkpoints the gateway would have made every 10 minutes of that month (both chains'
 * heads, with the gateway's key, stored in time order), before any gateway runs on this Redis
 * (its own checkpoints come after, in time order). Returns how many.
 */
export async function signMonthCheckpoints (redis: BenchRedis, fill: Awaited<ReturnType<typeof fillAuditTrail>>): Promise<number> {
  const store = new RedisStores({ url: redis.url, keyPrefix: redis.prefix, commandTimeoutMs: 60_000, quitTimeoutMs: 1000 })
  await store.connect()
  try {
    // the gateway's key, generated in the store as a gateway started on it would
    const keys = await SigningKeys.load({ kind: 'store', keys: store.signingKeys, alg: 'EdDSA' }, { retentionMs: 90 * DAY })
    // at each interval's end, every chain's newest head by then (an interval may have added none)
    const times = [...new Set(fill.chains.flatMap((c) => c.heads.map(([time]) => time)))].sort((a, b) => a - b)
    const next = fill.chains.map(() => 0)
    const latest: Array<{ chain: string, seq: number, hash: string } | undefined> = fill.chains.map(() => undefined)
    for (const time of times) {
      fill.chains.forEach((c, i) => {
        for (let head = c.heads[next[i] as number]; head && head[0] <= time; head = c.heads[next[i] as number]) {
          latest[i] = { chain: c.chain, seq: head[1], hash: head[2] }
          next[i] = (next[i] as number) + 1
        }
      })
      const chains = latest.filter((head) => head !== undefined)
      const jws = await keys.sign({ iss: VERIFY_ISSUER, iat: Math.floor(time / 1000), writer: chains[0]?.chain, chains }, CHECKPOINT_TYP)
      await store.audit.putAuditCheckpoint({ time: new Date(time).toISOString(), jws, chains })
    }
    keys.stop()
    return times.length
  } finally {
    await store.close()
  }
}

export async function benchAuditVerify (g: BenchGateway, wholeMonth: boolean, runs = 5): Promise<VerifyFigures> {
  const auditor = await g.agency('000.00.98.H41', 'Thanh tra bench', ['auditor'])
  const headers = { authorization: `Bearer ${auditor.token}` }
  const from = new Date(Date.now() - DAY).toISOString()
  const get = async (path: string): Promise<Response> => {
    const res = await fetch(`${g.gateway.url}${path}`, { headers })
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
    return res
  }
  const times: number[] = []
  let last: { ok: boolean, checked: number, complete: boolean } | undefined
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    last = await (await get(`/v1/audit/verify?from=${encodeURIComponent(from)}`)).json() as typeof last
    times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)

  // the baseline: the day's events re-hashed in a plain loop, nothing read or checked
  const events = (await (await get(`/v1/audit/export?from=${encodeURIComponent(from)}`)).text()).trim().split('\n').map((line) => JSON.parse(line) as AuditEvent)
  const hashing = performance.now()
  let differing = 0
  for (const event of events) if (eventHash(event) !== event.hash) differing++
  const plainHashMs = performance.now() - hashing
  if (differing) throw new Error(`${differing} exported events do not hash to their hash`)

  // and the whole month, following the cursors
  let whole: VerifyFigures['whole']
  if (wholeMonth) {
    whole = { ms: 0, checked: 0, requests: 0, ok: false }
    const started = performance.now()
    let cursor: string | undefined
    do {
      const page = await (await get(`/v1/audit/verify${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`)).json() as { ok: boolean, checked: number, nextCursor?: string }
      whole.requests++
      whole.checked = page.checked
      whole.ok = page.ok
      cursor = page.nextCursor
    } while (cursor)
    whole.ms = performance.now() - started
  }

  return {
    lastDay: { medianMs: times[Math.floor(times.length / 2)] as number, maxMs: times[times.length - 1] as number, checked: last?.checked ?? 0, complete: last?.complete ?? false, ok: last?.ok ?? false },
    plainHashMs,
    plainEvents: events.length,
    ...(whole ? { whole } : {})
  }
}
