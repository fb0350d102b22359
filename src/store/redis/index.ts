/**
 * The production stores: every aggregate's Redis store on one shared connection. Processes are
 * stateless: any number of gateways share one Redis (or one cluster). Keys are
 * `<prefix>{<tag>}:<rest>`: whatever one operation touches shares a hash tag, so multi-key
 * commands and scripts never cross slots; each module's header lists the keys it owns.
 */
import type { Stores, Persistence } from '../stores.js'
import { RedisConnection } from './connection.js'
import type { Client, RedisStoreOptions } from './connection.js'
import { RedisAgencyStore } from './agencies.js'
import { RedisSigningKeyStore } from './signing-keys.js'
import { AUDIT_VARIABLE_KEY_COMMANDS, RedisAuditStore } from './audit.js'
import { DOCUMENT_VARIABLE_KEY_COMMANDS, RedisDocumentStore } from './documents.js'
import { RedisCatalogueStore } from './catalogue.js'
import { RedisAgreementStore } from './agreements.js'
import { RedisReuseRecordStore } from './reuse-records.js'
import { OUTBOX_VARIABLE_KEY_COMMANDS, RedisOutboxStore } from './outbox.js'
import { RedisLeaseStore } from './leases.js'

export type { RedisStoreOptions, StoreLogger } from './connection.js'

export class RedisStores implements Stores {
  readonly kind = 'redis' as const
  readonly connection: RedisConnection
  readonly agencies: RedisAgencyStore
  readonly signingKeys: RedisSigningKeyStore
  readonly audit: RedisAuditStore
  readonly documents: RedisDocumentStore
  readonly catalogue: RedisCatalogueStore
  readonly agreements: RedisAgreementStore
  readonly reuseRecords: RedisReuseRecordStore
  readonly outbox: RedisOutboxStore
  readonly leases: RedisLeaseStore

  constructor (options: RedisStoreOptions) {
    const redis = this.connection = new RedisConnection(options, [...AUDIT_VARIABLE_KEY_COMMANDS, ...OUTBOX_VARIABLE_KEY_COMMANDS, ...DOCUMENT_VARIABLE_KEY_COMMANDS])
    this.agencies = new RedisAgencyStore(redis)
    this.signingKeys = new RedisSigningKeyStore(redis)
    this.audit = new RedisAuditStore(redis)
    this.documents = new RedisDocumentStore(redis)
    this.catalogue = new RedisCatalogueStore(redis)
    this.agreements = new RedisAgreementStore(redis)
    this.reuseRecords = new RedisReuseRecordStore(redis)
    this.outbox = new RedisOutboxStore(redis)
    this.leases = new RedisLeaseStore(redis)
  }

  /** the shared client (the rate limiter counts in it too) */
  get client (): Client { return this.connection.client }

  /** `<prefix>{<tag>}:<rest>`: the tag decides the cluster slot */
  key (tag: string, ...rest: string[]): string { return this.connection.key(tag, ...rest) }

  /** Runs one operation on the client, turning connectivity failures into StoreUnavailableError. */
  async run<T> (operation: () => Promise<T>): Promise<T> { return await this.connection.run(operation) }

  /** opens the connection; does not fail while Redis is not there yet (it retries in the background) */
  async connect (): Promise<void> { await this.connection.connect() }

  async ping (): Promise<void> { await this.connection.ping() }

  async persistence (): Promise<Persistence> { return await this.connection.persistence() }

  async close (): Promise<void> { await this.connection.close() }
}
