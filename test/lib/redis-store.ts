import type { Test } from 'tap'
import { RedisStores } from '../../src/store/index.js'
import type { TestRedis } from './redis-server.js'
import type { TestCluster } from './redis-cluster.js'

let counter = 0

/**
 * The stores on the test's server (or cluster) with a key prefix of their own, so subtests
 * never collide.
 */
export async function testRedisStore (t: Test, redis: TestRedis | TestCluster, options: { commandTimeoutMs?: number } = {}): Promise<RedisStores> {
  const cluster = 'nodes' in redis
  const stores = new RedisStores({
    ...(cluster ? { clusterNodes: redis.nodes } : { url: redis.url }),
    keyPrefix: `${cluster ? 'c' : 't'}${process.pid}-${++counter}:`,
    // a cluster command may be redirected once (MOVED) before it is answered
    commandTimeoutMs: options.commandTimeoutMs ?? (cluster ? 2000 : 1000),
    quitTimeoutMs: 500
  })
  await stores.connect()
  t.teardown(async () => await stores.close())
  return stores
}
