/**
 * The embedded stores: everything in this process's memory, gone when it stops. They exist so
 * that `npm start` works with nothing installed; the server refuses them in production.
 */
import type { Persistence, Stores } from '../stores.js'
import { MemoryAgencyStore } from './agencies.js'
import { MemorySigningKeyStore } from './signing-keys.js'
import { MemoryAuditStore } from './audit.js'
import { MemoryDocumentStore } from './documents.js'
import { MemoryCatalogueStore } from './catalogue.js'
import { MemoryAgreementStore } from './agreements.js'
import { MemoryReuseRecordStore } from './reuse-records.js'
import { MemoryOutboxStore } from './outbox.js'
import { MemoryLeaseStore } from './leases.js'

export class MemoryStores implements Stores {
  readonly kind = 'memory' as const
  readonly agencies = new MemoryAgencyStore()
  readonly signingKeys = new MemorySigningKeyStore()
  readonly outbox = new MemoryOutboxStore()
  // an announcing audit event queues its outbox source in the same step, as the Redis script does
  readonly audit = new MemoryAuditStore(this.outbox)
  readonly documents = new MemoryDocumentStore()
  readonly catalogue = new MemoryCatalogueStore()
  readonly agreements = new MemoryAgreementStore()
  readonly reuseRecords = new MemoryReuseRecordStore()
  readonly leases = new MemoryLeaseStore()

  async ping (): Promise<void> {}

  async persistence (): Promise<Persistence> {
    return { aof: false, rdb: false }
  }

  async close (): Promise<void> {}
}
