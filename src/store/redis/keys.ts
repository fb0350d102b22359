/**
 * What the Redis modules share of the key scheme: the {audit} hash tag the audit trail and the
 * outbox live under together (an announced audit event queues its outbox source in the same
 * script, so on a cluster both must be in one slot), and the list of keys a script is given.
 */
import type { RedisConnection } from './connection.js'

/** `<prefix>{audit}:<rest>`: every audit key */
export function auditKey (redis: RedisConnection, ...rest: string[]): string {
  return redis.key('audit', ...rest)
}

/** `<prefix>{audit}:ob:<rest>`: every outbox key */
export function outboxKey (redis: RedisConnection, rest: string): string {
  return redis.key('audit', 'ob', '') + rest
}

/**
 * How many buckets the audit trail's first index entries (i1:) and the outbox's events (ob:e:)
 * are spread over, each. Sized for the national volume: at 500 M documents about 290 first
 * entries (a document's and a subject's) and 330 outbox events a bucket, under the 512 entries
 * up to which Redis keeps a hash as a listpack (hash-max-listpack-entries, docs/production.md).
 * Part of the layout: records are found by it, so it never changes for a store.
 */
export const AUDIT_BUCKETS = 2 ** 21

/**
 * Which of `buckets` shared hashes a small record goes in (FNV-1a of its name): many small
 * records in hashes that Redis keeps as listpacks cost a few bytes of overhead each, where a
 * key of their own costs ~50–100.
 */
export function bucketOf (name: string, buckets = AUDIT_BUCKETS): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return (h >>> 0) % buckets
}

/** The keys a script is given, each once, and the position (1-based, as in Lua) of each in KEYS. */
export class DeclaredKeys {
  readonly list: string[]
  private readonly positions = new Map<string, number>()

  constructor (fixed: string[]) {
    this.list = []
    for (const key of fixed) this.position(key)
  }

  position (key: string): number {
    let at = this.positions.get(key)
    if (at === undefined) {
      at = this.list.push(key)
      this.positions.set(key, at)
    }
    return at
  }
}
