import t from 'tap'
import { startTestCluster, testClusterStore } from '../lib/redis-cluster.js'
import { agencyContract, documentContract, reuseContract, storeContract } from './contract.js'
import type { StoreFactory } from './contract.js'
import { outboxContract } from './outbox-contract.js'
import { auditContract } from './audit-contract.js'

const cluster = await startTestCluster()
t.teardown(async () => await cluster.destroy())

const factory: StoreFactory = async (t) => await testClusterStore(t, cluster)
storeContract(t, factory)
agencyContract(t, factory)
documentContract(t, factory)
reuseContract(t, factory)
outboxContract(t, factory)
auditContract(t, factory)
