import t from 'tap'
import { startTestRedis } from '../lib/redis-server.js'
import { testRedisStore } from '../lib/redis-store.js'
import { StoreUnavailableError } from '../../src/store/index.js'
import { agencyContract, documentContract, reuseContract, storeContract } from './contract.js'
import type { StoreFactory } from './contract.js'
import { outboxContract } from './outbox-contract.js'

const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const factory: StoreFactory = async (t) => await testRedisStore(t, redis)
storeContract(t, factory)
agencyContract(t, factory)
documentContract(t, factory)
reuseContract(t, factory)
outboxContract(t, factory)

t.test('persistence reflects the server settings', async (t) => {
  const store = await testRedisStore(t, redis)
  const off = await store.persistence()
  t.equal(off.aof, false)
  await store.client.config('SET', 'appendonly', 'yes')
  t.teardown(async () => { await store.client.config('SET', 'appendonly', 'no') })
  const on = await store.persistence()
  t.equal(on.aof, true)
  t.equal(on.appendfsync, 'everysec')
})

t.test('keys carry a hash tag so that multi-key operations stay in one cluster slot', async (t) => {
  const store = await testRedisStore(t, redis)
  const key = store.key('agency:000.00.00.H41', 'keys')
  t.match(key, /^t\d+-\d+:\{agency:000\.00\.00\.H41\}:keys$/)
})

t.test('a server-side failure that is not an outage is not reported as one', async (t) => {
  const store = await testRedisStore(t, redis)
  const attempt = store.run(
    async () => await store.client.call('NO-SUCH-COMMAND'))
  await t.rejects(attempt, { name: 'ReplyError' })
})

t.test('an unreachable server is StoreUnavailableError at once, not a hang', async (t) => {
  const store = await testRedisStore(t, redis)
  const other = await startTestRedis()
  await other.destroy()
  const { RedisStore } = await import('../../src/store/index.js')
  const away = new RedisStore({ url: other.url, keyPrefix: 'x:', commandTimeoutMs: 500, quitTimeoutMs: 100 })
  await away.connect()
  t.teardown(async () => await away.close())
  await t.rejects(away.ping(), StoreUnavailableError)
  await t.resolves(store.ping(), 'the healthy store is unaffected')
})
