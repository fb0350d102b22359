/**
 * Leases and claim-once markers in Redis. Keys:
 *   {audit}:ob:lease:<name>        a lease (SET PX) held by one process (under the outbox's
 *                                  tag, where the outbox fan-out lease has always been)
 *   {once:<namespace>:<sha256>}    a claim (SET NX PX); one tag per claim, so claims spread
 *                                  over every master of a cluster
 */
import type { LeaseStore } from '../leases.js'
import { px } from './connection.js'
import type { RedisConnection } from './connection.js'
import { outboxKey } from './keys.js'

/** KEYS: the lease. ARGV: owner, ttl ms. Takes a free lease or renews one's own. */
const HOLD_LEASE = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

export class RedisLeaseStore implements LeaseStore {
  private readonly holdScript: (key: string, owner: string, ttlMs: number) => Promise<number>

  constructor (private readonly redis: RedisConnection) {
    this.holdScript = redis.script('leaseHold', HOLD_LEASE, 1)
  }

  async holdLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.run(async () => await this.holdScript(outboxKey(this.redis, 'lease:' + name), owner, px(ttlMs)))) === 1
  }

  async claimOnce (namespace: string, id: string, ttlMs: number): Promise<boolean> {
    const set = await this.redis.run(async () => await this.redis.client.set(this.redis.hashedKey(`once:${namespace}`, id), '1', 'PX', px(ttlMs), 'NX'))
    return set === 'OK'
  }
}
