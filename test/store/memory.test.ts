import t from 'tap'
import { MemoryStores } from '../../src/store/index.js'
import { allContracts } from './stores-contract.js'

// every aggregate's contract on the embedded stores
allContracts(t, async (t) => {
  const stores = new MemoryStores()
  t.teardown(async () => await stores.close())
  return stores
})

t.test('the embedded store says it keeps nothing', async (t) => {
  t.same(await new MemoryStores().persistence(), { aof: false, rdb: false })
})
