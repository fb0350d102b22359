import { randomBytes } from 'node:crypto'
import { decodeTime, monotonicFactory } from 'ulid'
import { load, loadScript, pinnedScript } from './lib.js'
import type { BenchGateway, BenchRedis, LoadFigures } from './lib.js'
import { RedisStores } from '../src/store/index.js'
import type { StoredAuditEvent } from '../src/store/index.js'
import { eventHash, GENESIS_HASH } from '../src/services/audit.js'
import type { AuditEvent } from '../src/services/audit.js'
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
 * Appends `events` events of one new chain (the searched citizen's share among them), in
 * batches of 500 as the gateway's group commit writes them. Two of these run at once, one per
 * CPU, while the gateway is idle: bench/audit-fill-worker.ts.
 */
export async function appendChain (redis: { url: string, prefix: string }, events: number, share: { every: number, offset: number }): Promise<void> {
  const store = new RedisStores({ url: redis.url, keyPrefix: redis.prefix, commandTimeoutMs: 60_000, quitTimeoutMs: 1000 })
  await store.connect()
  const ulid = monotonicFactory()
  const chain = ulid()
  const target = subjectHash(DEVELOPMENT_PEPPER, CITIZEN)
  const others = Array.from({ length: 100_000 }, () => randomBytes(32).toString('hex'))
  let head = { seq: 0, hash: GENESIS_HASH }
  try {
    for (let done = 0; done < events;) {
      const batch: Array<{ event: StoredAuditEvent }> = []
      for (let i = 0; i < 500 && done < events; i++, done++) {
        const n = done + share.offset
        const body: Omit<AuditEvent, 'hash'> = {
          id: ulid(),
          chain,
          seq: head.seq + 1,
          time: new Date().toISOString(),
          actor: `000.00.${String(n % 50).padStart(2, '0')}.H41`,
          action: 'reuse.queried',
          outcome: 'granted',
          subject: n % share.every === 0 ? target : others[n % others.length] as string,
          documents: [{ id: ulid(), version: 1 }],
          purpose: { procedureCode: '1.001193', dossierCode: `000.20.41.H41-261125-${String(n).padStart(7, '0')}` },
          requestId: randomBytes(8).toString('hex'),
          clientAddress: '10.0.0.1',
          detail: { documentTypes: ['giay-khai-sinh'], mode: 'full' },
          prevHash: head.hash
        }
        const event = { ...body, time: new Date(decodeTime(body.id)).toISOString() }
        const hashed = { ...event, hash: eventHash(event) }
        head = { seq: hashed.seq, hash: hashed.hash }
        batch.push({ event: hashed as unknown as StoredAuditEvent })
      }
      if (!await store.audit.appendAuditEvents(batch)) throw new Error('audit fill: the chain did not take the batch')
    }
  } finally {
    await store.close()
  }
}

/** `events` events over 200,000 subjects and 50 agencies, ten of them about the citizen searched for, in two chains filled at once */
export async function fillAuditTrail (redis: BenchRedis, events: number): Promise<{ seconds: number }> {
  const start = process.hrtime.bigint()
  const every = Math.max(1, Math.floor(events / 10))
  const half = Math.ceil(events / 2)
  const job = (count: number, offset: number): string[] => [JSON.stringify({ url: redis.url, prefix: redis.prefix, events: count, share: { every, offset } })]
  await Promise.all([
    pinnedScript('bench/audit-fill-worker.ts', job(half, 0)),
    loadScript('bench/audit-fill-worker.ts', job(events - half, half))
  ])
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9 }
}

export async function benchAuditSearch (g: BenchGateway, seconds: number, connections: number): Promise<LoadFigures> {
  const auditor = await g.agency('000.00.99.H41', 'Thanh tra tỉnh', ['auditor'])
  return await load({ url: `${g.gateway.url}/v1/audit/search`, headers: { authorization: `Bearer ${auditor.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ subject: CITIZEN, limit: 20 }), seconds, connections, ...(g.pid ? { server: g.pid } : {}) })
}
