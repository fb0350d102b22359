/**
 * What reuse leaves behind, in Redis. Keys:
 *   {s:<subject hash>}:reuse:<document id>  list of reuse JSON: who received which version (beside
 *                                          the document, under its subject's tag)
 *   {stats}:reuse:<day>                    hash: counter → count, one per day (one slot for all)
 *   {consent-revoked:<sha256 of jti>}      a withdrawn consent, until past its token's expiry
 *   {dl:<sha256 of token>}                 a download grant (JSON), single use, with a TTL
 */
import type { DownloadGrant, ReuseRecord, ReuseRecordStore } from '../reuse-records.js'
import { px } from './connection.js'
import type { RedisConnection } from './connection.js'

export class RedisReuseRecordStore implements ReuseRecordStore {
  constructor (private readonly redis: RedisConnection) {}

  async recordReuse (subjectHash: string, documentId: string, reuse: ReuseRecord): Promise<void> {
    await this.redis.run(async () => await this.redis.client.rpush(this.redis.key(`s:${subjectHash}`, 'reuse', documentId), JSON.stringify(reuse)))
  }

  async reusesOf (subjectHash: string, documentId: string): Promise<ReuseRecord[]> {
    const all = await this.redis.run(async () => await this.redis.client.lrange(this.redis.key(`s:${subjectHash}`, 'reuse', documentId), 0, -1))
    return all.map((json) => JSON.parse(json))
  }

  // Statistics: one hash per day under {stats}; a query over a period reads its days together
  // (one write with auto-pipelining; a year is 366 small hashes), never the trail.
  async addReuseCounts (day: string, increments: Record<string, number>): Promise<void> {
    const key = this.redis.key('stats', 'reuse', day)
    // issued together, they leave in one write (auto-pipelining); each increment is atomic
    await this.redis.run(async () => await Promise.all(Object.entries(increments).map(async ([field, n]) => await this.redis.client.hincrby(key, field, n))))
  }

  async reuseCounts (days: string[]): Promise<Record<string, number>> {
    const sum: Record<string, number> = {}
    if (days.length === 0) return sum
    const replies = await this.redis.run(async () => await Promise.all(days.map(async (day) => await this.redis.client.hgetall(this.redis.key('stats', 'reuse', day)))))
    for (const counts of replies) {
      for (const [field, n] of Object.entries(counts)) sum[field] = (sum[field] ?? 0) + Number(n)
    }
    return sum
  }

  async revokeConsent (jti: string, ttlMs: number): Promise<void> {
    await this.redis.run(async () => await this.redis.client.set(this.redis.hashedKey('consent-revoked', jti), '1', 'PX', px(ttlMs)))
  }

  async consentRevoked (jti: string): Promise<boolean> {
    return (await this.redis.run(async () => await this.redis.client.exists(this.redis.hashedKey('consent-revoked', jti)))) === 1
  }

  async putDownloadGrant (token: string, grant: DownloadGrant, ttlMs: number): Promise<void> {
    await this.redis.run(async () => await this.redis.client.set(this.redis.hashedKey('dl', token), JSON.stringify(grant), 'PX', px(ttlMs)))
  }

  async peekDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    const json = await this.redis.run(async () => await this.redis.client.get(this.redis.hashedKey('dl', token)))
    return json === null ? undefined : JSON.parse(json)
  }

  async takeDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    const json = await this.redis.run(async () => await this.redis.client.getdel(this.redis.hashedKey('dl', token)))
    return json === null ? undefined : JSON.parse(json)
  }
}
