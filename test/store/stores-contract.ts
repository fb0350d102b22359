import type { Test } from 'tap'
import type { Stores } from '../../src/store/index.js'
import { agenciesContract } from './agencies-contract.js'
import { agreementsContract } from './agreements-contract.js'
import { auditContract } from './audit-contract.js'
import { catalogueContract } from './catalogue-contract.js'
import { documentsContract } from './documents-contract.js'
import { leasesContract } from './leases-contract.js'
import { outboxContract } from './outbox-contract.js'
import { reuseRecordsContract } from './reuse-records-contract.js'
import { signingKeysContract } from './signing-keys-contract.js'

/**
 * What every implementation of the stores must do: the bundle's own part (ping, persistence)
 * and each aggregate's contract (<aggregate>-contract.ts), run on memory, Redis and the Redis
 * Cluster by memory.test.ts, redis.test.ts and redis-cluster.test.ts.
 */
export type StoresFactory = (t: Test) => Promise<Stores>

export function storesContract (t: Test, makeStores: StoresFactory): void {
  t.test('ping answers while the store is up', async (t) => {
    const stores = await makeStores(t)
    await t.resolves(stores.ping())
  })

  t.test('persistence is reported', async (t) => {
    const stores = await makeStores(t)
    const persistence = await stores.persistence()
    t.type(persistence.aof, 'boolean')
    t.type(persistence.rdb, 'boolean')
  })
}

/** every contract, on one backend */
export function allContracts (t: Test, makeStores: StoresFactory): void {
  storesContract(t, makeStores)
  agenciesContract(t, makeStores)
  signingKeysContract(t, makeStores)
  auditContract(t, makeStores)
  documentsContract(t, makeStores)
  catalogueContract(t, makeStores)
  agreementsContract(t, makeStores)
  reuseRecordsContract(t, makeStores)
  outboxContract(t, makeStores)
  leasesContract(t, makeStores)
}
