import { auditIndexName, auditIndexNames } from './audit-keys.js'
import type { AgencyRecord, AuditCheckpointRecord, AuditIndexPage, Persistence, SigningKeySetRecord, Store, StoredAuditEvent } from './store.js'

/** first position in a sorted array whose value is ≥ (or > when `after`) the probe */
function bound (sorted: string[], probe: string, after: boolean): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const value = sorted[mid] as string
    if (value < probe || (after && value === probe)) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * The embedded store: everything in this process's memory, gone when it stops. It exists so
 * that `npm start` works with nothing installed; the server refuses it in production.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  private readonly agencies = new Map<string, string>()
  private readonly claims = new Map<string, number>()
  private signingKeys: SigningKeySetRecord | undefined
  private lastSweep = 0
  private readonly auditEventsById = new Map<string, string>()
  private readonly auditHeads = new Map<string, { seq: number, hash: string }>()
  private readonly auditBySeq = new Map<string, Map<number, string>>()
  private readonly auditIndexes = new Map<string, string[]>()
  private readonly checkpoints: AuditCheckpointRecord[] = []

  async ping (): Promise<void> {}

  async persistence (): Promise<Persistence> {
    return { aof: false, rdb: false }
  }

  // Records are kept serialized, as Redis keeps them: callers never share objects with the store.
  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    const json = this.agencies.get(code)
    return json === undefined ? undefined : JSON.parse(json)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    return [...this.agencies.keys()].sort().map((code) => JSON.parse(this.agencies.get(code) as string))
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    const created = !this.agencies.has(agency.code)
    this.agencies.set(agency.code, JSON.stringify(agency))
    return { created }
  }

  async claimOnce (namespace: string, id: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    this.sweep(now)
    const key = `${namespace}\u0000${id}`
    const until = this.claims.get(key)
    if (until !== undefined && until > now) return false
    this.claims.set(key, now + ttlMs)
    return true
  }

  /** drops expired claims now and then, so the map stays as small as the live ones */
  private sweep (now: number): void {
    if (now - this.lastSweep < 10_000) return
    this.lastSweep = now
    for (const [key, until] of this.claims) if (until <= now) this.claims.delete(key)
  }

  async getSigningKeys (): Promise<SigningKeySetRecord | undefined> {
    return this.signingKeys === undefined ? undefined : structuredClone(this.signingKeys)
  }

  async putSigningKeys (keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean> {
    if ((this.signingKeys?.revision ?? 0) !== expectedRevision) return false
    this.signingKeys = { revision: expectedRevision + 1, keys: structuredClone(keys) }
    return true
  }

  async appendAuditEvent (event: StoredAuditEvent): Promise<boolean> {
    const head = this.auditHeads.get(event.chain)
    const fits = head === undefined ? event.seq === 1 : head.seq === event.seq - 1 && head.hash === event.prevHash
    if (!fits) return false
    this.auditEventsById.set(event.id, JSON.stringify(event))
    this.auditHeads.set(event.chain, { seq: event.seq, hash: event.hash })
    let bySeq = this.auditBySeq.get(event.chain)
    if (!bySeq) this.auditBySeq.set(event.chain, bySeq = new Map())
    bySeq.set(event.seq, event.id)
    for (const name of auditIndexNames(event)) {
      let ids = this.auditIndexes.get(name)
      if (!ids) this.auditIndexes.set(name, ids = [])
      ids.splice(bound(ids, event.id, false), 0, event.id)
    }
    return true
  }

  async auditChainHead (chain: string): Promise<{ seq: number, hash: string } | undefined> {
    const head = this.auditHeads.get(chain)
    return head ? { ...head } : undefined
  }

  async auditChains (): Promise<string[]> {
    return [...this.auditHeads.keys()].sort()
  }

  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    const ids = this.auditIndexes.get(auditIndexName(page.index)) ?? []
    const start = page.fromId === undefined ? 0 : bound(ids, page.fromId, false)
    const end = page.toId === undefined ? ids.length : bound(ids, page.toId, false)
    if (start >= end) return []
    return page.newestFirst
      ? ids.slice(Math.max(start, end - page.count), end).reverse()
      : ids.slice(start, Math.min(end, start + page.count))
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    const out: StoredAuditEvent[] = []
    for (const id of ids) {
      const json = this.auditEventsById.get(id)
      if (json !== undefined) out.push(JSON.parse(json))
    }
    return out
  }

  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    const bySeq = this.auditBySeq.get(chain)
    if (!bySeq) return []
    const ids: string[] = []
    const last = this.auditHeads.get(chain)?.seq ?? 0
    for (let seq = fromSeq; seq < fromSeq + count && seq <= last; seq++) {
      const id = bySeq.get(seq)
      if (id !== undefined) ids.push(id)
    }
    return await this.auditEvents(ids)
  }

  async putAuditCheckpoint (checkpoint: AuditCheckpointRecord): Promise<void> {
    this.checkpoints.push(structuredClone(checkpoint))
  }

  async auditCheckpoints (): Promise<AuditCheckpointRecord[]> {
    return structuredClone(this.checkpoints)
  }

  async pruneAudit (upToSeq: Record<string, number>): Promise<number> {
    let removed = 0
    for (const [chain, upTo] of Object.entries(upToSeq)) {
      const bySeq = this.auditBySeq.get(chain)
      if (!bySeq) continue
      for (const [seq, id] of [...bySeq]) {
        if (seq > upTo) continue
        const json = this.auditEventsById.get(id)
        if (json !== undefined) {
          for (const name of auditIndexNames(JSON.parse(json))) {
            const ids = this.auditIndexes.get(name)
            if (!ids) continue
            const at = bound(ids, id, false)
            if (ids[at] === id) ids.splice(at, 1)
          }
        }
        this.auditEventsById.delete(id)
        bySeq.delete(seq)
        removed++
      }
    }
    return removed
  }

  async close (): Promise<void> {}
}
