import t from 'tap'
import { MemoryStore } from '../../src/store/index.js'
import { agencyContract, documentContract, reuseContract, storeContract } from './contract.js'
import type { StoreFactory } from './contract.js'
import { outboxContract } from './outbox-contract.js'

const factory: StoreFactory = async (t) => {
  const store = new MemoryStore()
  t.teardown(async () => await store.close())
  return store
}
storeContract(t, factory)
agencyContract(t, factory)
documentContract(t, factory)
reuseContract(t, factory)
outboxContract(t, factory)

t.test('the embedded store says it keeps nothing', async (t) => {
  t.same(await new MemoryStore().persistence(), { aof: false, rdb: false })
})
