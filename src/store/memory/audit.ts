/** The audit trail in memory (the embedded store): chains, time-ordered indexes, checkpoints, retention. */
import { auditIndexEntries, auditIndexName, auditIndexNames, dayScore, hiddenIndexName } from '../audit-keys.js'
import type { AuditCheckpointRecord, AuditIndexPage, AuditStore, StoredAuditEvent } from '../audit.js'
import type { MemoryOutboxStore } from './outbox.js'

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

export class MemoryAuditStore implements AuditStore {
  private readonly eventsById = new Map<string, string>()
  private readonly heads = new Map<string, { seq: number, hash: string }>()
  private readonly bySeq = new Map<string, Map<number, string>>()
  private readonly indexes = new Map<string, string[]>()
  /** the entries of an index with a score other than 0 (a hidden access: the day it becomes visible) */
  private readonly scores = new Map<string, Map<string, number>>()
  private readonly checkpoints: AuditCheckpointRecord[] = []
  private archiveMark: string | undefined

  /** `outbox`: where an announcing event queues its source, in the same step as it is appended */
  constructor (private readonly outbox?: Pick<MemoryOutboxStore, 'announce'>) {}

  async appendAuditEvent (event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean> {
    return await this.appendAuditEvents([{ event, ...options }])
  }

  async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean> {
    const first = batch[0]?.event
    if (!first) return true
    const head = this.heads.get(first.chain)
    let fits = head === undefined ? first.seq === 1 : head.seq === first.seq - 1 && head.hash === first.prevHash
    for (let i = 1; i < batch.length && fits; i++) {
      const [before, event] = [batch[i - 1]!.event, batch[i]!.event]
      fits = event.chain === before.chain && event.seq === before.seq + 1 && event.prevHash === before.hash
    }
    if (!fits) return false
    for (const { event, announce } of batch) this.putAuditEvent(event, announce === true)
    return true
  }

  private putAuditEvent (event: StoredAuditEvent, announce: boolean): void {
    this.eventsById.set(event.id, JSON.stringify(event))
    this.heads.set(event.chain, { seq: event.seq, hash: event.hash })
    let bySeq = this.bySeq.get(event.chain)
    if (!bySeq) this.bySeq.set(event.chain, bySeq = new Map())
    bySeq.set(event.seq, event.id)
    for (const { name, score } of auditIndexEntries(event)) {
      this.addToIndex(name, event.id)
      if (score !== 0) {
        let scores = this.scores.get(name)
        if (!scores) this.scores.set(name, scores = new Map())
        scores.set(event.id, score)
      }
    }
    if (announce) this.outbox?.announce(event.id, Date.parse(String(event.time)))
  }

  private addToIndex (name: string, id: string): void {
    let ids = this.indexes.get(name)
    if (!ids) this.indexes.set(name, ids = [])
    const at = bound(ids, id, false)
    if (ids[at] !== id) ids.splice(at, 0, id)
  }

  private removeFromIndex (name: string, id: string): void {
    this.scores.get(name)?.delete(id)
    const ids = this.indexes.get(name)
    if (!ids) return
    const at = bound(ids, id, false)
    if (ids[at] === id) ids.splice(at, 1)
  }

  async auditChainHead (chain: string): Promise<{ seq: number, hash: string } | undefined> {
    const head = this.heads.get(chain)
    return head ? { ...head } : undefined
  }

  async auditChains (): Promise<string[]> {
    return [...this.heads.keys()].sort()
  }

  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    const ids = this.indexes.get(auditIndexName(page.index)) ?? []
    const start = page.fromId === undefined ? 0 : bound(ids, page.fromId, false)
    const end = page.toId === undefined ? ids.length : bound(ids, page.toId, false)
    if (start >= end) return []
    return page.newestFirst
      ? ids.slice(Math.max(start, end - page.count), end).reverse()
      : ids.slice(start, Math.min(end, start + page.count))
  }

  async revealAuditHistory (subjectHash: string, day: string, max: number): Promise<number> {
    const hidden = hiddenIndexName(subjectHash)
    const due = [...this.scores.get(hidden) ?? []]
      .filter(([, score]) => score <= dayScore(day))
      .sort(([a, x], [b, y]) => x - y || (a < b ? -1 : 1))
      .slice(0, max)
    for (const [id] of due) {
      this.removeFromIndex(hidden, id)
      this.addToIndex(auditIndexName({ kind: 'history', value: subjectHash }), id)
    }
    return due.length
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    const out: StoredAuditEvent[] = []
    for (const id of ids) {
      const json = this.eventsById.get(id)
      if (json !== undefined) out.push(JSON.parse(json))
    }
    return out
  }

  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    const bySeq = this.bySeq.get(chain)
    if (!bySeq) return []
    const ids: string[] = []
    const last = this.heads.get(chain)?.seq ?? 0
    for (let seq = fromSeq; seq < fromSeq + count && seq <= last; seq++) {
      const id = bySeq.get(seq)
      if (id !== undefined) ids.push(id)
    }
    return await this.auditEvents(ids)
  }

  async putAuditCheckpoint (checkpoint: AuditCheckpointRecord): Promise<void> {
    this.checkpoints.push(structuredClone(checkpoint))
  }

  async auditCheckpointCount (): Promise<number> {
    return this.checkpoints.length
  }

  async auditCheckpoints (start = 0, stop = -1): Promise<AuditCheckpointRecord[]> {
    // as LRANGE: a negative position counts from the end
    const first = start < 0 ? this.checkpoints.length + start : start
    const end = stop < 0 ? this.checkpoints.length + stop + 1 : stop + 1
    return structuredClone(this.checkpoints.slice(Math.max(0, first), Math.max(0, end)))
  }

  async pruneAudit (upToSeq: Record<string, number>, _known?: StoredAuditEvent[]): Promise<number> {
    let removed = 0
    for (const [chain, upTo] of Object.entries(upToSeq)) {
      const bySeq = this.bySeq.get(chain)
      if (!bySeq) continue
      for (const [seq, id] of [...bySeq]) {
        if (seq > upTo) continue
        const json = this.eventsById.get(id)
        if (json !== undefined) {
          for (const name of auditIndexNames(JSON.parse(json))) this.removeFromIndex(name, id)
        }
        this.eventsById.delete(id)
        bySeq.delete(seq)
        removed++
      }
    }
    return removed
  }

  async pruneAuditCheckpoints (count: number): Promise<void> {
    this.checkpoints.splice(0, Math.max(0, count))
  }

  async auditArchiveMark (): Promise<string | undefined> {
    return this.archiveMark
  }

  async setAuditArchiveMark (id: string): Promise<void> {
    if (this.archiveMark === undefined || id > this.archiveMark) this.archiveMark = id
  }

  async forgetAuditChain (chain: string, head: { seq: number, hash: string }): Promise<boolean> {
    const stored = this.heads.get(chain)
    if (!stored || stored.seq !== head.seq || stored.hash !== head.hash) return false
    this.heads.delete(chain)
    this.bySeq.delete(chain)
    return true
  }
}
