import { auditIndexEntries, auditIndexName, auditIndexNames, dayScore, hiddenIndexName } from './audit-keys.js'
import type { AgreementRecord, DownloadGrant, DocumentTypeRecord, DocumentKeys, RegisterOutcome, StoredDocument, StoredDocumentFile, StoredDocumentVersion } from './store.js'
import type { AgencyRecord, AuditCheckpointRecord, AuditIndexPage, Persistence, SigningKeySetRecord, Store, StoredAuditEvent } from './store.js'
import type { OutboxDeliveryRecord, OutboxDestinationStatus, OutboxEventRecord, OutboxSettlement } from './store.js'
import { MemoryOutbox } from './memory-outbox.js'

/**
 * Records kept serialized, as Redis keeps them, listed in key order: callers never share
 * objects with the store.
 */
class RecordTable<T> {
  private readonly records = new Map<string, string>()

  get (key: string): T | undefined {
    const json = this.records.get(key)
    return json === undefined ? undefined : JSON.parse(json) as T
  }

  list (): T[] {
    return [...this.records.keys()].sort().map((key) => JSON.parse(this.records.get(key) as string) as T)
  }

  put (key: string, record: T): { created: boolean } {
    const created = !this.records.has(key)
    this.records.set(key, JSON.stringify(record))
    return { created }
  }
}

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
  private readonly agencies = new RecordTable<AgencyRecord>()
  private readonly agencyKeysGenerations = new Map<string, number>()
  private readonly claims = new Map<string, number>()
  private signingKeys: SigningKeySetRecord | undefined
  private lastSweep = 0
  private readonly auditEventsById = new Map<string, string>()
  private readonly auditHeads = new Map<string, { seq: number, hash: string }>()
  private readonly auditBySeq = new Map<string, Map<number, string>>()
  private readonly auditIndexes = new Map<string, string[]>()
  /** the entries of an index with a score other than 0 (a hidden access: the day it becomes visible) */
  private readonly auditScores = new Map<string, Map<string, number>>()
  private readonly checkpoints: AuditCheckpointRecord[] = []
  private readonly documents = new Map<string, Map<string, string>>()
  private readonly documentSubject = new Map<string, string>()
  private readonly documentTypes = new RecordTable<DocumentTypeRecord>()
  private readonly agreements = new RecordTable<AgreementRecord>()
  private readonly reuseCounters = new Map<string, Map<string, number>>()
  private readonly outbox = new MemoryOutbox()
  private readonly reuses = new Map<string, string[]>()
  private readonly downloads = new Map<string, { json: string, until: number }>()
  private readonly naturalKeys = new Map<string, { id: string, contentHash: string }>()

  async ping (): Promise<void> {}

  async persistence (): Promise<Persistence> {
    return { aof: false, rdb: false }
  }

  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    return this.agencies.get(code)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    return this.agencies.list()
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    return this.agencies.put(agency.code, agency)
  }

  async agencyKeysGeneration (code: string): Promise<number> {
    return this.agencyKeysGenerations.get(code) ?? 0
  }

  async bumpAgencyKeysGeneration (code: string): Promise<number> {
    const next = (this.agencyKeysGenerations.get(code) ?? 0) + 1
    this.agencyKeysGenerations.set(code, next)
    return next
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

  async appendAuditEvent (event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean> {
    return await this.appendAuditEvents([{ event, ...options }])
  }

  async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean> {
    const first = batch[0]?.event
    if (!first) return true
    const head = this.auditHeads.get(first.chain)
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
    this.auditEventsById.set(event.id, JSON.stringify(event))
    this.auditHeads.set(event.chain, { seq: event.seq, hash: event.hash })
    let bySeq = this.auditBySeq.get(event.chain)
    if (!bySeq) this.auditBySeq.set(event.chain, bySeq = new Map())
    bySeq.set(event.seq, event.id)
    for (const { name, score } of auditIndexEntries(event)) {
      this.addToIndex(name, event.id)
      if (score !== 0) {
        let scores = this.auditScores.get(name)
        if (!scores) this.auditScores.set(name, scores = new Map())
        scores.set(event.id, score)
      }
    }
    if (announce) this.outbox.announce(event.id, Date.parse(String(event.time)))
  }

  private addToIndex (name: string, id: string): void {
    let ids = this.auditIndexes.get(name)
    if (!ids) this.auditIndexes.set(name, ids = [])
    const at = bound(ids, id, false)
    if (ids[at] !== id) ids.splice(at, 0, id)
  }

  private removeFromIndex (name: string, id: string): void {
    this.auditScores.get(name)?.delete(id)
    const ids = this.auditIndexes.get(name)
    if (!ids) return
    const at = bound(ids, id, false)
    if (ids[at] === id) ids.splice(at, 1)
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

  async revealAuditHistory (subjectHash: string, day: string, max: number): Promise<number> {
    const hidden = hiddenIndexName(subjectHash)
    const due = [...this.auditScores.get(hidden) ?? []]
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

  async auditCheckpointCount (): Promise<number> {
    return this.checkpoints.length
  }

  async auditCheckpoints (start = 0, stop = -1): Promise<AuditCheckpointRecord[]> {
    const end = stop < 0 ? this.checkpoints.length + stop + 1 : stop + 1
    return structuredClone(this.checkpoints.slice(Math.max(0, start), Math.max(0, end)))
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
          for (const name of auditIndexNames(JSON.parse(json))) this.removeFromIndex(name, id)
        }
        this.auditEventsById.delete(id)
        bySeq.delete(seq)
        removed++
      }
    }
    return removed
  }

  private readDocument (subjectHash: string, id: string): StoredDocument | undefined {
    const json = this.documents.get(subjectHash)?.get(id)
    return json === undefined ? undefined : JSON.parse(json)
  }

  private writeDocument (subjectHash: string, id: string, document: StoredDocument): void {
    let bySubject = this.documents.get(subjectHash)
    if (!bySubject) this.documents.set(subjectHash, bySubject = new Map())
    bySubject.set(id, JSON.stringify(document))
  }

  async registerDocument (keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome> {
    const known = this.naturalKeys.get(keys.naturalKey)
    if (known) {
      const document = (await this.getDocument(known.id))?.document as StoredDocument
      return { outcome: known.contentHash === first.contentHash ? 'existing' : 'conflict', document }
    }
    const document: StoredDocument = { versions: [first], files: {} }
    this.naturalKeys.set(keys.naturalKey, { id: first.id, contentHash: first.contentHash })
    this.writeDocument(keys.subjectHash, first.id, document)
    this.documentSubject.set(first.id, keys.subjectHash)
    return { outcome: 'created', document: structuredClone(document) }
  }

  async findRegistration (naturalKey: string): Promise<{ id: string, contentHash: string } | undefined> {
    const known = this.naturalKeys.get(naturalKey)
    return known ? { ...known } : undefined
  }

  async getDocument (id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined> {
    const subjectHash = this.documentSubject.get(id)
    const document = subjectHash === undefined ? undefined : this.readDocument(subjectHash, id)
    return document && subjectHash ? { document, subjectHash } : undefined
  }

  async amendDocument (subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options: { carryFile?: boolean } = {}): Promise<false | { file?: StoredDocumentFile }> {
    const document = this.readDocument(subjectHash, next.id)
    if (!document || document.versions.length !== expectedVersion || document.revoked) return false
    document.versions.push(next)
    const file = options.carryFile ? document.files[expectedVersion] : undefined
    if (file) document.files[next.version] = { ...file, carriedFrom: file.carriedFrom ?? expectedVersion }
    this.writeDocument(subjectHash, next.id, document)
    const carried = document.files[next.version]
    return carried ? { file: carried } : {}
  }

  async revokeDocument (subjectHash: string, id: string, revoked: NonNullable<StoredDocument['revoked']>): Promise<boolean> {
    const document = this.readDocument(subjectHash, id)
    if (!document || document.revoked) return false
    document.revoked = revoked
    this.writeDocument(subjectHash, id, document)
    return true
  }

  async attachDocumentFile (subjectHash: string, id: string, version: number, file: StoredDocumentFile): Promise<boolean> {
    const document = this.readDocument(subjectHash, id)
    if (!document || document.files[version]) return false
    document.files[version] = file
    this.writeDocument(subjectHash, id, document)
    return true
  }

  async documentsOfSubject (subjectHash: string, types?: string[]): Promise<StoredDocument[]> {
    const out: StoredDocument[] = []
    for (const json of this.documents.get(subjectHash)?.values() ?? []) {
      const document = JSON.parse(json) as StoredDocument
      if (!types || types.includes(document.versions[0]?.type as string)) out.push(document)
    }
    return out
  }

  async * documentIdPages (pageSize: number): AsyncIterable<string[]> {
    const ids = [...this.documentSubject.keys()]
    for (let i = 0; i < ids.length; i += pageSize) yield ids.slice(i, i + pageSize)
  }

  async rewriteDocumentVersion (subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean> {
    const document = this.readDocument(subjectHash, previous.id)
    const at = document ? document.versions.findIndex((v) => v.version === previous.version) : -1
    if (!document || at < 0 || JSON.stringify(document.versions[at]) !== JSON.stringify(previous)) return false
    document.versions[at] = next
    this.writeDocument(subjectHash, previous.id, document)
    return true
  }

  async getDocumentType (code: string): Promise<DocumentTypeRecord | undefined> {
    return this.documentTypes.get(code)
  }

  async listDocumentTypes (): Promise<DocumentTypeRecord[]> {
    return this.documentTypes.list()
  }

  async putDocumentType (record: DocumentTypeRecord, expectedVersion: number): Promise<boolean> {
    const current = await this.getDocumentType(record.code)
    if ((current?.schemaVersion ?? 0) !== expectedVersion) return false
    this.documentTypes.put(record.code, record)
    return true
  }

  async getAgreement (id: string): Promise<AgreementRecord | undefined> {
    return this.agreements.get(id)
  }

  async putAgreement (agreement: AgreementRecord): Promise<{ created: boolean }> {
    return this.agreements.put(agreement.id, agreement)
  }

  async listAgreements (): Promise<AgreementRecord[]> {
    return this.agreements.list()
  }

  async recordReuse (subjectHash: string, documentId: string, reuse: { requester: string, version: number, dossierCode: string, procedureCode: string, at: string }): Promise<void> {
    const key = `${subjectHash}/${documentId}`
    const list = this.reuses.get(key) ?? []
    list.push(JSON.stringify(reuse))
    this.reuses.set(key, list)
  }

  async reusesOf (subjectHash: string, documentId: string): Promise<Array<{ requester: string, version: number, dossierCode: string, procedureCode: string, at: string }>> {
    return (this.reuses.get(`${subjectHash}/${documentId}`) ?? []).map((json) => JSON.parse(json))
  }

  async dueOutboxSources (now: number, limit: number): Promise<string[]> {
    return this.outbox.dueSources(now, limit)
  }

  async outboxEvent (id: string): Promise<OutboxEventRecord | undefined> {
    return this.outbox.event(id)
  }

  async scheduleOutboxSource (source: string, at: number): Promise<void> {
    this.outbox.schedule(source, at)
  }

  async dropOutboxSource (source: string): Promise<void> {
    this.outbox.drop(source)
  }

  async publishOutboxEvent (source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined> {
    return this.outbox.publish(source, event, deliveries, schedule, now)
  }

  async claimOutboxDeliveries (now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>> {
    return this.outbox.claimDeliveries(now, leaseMs, limit, lease)
  }

  async settleOutboxDelivery (destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean> {
    return this.outbox.settle(destination, eventId, lease, outcome, now)
  }

  async replayOutbox (destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }> {
    return this.outbox.replay(destination, after, limit, now)
  }

  async outboxDeliveries (destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]> {
    return this.outbox.list(destination, after, limit)
  }

  async outboxStatus (): Promise<OutboxDestinationStatus[]> {
    return this.outbox.status()
  }

  async holdLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.outbox.holdLease(name, owner, ttlMs)
  }

  async addReuseCounts (day: string, increments: Record<string, number>): Promise<void> {
    const counts = this.reuseCounters.get(day) ?? new Map<string, number>()
    for (const [field, n] of Object.entries(increments)) counts.set(field, (counts.get(field) ?? 0) + n)
    this.reuseCounters.set(day, counts)
  }

  async reuseCounts (days: string[]): Promise<Record<string, number>> {
    const sum: Record<string, number> = {}
    for (const day of days) for (const [field, n] of this.reuseCounters.get(day) ?? []) sum[field] = (sum[field] ?? 0) + n
    return sum
  }

  async revokeConsent (jti: string, ttlMs: number): Promise<void> {
    this.claims.set(`consent-revoked\u0000${jti}`, Date.now() + ttlMs)
  }

  async consentRevoked (jti: string): Promise<boolean> {
    return (this.claims.get(`consent-revoked\u0000${jti}`) ?? 0) > Date.now()
  }

  async putDownloadGrant (token: string, grant: DownloadGrant, ttlMs: number): Promise<void> {
    this.downloads.set(token, { json: JSON.stringify(grant), until: Date.now() + ttlMs })
  }

  async peekDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    const entry = this.downloads.get(token)
    if (!entry || entry.until <= Date.now()) return undefined
    return JSON.parse(entry.json)
  }

  async takeDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    // read and delete with no await between: concurrent takers cannot both get it
    const entry = this.downloads.get(token)
    this.downloads.delete(token)
    if (!entry || entry.until <= Date.now()) return undefined
    return JSON.parse(entry.json)
  }

  async close (): Promise<void> {}
}
