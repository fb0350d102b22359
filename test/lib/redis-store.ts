import type { Test } from 'tap'
import { RedisStore } from '../../src/store/index.js'
import type { TestRedis } from './redis-server.js'

let counter = 0

/** A RedisStore on the test's server with a key prefix of its own, so subtests never collide. */
export async function testRedisStore (t: Test, redis: TestRedis, options: { commandTimeoutMs?: number } = {}): Promise<RedisStore> {
  const store = new RedisStore({
    url: redis.url,
    keyPrefix: `t${process.pid}-${++counter}:`,
    commandTimeoutMs: options.commandTimeoutMs ?? 1000,
    quitTimeoutMs: 500
  })
  await store.connect()
  t.teardown(async () => await store.close())
  return store
}
