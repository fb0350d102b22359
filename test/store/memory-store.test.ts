import t from 'tap'
import { MemoryStore } from '../../src/store/index.js'
import { storeContract } from './contract.js'

storeContract(t, async (t) => {
  const store = new MemoryStore()
  t.teardown(async () => await store.close())
  return store
})

t.test('the embedded store says it keeps nothing', async (t) => {
  t.same(await new MemoryStore().persistence(), { aof: false, rdb: false })
})
