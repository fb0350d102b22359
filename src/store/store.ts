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

export interface Store {
  readonly kind: StoreKind
  /** resolves when the store answers; throws StoreUnavailableError otherwise */
  ping(): Promise<void>
  /** how durable an acknowledged write is */
  persistence(): Promise<Persistence>
  /** releases connections; bounded in time, never throws */
  close(): Promise<void>
}
