/**
 * The audit trail's archive tier (AUDIT_ARCHIVE_URL): events older than the hot window, moved out
 * of the store in chain order by the archiver (services/audit-archiver.ts), kept for years in
 * PostgreSQL and read through the same methods as the hot tier, so that search, export,
 * verification and the portal's history read both as one trail (services/audit-tiers.ts).
 *
 * Events are partitioned by month of their id (a ULID: its first 48 bits are the time), so the
 * id is both the primary key and the partition key, and retention drops whole months.
 */
import type { AuditCheckpointRecord, AuditIndexPage, StoredAuditEvent } from './audit.js'

/** the last archived event of a chain */
export interface ArchivedHead {
  seq: number
  hash: string
  /** its id (the newest archived id of the chain: ids grow with seq within a chain) */
  id: string
}

export interface ArchivePartition {
  /** table name, e.g. audit_events_2026_11 */
  name: string
  /** first instant it holds (inclusive), ISO 8601 */
  from: string
  /** first instant it no longer holds (exclusive), ISO 8601 */
  to: string
  /** rows, as PostgreSQL estimates them (exact after ANALYZE) */
  rows: number
  /** bytes on disk, indexes and TOAST included */
  bytes: number
}

export interface AuditArchive {
  /** applies the migrations not yet applied, in order, each in its transaction; returns the versions applied */
  migrate(): Promise<number[]>
  /** the schema version applied, and the newest this code knows (a gateway refuses an archive newer than it) */
  schemaVersion(): Promise<{ current: number, latest: number }>
  /** creates the monthly partitions that hold [from, to) (both months included), when missing */
  ensurePartitions(from: Date, to: Date): Promise<void>
  /** every archived chain's last archived event */
  archivedHeads(): Promise<Map<string, ArchivedHead>>
  /**
   * In one transaction: inserts `events` (consecutive events of one chain, the first with seq
   * `afterSeq + 1`) and moves the chain's archived head to the last of them. Returns false, and
   * writes nothing, when the chain's archived head is not `afterSeq` (another archiver moved it):
   * an event is never archived twice. Checkpoints given go in the same transaction (idempotent:
   * a checkpoint already archived is skipped). Events that are not consecutive, not linked by
   * their hashes, or whose first does not link to the archived head are refused with an error
   * (never archived). A month without partitions yet gets them first, in its own transaction.
   *
   * `startsAfter`, for a chain the archive does not hold yet whose first events retention removed
   * from the store before there was an archive: the seq and hash a signed checkpoint pins just
   * before its first kept event (its archived head starts there instead of at the genesis).
   */
  archiveEvents(chain: string, afterSeq: number, events: StoredAuditEvent[], checkpoints?: AuditCheckpointRecord[], startsAfter?: { seq: number, hash: string }): Promise<boolean>
  /** archives checkpoints on their own (idempotent), in the order given */
  archiveCheckpoints(checkpoints: AuditCheckpointRecord[]): Promise<void>

  /**
   * ids from one index, in id (= time) order, within bounds: as AuditStore.auditIndexPage. For
   * `history`, the subject's accesses it may see on `page.asOfDay` (a hidden one from its
   * hidden-until day on; without asOfDay, today in Vietnam).
   */
  auditIndexPage(page: AuditIndexPage): Promise<string[]>
  /** events by id, in the order asked (missing ones left out) */
  auditEvents(ids: string[]): Promise<StoredAuditEvent[]>
  /** a chain's archived events with seq in [fromSeq, fromSeq + count), in seq order */
  auditChainSlice(chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]>
  /** how many checkpoints are archived */
  auditCheckpointCount(): Promise<number>
  /** archived checkpoints at positions `start` to `stop` inclusive, in order of their `time` (a retention checkpoint, archived when retention runs, sorts where the time it names is) (a negative position counts from the end, as LRANGE) */
  auditCheckpoints(start?: number, stop?: number): Promise<AuditCheckpointRecord[]>

  /** the event partitions, oldest first */
  partitions(): Promise<ArchivePartition[]>
  /**
   * For retention: the last event of each chain older than `before` (what a final checkpoint
   * pins before the months that hold them are dropped).
   */
  headsBefore(before: Date): Promise<Array<{ chain: string, seq: number, hash: string }>>
  /**
   * Retention: detaches and drops every partition that ends at or before `before` (whole months,
   * never a row-by-row delete), and the archived checkpoints older than the newest of them that
   * is older than `before`; returns the partitions dropped.
   */
  dropPartitionsBefore(before: Date): Promise<string[]>
  /**
   * resolves when PostgreSQL answers; throws ArchiveUnavailableError otherwise (as every method
   * does when PostgreSQL cannot be reached or does not answer in time)
   */
  ping(): Promise<void>
  close(): Promise<void>
}
