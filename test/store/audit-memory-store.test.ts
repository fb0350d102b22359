import t from 'tap'
import { MemoryStore } from '../../src/store/index.js'
import { auditContract } from './audit-contract.js'

auditContract(t, async (t) => {
  const store = new MemoryStore()
  t.teardown(async () => await store.close())
  return store
})
