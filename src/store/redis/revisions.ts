/**
 * Registry hashes (agencies, agreements) with a revision counter beside each: every write of a
 * record moves the counter on in the same MULTI (both keys under the record hash's tag, so one
 * slot), and a process that keeps records between requests reads the counter — one small GET —
 * to know whether to read them again.
 */
import type { RedisConnection } from './connection.js'

/** Writes `record` as JSON into the hash `key` and moves `revisionKey` on, atomically. */
export async function putRecordWithRevision (redis: RedisConnection, key: string, revisionKey: string, field: string, record: unknown): Promise<{ created: boolean }> {
  const replies = await redis.run(async () => await redis.client.multi().hset(key, field, JSON.stringify(record)).incr(revisionKey).exec())
  const failed = replies?.find(([err]) => err)?.[0]
  if (!replies || failed) throw failed ?? new Error('the registry write was discarded')
  return { created: replies[0]?.[1] === 1 }
}

/** The revision counter (0 before the first write). */
export async function readRevision (redis: RedisConnection, revisionKey: string): Promise<number> {
  return Number(await redis.run(async () => await redis.client.get(revisionKey)) ?? 0)
}
