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
  jwks?: { keys: Array<Record<string, unknown>> }
  jwksUri?: string
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

/** the time-ordered indexes audit search uses; ids sort by time, so one index answers a time range */
export type AuditIndex =
  | { kind: 'all' }
  | { kind: 'agency', value: string }
  | { kind: 'subject', value: string }
  | { kind: 'document', value: string }

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
  appendAuditEvent(event: StoredAuditEvent): Promise<boolean>
  auditChainHead(chain: string): Promise<{ seq: number, hash: string } | undefined>
  auditChains(): Promise<string[]>
  /** ids from one index, in id (= time) order, within bounds */
  auditIndexPage(page: AuditIndexPage): Promise<string[]>
  /** events by id, in the order asked (missing ones left out) */
  auditEvents(ids: string[]): Promise<StoredAuditEvent[]>
  /** a chain's events with seq in [fromSeq, fromSeq + count) in seq order */
  auditChainSlice(chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]>
  putAuditCheckpoint(checkpoint: AuditCheckpointRecord): Promise<void>
  auditCheckpoints(): Promise<AuditCheckpointRecord[]>
  /** retention: removes each chain's events up to and including `upToSeq[chain]`, and their index entries */
  pruneAudit(upToSeq: Record<string, number>): Promise<number>

  /** releases connections; bounded in time, never throws */
  close(): Promise<void>
}
