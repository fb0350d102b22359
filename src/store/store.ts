/**
 * The Store contract: everything the gateway keeps, behind one interface with two
 * implementations (Redis for production, in-memory for trying the gateway out). Both pass the
 * same contract suite in test/store/. Methods speak the domain, never HTTP or tokens; any
 * method may throw StoreUnavailableError when the backing server cannot be reached.
 */
export type StoreKind = 'memory' | 'redis'

export interface Persistence {
  /** append-only file on: an acknowledged write survives a crash (with appendfsync always/everysec) */
  aof: boolean
  /** the fsync policy when AOF is on: always, everysec or no */
  appendfsync?: string
  /** RDB snapshots configured (they lose everything since the last snapshot on a crash) */
  rdb: boolean
}

export type AgencyRole = 'issuer' | 'requester' | 'portal' | 'auditor' | 'admin'

/** An agency registered in the gateway (its public keys inline or behind a jwks_uri). */
export interface AgencyRecord {
  code: string
  name: string
  roles: AgencyRole[]
  /** the document types it may index, amend and revoke as issuer; absent (a record from before competences) is none */
  issuableTypes?: string[]
  jwks?: { keys: Array<Record<string, unknown>> }
  jwksUri?: string
  /** where its notices go (documents it reused changed) */
  webhookUrl?: string
  status: 'active' | 'suspended'
  createdAt: string
  updatedAt: string
}

/** The gateway's own signing keys, versioned so that concurrent rotations cannot both win. */
export interface SigningKeySetRecord {
  revision: number
  keys: Array<Record<string, unknown>>
}

/** One audit event as stored (the shape is the audit service's; the store only keeps and indexes it). */
export interface StoredAuditEvent {
  id: string
  chain: string
  seq: number
  prevHash: string
  hash: string
  actor: string | null
  subject?: string
  documents?: Array<{ id: string, version?: number }>
  [field: string]: unknown
}

/**
 * The time-ordered indexes audit search uses; ids sort by time, so one index answers a time
 * range. `history` is a subject's access history: only the accesses it may see (audit-keys.ts).
 */
export type AuditIndex =
  | { kind: 'all' }
  | { kind: 'agency', value: string }
  | { kind: 'subject', value: string }
  | { kind: 'document', value: string }
  | { kind: 'history', value: string }

export interface AuditIndexPage {
  index: AuditIndex
  /** ids ≥ this (inclusive lower bound) */
  fromId?: string
  /** ids < this (exclusive upper bound) */
  toId?: string
  /** newest first (true) or oldest first */
  newestFirst: boolean
  count: number
}

export interface AuditCheckpointRecord {
  time: string
  /** compact JWS signed by the gateway over the chain heads */
  jws: string
  chains: Array<{ chain: string, seq: number, hash: string }>
}

/** One version of an indexed result, as stored (content; status is derived at read time). */
export interface StoredDocumentVersion {
  id: string
  version: number
  type: string
  typeSchemaVersion: number
  subject: { kind: 'citizen' | 'organization', id: string }
  issuer: string
  procedureCode: string
  dossierCode: string
  documentNumber: string
  issuedAt: string
  validFrom: string
  validUntil?: string
  data: Record<string, unknown>
  createdAt: string
  /** SHA-256 of the canonical content: what "the same content again" is compared by */
  contentHash: string
  amendmentReason?: string
}

/** A document: its versions and what happened to it since. */
export interface StoredDocument {
  versions: StoredDocumentVersion[]
  revoked?: { at: string, reason: string, by: string }
  /** digitized files by version */
  files: Record<number, StoredDocumentFile>
}

/** A version's digitized file: its bytes are in the blob store, under their SHA-256. */
export interface StoredDocumentFile {
  mediaType: string
  size: number
  sha256: string
  uploadedAt: string
  /** the version it was uploaded to, when an amendment carried it forward to this one */
  carriedFrom?: number
}

export interface DocumentKeys {
  /** keyed hash of the subject: the partition all of a subject's results live in */
  subjectHash: string
  /** issuer, type and a hash of the document number: the uniqueness key */
  naturalKey: string
}

export type RegisterOutcome =
  | { outcome: 'created', document: StoredDocument }
  | { outcome: 'existing', document: StoredDocument }
  | { outcome: 'conflict', document: StoredDocument }

/** A document type with every schema version it ever had (documents keep the one they were indexed under). */
export interface DocumentTypeRecord {
  code: string
  schemaVersion: number
  definition: Record<string, unknown>
  schemas: Record<number, Record<string, unknown>>
  updatedAt: string
}

/** A data-sharing agreement: what a requester may reuse, for which procedures, which fields. */
export interface AgreementRecord {
  id: string
  requester: string
  documentTypes: string[]
  procedureCodes: string[]
  /** per document type, the structured-data fields released (data minimization) */
  fields: Record<string, string[]>
  fileDownload: boolean
  hiddenAllowed: boolean
  validFrom: string
  validUntil?: string
  status: 'active' | 'suspended'
  legalBasis?: string
  createdAt: string
  updatedAt: string
}

/** A short-lived, single-use right to download one file version. */
export interface DownloadGrant {
  requester: string
  documentId: string
  version: number
  sha256: string
  mediaType: string
  size: number
  dossierCode: string
  procedureCode: string
}

export type OutboxEventType = 'document.indexed' | 'document.amended' | 'document.revoked' | 'document.expired'

/** One announced fact, published once whatever retried or raced to announce it. */
export interface OutboxEventRecord {
  /** `<documentId>.<version>.<indexed|amended|revoked|expired>`: what receivers de-duplicate on */
  id: string
  /** the event's position in the outbox, increasing; replay starts after a cursor */
  cursor: number
  type: OutboxEventType
  occurredAt: string
  documentId: string
  /** the part of the body every destination receives */
  payload: Record<string, unknown>
}

export type OutboxDeliveryState = 'queued' | 'delivered' | 'dead'

/** One event on its way to one destination (`portal`, or `agency:<code>`). */
export interface OutboxDeliveryRecord {
  destination: string
  eventId: string
  cursor: number
  documentId: string
  state: OutboxDeliveryState
  /** attempts made so far */
  attempts: number
  /** epoch ms of the next attempt (queued) */
  nextAttemptAt: number
  lastError?: string
  /** when it was delivered or given up */
  settledAt?: string
  /** the destination's own part of the body (an agency's reuses of the document) */
  extra?: Record<string, unknown>
}

export type OutboxSettlement =
  | { state: 'delivered', at: string }
  | { state: 'retry', nextAttemptAt: number, error: string }
  | { state: 'dead', at: string, error: string }

export interface OutboxDestinationStatus {
  destination: string
  queued: number
  delivered: number
  dead: number
}

export interface Store {
  readonly kind: StoreKind
  /** resolves when the store answers; throws StoreUnavailableError otherwise */
  ping(): Promise<void>
  /** how durable an acknowledged write is */
  persistence(): Promise<Persistence>
  getAgency(code: string): Promise<AgencyRecord | undefined>
  listAgencies(): Promise<AgencyRecord[]>
  /** creates or replaces; says which */
  putAgency(agency: AgencyRecord): Promise<{ created: boolean }>
  /**
   * How many times an admin changed or refreshed the agency's keys (0: never). Every process
   * compares it with the one its cached copy of the agency's jwks_uri was fetched at.
   */
  agencyKeysGeneration(code: string): Promise<number>
  /** moves the agency's keys generation on, atomically across processes; returns the new one */
  bumpAgencyKeysGeneration(code: string): Promise<number>

  /**
   * Marks `id` used within `namespace` for `ttlMs`; true the first time, false on every later
   * call until it expires — atomically, across every process sharing the store (replay guard).
   */
  claimOnce(namespace: string, id: string, ttlMs: number): Promise<boolean>

  getSigningKeys(): Promise<SigningKeySetRecord | undefined>
  /** stores `keys` as revision `expectedRevision + 1` if the stored revision is still `expectedRevision` (0: none yet) */
  putSigningKeys(keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean>

  /**
   * Appends an audit event to its chain and to every index, atomically. Returns false (and
   * writes nothing) when the chain head is not (seq − 1, prevHash): a chain never forks.
   */
  appendAuditEvent(event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean>
  /**
   * Appends consecutive events of one chain (each the successor of the one before) in one atomic
   * write: all or nothing, on the same head condition as appendAuditEvent.
   */
  appendAuditEvents(batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean>
  auditChainHead(chain: string): Promise<{ seq: number, hash: string } | undefined>
  auditChains(): Promise<string[]>
  /** ids from one index, in id (= time) order, within bounds */
  auditIndexPage(page: AuditIndexPage): Promise<string[]>
  /**
   * Moves up to `max` of the subject's hidden accesses whose hidden-until date is `day`
   * (YYYY-MM-DD) or earlier into its access history, atomically; returns how many it moved
   * (fewer than `max`: none is left to move).
   */
  revealAuditHistory(subjectHash: string, day: string, max: number): Promise<number>
  /** events by id, in the order asked (missing ones left out) */
  auditEvents(ids: string[]): Promise<StoredAuditEvent[]>
  /** a chain's events with seq in [fromSeq, fromSeq + count) in seq order */
  auditChainSlice(chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]>
  /** appends a checkpoint: the list is in the order checkpoints were stored (their times, give or take the clocks of several processes) */
  putAuditCheckpoint(checkpoint: AuditCheckpointRecord): Promise<void>
  /** how many checkpoints are stored */
  auditCheckpointCount(): Promise<number>
  /** the stored checkpoints at positions `start` to `stop` inclusive (a negative `stop` counts from the end, as LRANGE) */
  auditCheckpoints(start?: number, stop?: number): Promise<AuditCheckpointRecord[]>
  /** retention: removes each chain's events up to and including `upToSeq[chain]`, and their index entries */
  pruneAudit(upToSeq: Record<string, number>): Promise<number>

  /**
   * Indexes version 1 of a result, exactly once per natural key: the same content again is
   * `existing`, different content `conflict`. A retry after a crash completes what was begun.
   */
  registerDocument(keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome>
  /** the document registered under a natural key, if any (id and content hash of its version 1) */
  findRegistration(naturalKey: string): Promise<{ id: string, contentHash: string } | undefined>
  /** a document by id, with the subject partition it lives in */
  getDocument(id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined>
  /**
   * Appends version n+1 if the current version is still `expectedVersion` (else false). With
   * `carryFile`, version n's file (as it is at that moment, if it has one) becomes version n+1's
   * too, in the same atomic write, marked with the version it was uploaded to (`carriedFrom`).
   * Says which file version n+1 got.
   */
  amendDocument(subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options?: { carryFile?: boolean }): Promise<false | { file?: StoredDocumentFile }>
  /** marks a document revoked (once; false if it already was) */
  revokeDocument(subjectHash: string, id: string, revoked: NonNullable<StoredDocument['revoked']>): Promise<boolean>
  /** records the file of a version (once; false if it already has one) */
  attachDocumentFile(subjectHash: string, id: string, version: number, file: StoredDocumentFile): Promise<boolean>
  /** every document of a subject of the given types, in one round trip */
  documentsOfSubject(subjectHash: string, types?: string[]): Promise<StoredDocument[]>
  /** every document id, a page of about `pageSize` at a time, in no set order (maintenance: re-encryption walks them all; an id may come twice) */
  documentIdPages(pageSize: number): AsyncIterable<string[]>
  /**
   * Replaces a stored version with the same content in another form (re-encryption of its data):
   * `next` has the id and version of `previous`, and is written only if the stored version is
   * still exactly `previous` (false otherwise, or when there is no such version).
   */
  rewriteDocumentVersion(subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean>

  getDocumentType(code: string): Promise<DocumentTypeRecord | undefined>
  listDocumentTypes(): Promise<DocumentTypeRecord[]>
  /** stores a type if its schemaVersion is still `expectedVersion` (0: new); false otherwise */
  putDocumentType(record: DocumentTypeRecord, expectedVersion: number): Promise<boolean>

  getAgreement(id: string): Promise<AgreementRecord | undefined>
  putAgreement(agreement: AgreementRecord): Promise<{ created: boolean }>
  listAgreements(): Promise<AgreementRecord[]>

  /** remembers that `requester` received this document version for this dossier */
  recordReuse(subjectHash: string, documentId: string, reuse: { requester: string, version: number, dossierCode: string, procedureCode: string, at: string }): Promise<void>
  reusesOf(subjectHash: string, documentId: string): Promise<Array<{ requester: string, version: number, dossierCode: string, procedureCode: string, at: string }>>

  // The outbox. A change to a document is announced by its audit event (`announce`): the same
  // atomic write queues a source `a:<audit event id>`; scheduled expiries are sources
  // `x:<document id>:<version>`. Sources become events (with their deliveries) once the change is
  // confirmed in the store; deliveries go out one at a time per (destination, document), in
  // cursor order.

  /** sources due by `now`, oldest first (read only: one fan-out worker at a time, under a lease) */
  dueOutboxSources(now: number, limit: number): Promise<string[]>
  /** a published event, if any */
  outboxEvent(id: string): Promise<OutboxEventRecord | undefined>
  /** (re)schedules a source at `at` (epoch ms) */
  scheduleOutboxSource(source: string, at: number): Promise<void>
  dropOutboxSource(source: string): Promise<void>
  /**
   * Atomically: publishes the event with the next cursor, queues one delivery per destination,
   * adds the scheduled sources and drops `source`. An event whose id exists already is not
   * published again (undefined), and `source` is dropped all the same.
   */
  publishOutboxEvent(source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined>
  /** deliveries due by `now` (each the oldest queued of its destination and document), leased to `lease` until now + leaseMs */
  claimOutboxDeliveries(now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>>
  /** records an attempt's outcome if `lease` still holds the delivery (false otherwise); a settled delivery lets the next of its queue go */
  settleOutboxDelivery(destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean>
  /** queues again up to `limit` delivered or dead deliveries to `destination` with cursor > `after`; `next` is the cursor to continue from, if more may follow */
  replayOutbox(destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }>
  /** a destination's deliveries by cursor (> after), for inspection */
  outboxDeliveries(destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]>
  outboxStatus(): Promise<OutboxDestinationStatus[]>
  /** holds or renews the named lease for `owner` for ttlMs; false while another owner holds it */
  holdLease(name: string, owner: string, ttlMs: number): Promise<boolean>

  /**
   * Adds to one day's reuse counters (statistics kept as events happen, never computed by a
   * scan). Fields are opaque to the store; each day is one record.
   */
  addReuseCounts(day: string, increments: Record<string, number>): Promise<void>
  /** the counters of each of these days, summed field by field */
  reuseCounts(days: string[]): Promise<Record<string, number>>

  /** the portal withdrew a consent: its token is refused from now until `ttlMs` (past its expiry) */
  revokeConsent(jti: string, ttlMs: number): Promise<void>
  consentRevoked(jti: string): Promise<boolean>

  putDownloadGrant(token: string, grant: DownloadGrant, ttlMs: number): Promise<void>
  /** reads a grant without using it up */
  peekDownloadGrant(token: string): Promise<DownloadGrant | undefined>
  /** uses a grant up, atomically: only the first caller gets it */
  takeDownloadGrant(token: string): Promise<DownloadGrant | undefined>

  /** releases connections; bounded in time, never throws */
  close(): Promise<void>
}
