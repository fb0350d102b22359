/**
 * Everything the gateway keeps, as one small contract per aggregate (agencies.ts, audit.ts,
 * documents.ts…) with two implementations side by side: Redis for production (redis/), in
 * memory for trying the gateway out (memory/). Both pass the same contract suites in
 * test/store/. Methods speak the domain, never HTTP or tokens; any method may throw
 * StoreUnavailableError when the backing server cannot be reached.
 */
import type { AgencyStore } from './agencies.js'
import type { AgreementStore } from './agreements.js'
import type { AuditStore } from './audit.js'
import type { CatalogueStore } from './catalogue.js'
import type { DocumentStore } from './documents.js'
import type { LeaseStore } from './leases.js'
import type { OutboxStore } from './outbox.js'
import type { ReuseRecordStore } from './reuse-records.js'
import type { SigningKeyStore } from './signing-keys.js'

export type StoreKind = 'memory' | 'redis'

export interface Persistence {
  /** append-only file on: an acknowledged write survives a crash (with appendfsync always/everysec) */
  aof: boolean
  /** the fsync policy when AOF is on: always, everysec or no */
  appendfsync?: string
  /** RDB snapshots configured (they lose everything since the last snapshot on a crash) */
  rdb: boolean
}

/** The stores of every aggregate, on one backend (one connection): what the app is given. */
export interface Stores {
  readonly kind: StoreKind
  readonly agencies: AgencyStore
  readonly signingKeys: SigningKeyStore
  readonly audit: AuditStore
  readonly documents: DocumentStore
  readonly catalogue: CatalogueStore
  readonly agreements: AgreementStore
  readonly reuseRecords: ReuseRecordStore
  readonly outbox: OutboxStore
  readonly leases: LeaseStore
  /** resolves when the store answers; throws StoreUnavailableError otherwise */
  ping(): Promise<void>
  /** how durable an acknowledged write is */
  persistence(): Promise<Persistence>
  /** releases connections; bounded in time, never throws */
  close(): Promise<void>
}
