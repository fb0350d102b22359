import type { Config } from '../config.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { StoreLogger } from './redis-store.js'
import type { Store } from './store.js'

export type { Store, StoreKind, Persistence, AgencyRecord, AgencyRole, SigningKeySetRecord, StoredAuditEvent, AuditIndex, AuditIndexPage, AuditCheckpointRecord, StoredDocument, StoredDocumentFile, StoredDocumentVersion, DocumentKeys, RegisterOutcome, DocumentTypeRecord, AgreementRecord, DownloadGrant, OutboxEventType, OutboxEventRecord, OutboxDeliveryState, OutboxDeliveryRecord, OutboxSettlement, OutboxDestinationStatus } from './store.js'
export { StoreUnavailableError } from './errors.js'
export { MemoryStore } from './memory-store.js'
export { RedisStore } from './redis-store.js'

/** The store the configuration asks for: Redis (standalone or cluster) when configured, else embedded. */
export async function createStore (config: Config, logger?: StoreLogger): Promise<Store> {
  const redis = config.redis
  if (redis.mode === 'memory') return new MemoryStore()
  const store = new RedisStore({
    ...(redis.mode === 'standalone' ? { url: redis.url } : { clusterNodes: redis.nodes }),
    keyPrefix: redis.keyPrefix,
    commandTimeoutMs: redis.commandTimeoutMs,
    quitTimeoutMs: redis.quitTimeoutMs,
    ...(logger ? { logger } : {})
  })
  await store.connect()
  return store
}
