import t from 'tap'
import type { Test } from 'tap'
import { createLocalJWKSet } from 'jose'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { verifyAuditTrail } from '../src/services/audit-verify.js'

/** Retention: old events leave the store; what remains still verifies from the oldest kept checkpoint. */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

for (const [name, makeStore] of [['embedded store', async () => new MemoryStores()], ['redis store', async (t: Test) => await testRedisStore(t, redis)]] as const) {
  t.test(name, async (t) => {
    const store: Stores = await makeStore(t as never)
    const app = await build(t, { store })
    const record = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await app.audit.record({ actor: '000.00.12.H41', action: 'document.indexed', outcome: 'granted', documents: [{ id: `D${i}` }] })
    }
    await record(10)
    await app.audit.checkpoint()
    await new Promise((resolve) => setTimeout(resolve, 5))
    const boundary = new Date()
    await new Promise((resolve) => setTimeout(resolve, 5))
    await record(5)
    await app.audit.checkpoint()

    const removed = await app.audit.prune(boundary)
    t.equal(removed, 10, 'the events the pre-boundary checkpoint covers are gone')
    const left = await app.audit.search({ limit: 1000 })
    t.equal(left.events.length, 5)
    t.same((await app.audit.search({ documentId: 'D3', limit: 10 })).events.map((e) => e.seq), [14], 'their index entries went with them')
    const result = await verifyAuditTrail(app.audit.chainEvents(), await app.audit.checkpoints(), createLocalJWKSet(app.signingKeys.jwks()), { requireAllChains: true })
    t.same(result, { ok: true, checked: 5, chains: 1, checkpoints: 2 }, 'verification starts from the oldest kept checkpoint')
  })
}
