/**
 * The audit trail: hash-chained events, their time-ordered indexes, checkpoints and retention.
 * The store keeps and indexes events; it never recomputes a hash (that is the audit service's).
 */

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
  /**
   * for `history` in the archive: the day (YYYY-MM-DD, Vietnam) whose visible accesses are read
   * (the hot tier moves hidden accesses into the history first: revealAuditHistory)
   */
  asOfDay?: string
}

export interface AuditCheckpointRecord {
  time: string
  /** compact JWS signed by the gateway over the chain heads */
  jws: string
  chains: Array<{ chain: string, seq: number, hash: string }>
}

export interface AuditStore {
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
  /**
   * retention: removes each chain's events up to and including `upToSeq[chain]`, and their index
   * entries. `known`: events of those just read from this store (auditChainSlice), which it need
   * not read again to find their index entries.
   */
  pruneAudit(upToSeq: Record<string, number>, known?: StoredAuditEvent[]): Promise<number>
  /** removes the `count` oldest checkpoints (once the archive holds them) */
  pruneAuditCheckpoints(count: number): Promise<void>
  /**
   * The archive's mark: the newest event id the archiver has moved (an event with an id at or
   * below it may be in the archive only); undefined while nothing is archived.
   */
  auditArchiveMark(): Promise<string | undefined>
  /** raises the archive's mark to `id` (never lowers it) */
  setAuditArchiveMark(id: string): Promise<void>
  /**
   * Forgets a chain whose events are all archived and which no process appends to any more: its
   * head and what retention kept of it, only if its head is still `head` (true then).
   */
  forgetAuditChain(chain: string, head: { seq: number, hash: string }): Promise<boolean>
}
