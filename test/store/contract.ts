import type { Test } from 'tap'
import type { Store } from '../../src/store/index.js'

/**
 * The Store contract: what every implementation must do, run against the embedded store and
 * against a real Redis (test/store/*.test.ts). Each feature adds its section here.
 */
export type StoreFactory = (t: Test) => Promise<Store>

export function storeContract (t: Test, makeStore: StoreFactory): void {
  t.test('ping answers while the store is up', async (t) => {
    const store = await makeStore(t)
    await t.resolves(store.ping())
  })

  t.test('persistence is reported', async (t) => {
    const store = await makeStore(t)
    const persistence = await store.persistence()
    t.type(persistence.aof, 'boolean')
    t.type(persistence.rdb, 'boolean')
  })
}
