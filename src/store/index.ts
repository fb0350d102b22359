/**
 * The store, as the rest of the gateway sees it: the contract of each aggregate, the two
 * implementations of the bundle, and createStores, which picks one from the configuration.
 */
import type { Config } from '../config.js'
import { MemoryStores } from './memory/index.js'
import { RedisStores } from './redis/index.js'
import type { StoreLogger } from './redis/index.js'
import type { Stores } from './stores.js'

export type { Stores, StoreKind, Persistence } from './stores.js'
export type { AgencyStore, AgencyRecord, AgencyRole } from './agencies.js'
export type { SigningKeyStore, SigningKeySetRecord } from './signing-keys.js'
export type { AuditStore, StoredAuditEvent, AuditIndex, AuditIndexPage, AuditCheckpointRecord } from './audit.js'
export type { DocumentStore, StoredDocument, StoredDocumentFile, StoredDocumentVersion, DocumentKeys, RegisterOutcome } from './documents.js'
export type { CatalogueStore, DocumentTypeRecord } from './catalogue.js'
export type { AgreementStore, AgreementRecord } from './agreements.js'
export type { ReuseRecordStore, ReuseRecord, DownloadGrant } from './reuse-records.js'
export type { OutboxStore, OutboxEventType, OutboxEventRecord, OutboxDeliveryState, OutboxDeliveryRecord, OutboxSettlement, OutboxDestinationStatus } from './outbox.js'
export type { LeaseStore } from './leases.js'
export type { RedisStoreOptions, StoreLogger } from './redis/index.js'
export { ArchiveUnavailableError, StoreUnavailableError } from './errors.js'
export type { AuditArchive, ArchivedHead, ArchivePartition } from './audit-archive.js'
export { MemoryStores } from './memory/index.js'
export { RedisStores } from './redis/index.js'

/** The stores the configuration asks for: Redis (standalone or cluster) when configured, else embedded. */
export async function createStores (config: Config, logger?: StoreLogger): Promise<Stores> {
  const redis = config.redis
  if (redis.mode === 'memory') return new MemoryStores()
  const stores = new RedisStores({
    ...(redis.mode === 'standalone' ? { url: redis.url } : { clusterNodes: redis.nodes }),
    keyPrefix: redis.keyPrefix,
    commandTimeoutMs: redis.commandTimeoutMs,
    quitTimeoutMs: redis.quitTimeoutMs,
    ...(logger ? { logger } : {})
  })
  await stores.connect()
  return stores
}

