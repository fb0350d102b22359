/**
 * The outbox in Redis. Every key shares the {audit} hash tag, because a source is queued by the
 * very script that appends the audit event recording the change (the audit store's appendAuditEvent with
 * `announce`), and an event, its deliveries and its queues are written by one script below —
 * on a cluster, one slot. Keys, after `<prefix>{audit}:ob:`:
 *   src           sorted set: source → when it is due (the audit event's time, or an expiry)
 *   e:<n>         hash, one of 2^21 buckets (keys.ts) by document: event → "<cursor> <status
 *                 letter><latest version>[ <traceparent>]" (codec below), what a rebuilt body
 *                 cannot know, and the trace of the change when it was traced; the
 *                 field is the event id with its document id as 16 bytes. ~330 events a bucket
 *                 at 500 M documents: Redis keeps them as listpacks
 *   ev            hash: the earlier layout's events, id → "<cursor> <event JSON>", still read
 *   seq           the last cursor given
 *   due           sorted set: "<destination>|<event id>" → when the delivery is due; only the
 *                 head of each (destination, document) queue is in it, so order holds
 *   d:<dest>:<id> hash: one delivery (state, attempts, next, error, at, cursor, doc, extra, lease)
 *   q:<dest>:<doc> list: a destination's unsettled events of one document, oldest first
 *   x:<dest>      sorted set: event id → cursor, every delivery a destination ever had (replay)
 *   n:<dest>      hash: queued / delivered / dead counts
 *   w:<dest>      sorted set: event id → when queued (ms), the destination's queued deliveries
 *                 (how long the oldest has waited: outboxStatus); those queued before it was
 *                 kept are not in it
 *   dests         set of destinations
 *   lease:<name>  a lease (SET PX) held by one process (redis/leases.ts)
 * Destinations never contain "|" (agency codes are digits, dots and letters).
 *
 * Every script touches only keys it is given in KEYS, never a name it builds from what it reads:
 * a cluster routes and checks a script by its declared keys, and keys a slot migration moves
 * under a script that did not declare them could be read half here, half there. What a script
 * would otherwise discover (the due deliveries, a delivery's document, a replay page) the caller
 * reads first; the script then checks that it still holds.
 */
import type { OutboxDeliveryRecord, OutboxDestinationStatus, OutboxEventRecord, OutboxEventType, OutboxSettlement, OutboxStore } from '../outbox.js'
import { StatedError } from '../../lib/error-description.js'
import { isUlid, ulidToBytes } from './binary.js'
import type { RedisConnection } from './connection.js'
import { DeclaredKeys, bucketOf, outboxKey } from './keys.js'
import { CLAIM_DELIVERIES, PUBLISH, REPLAY, SETTLE } from './outbox-scripts.js'

/** the scripts called with their number of keys first */
export const OUTBOX_VARIABLE_KEY_COMMANDS = ['outboxPublish', 'outboxClaimDeliveries', 'outboxReplay']

const KINDS = ['indexed', 'amended', 'revoked', 'expired'] as const
const STATUS_LETTERS: Record<string, string> = { valid: 'v', pending: 'p', expired: 'e', revoked: 'r', superseded: 's' }
const STATUSES = Object.fromEntries(Object.entries(STATUS_LETTERS).map(([status, letter]) => [letter, status])) as Record<string, string>
const EVENT_ID = /^(.+)\.([0-9]+)\.(indexed|amended|revoked|expired)$/

/** what an event id says: its document, version and kind */
function eventIdParts (id: string): { documentId: string, version: number, kind: typeof KINDS[number] } | undefined {
  const m = EVENT_ID.exec(id)
  return m ? { documentId: m[1] as string, version: Number(m[2]), kind: m[3] as typeof KINDS[number] } : undefined
}

/** an event's `ev` field: the document's ULID as 16 bytes, the kind as a byte, the version in digits (else the id itself) */
function eventField (id: string): Buffer | string {
  const parts = eventIdParts(id)
  if (!parts || !isUlid(parts.documentId)) return id
  return Buffer.concat([ulidToBytes(parts.documentId), Buffer.from([KINDS.indexOf(parts.kind)]), Buffer.from(String(parts.version))])
}

/** the stored value after the cursor: the status letter and the latest version when published, and the change's traceparent */
function encodePublished (published: NonNullable<OutboxEventRecord['published']>, traceparent: string | undefined): string {
  return `${STATUS_LETTERS[published.status] ?? `${published.status}:`}${published.latestVersion}${traceparent !== undefined ? ` ${traceparent}` : ''}`
}

function parseEvent (id: string, value: string): OutboxEventRecord {
  const space = value.indexOf(' ')
  const cursor = Number(value.slice(0, space))
  const rest = value.slice(space + 1)
  const parts = eventIdParts(id)
  // the earlier layout: the event JSON, body part included
  if (rest.startsWith('{')) return { version: parts?.version ?? 0, ...JSON.parse(rest), cursor }
  const letter = /^([a-z]+:|[a-z])([0-9]+)(?: ([0-9a-f-]+))?$/.exec(rest)
  const status = letter?.[1]?.endsWith(':') ? letter[1].slice(0, -1) : STATUSES[letter?.[1] ?? ''] ?? ''
  return {
    id,
    cursor,
    type: `document.${parts?.kind ?? 'indexed'}` as OutboxEventType,
    documentId: parts?.documentId ?? '',
    version: parts?.version ?? 0,
    published: { status, latestVersion: Number(letter?.[2]) },
    ...(letter?.[3] !== undefined ? { traceparent: letter[3] } : {})
  }
}

function parseDelivery (destination: string, eventId: string, fields: string[] | Record<string, string>): OutboxDeliveryRecord {
  const h: Record<string, string> = Array.isArray(fields)
    ? Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]))
    : fields
  return {
    destination,
    eventId,
    cursor: Number(h.cursor),
    documentId: h.doc as string,
    state: h.state as OutboxDeliveryRecord['state'],
    attempts: Number(h.attempts),
    nextAttemptAt: Number(h.next),
    ...(h.error ? { lastError: h.error } : {}),
    ...(h.at ? { settledAt: h.at } : {}),
    ...(h.extra ? { extra: JSON.parse(h.extra) } : {})
  }
}

export class RedisOutboxStore implements OutboxStore {
  private readonly scripts: {
    publish: (...args: Array<string | number | Buffer>) => Promise<number>
    claimDeliveries: (...args: Array<string | number | Buffer>) => Promise<Array<[string, string[], string]>>
    settle: (...args: string[]) => Promise<number>
    replay: (...args: Array<string | number>) => Promise<number>
  }

  constructor (private readonly redis: RedisConnection) {
    this.scripts = {
      // publish, claim and replay take their number of keys first
      publish: redis.script('outboxPublish', PUBLISH) as (...args: Array<string | number | Buffer>) => Promise<number>,
      claimDeliveries: redis.script('outboxClaimDeliveries', CLAIM_DELIVERIES) as (...args: Array<string | number | Buffer>) => Promise<Array<[string, string[], string]>>,
      settle: redis.script('outboxSettle', SETTLE, 5),
      replay: redis.script('outboxReplay', REPLAY)
    }
  }

  private key (rest: string): string { return outboxKey(this.redis, rest) }
  private get sourcesKey (): string { return this.key('src') }
  private get dueKey (): string { return this.key('due') }
  private get eventsKey (): string { return this.key('ev') }
  /** the bucket of an event's compact record: by document, so a document's events share one */
  private eventBucketKey (eventId: string): string { return this.key(`e:${bucketOf(eventIdParts(eventId)?.documentId ?? eventId)}`) }
  private deliveryKey (destination: string, eventId: string): string { return this.key(`d:${destination}:${eventId}`) }
  private queueKey (destination: string, documentId: string): string { return this.key(`q:${destination}:${documentId}`) }
  private sentKey (destination: string): string { return this.key(`x:${destination}`) }
  private countsKey (destination: string): string { return this.key(`n:${destination}`) }
  private waitingKey (destination: string): string { return this.key(`w:${destination}`) }

  async dueOutboxSources (now: number, limit: number): Promise<string[]> {
    return await this.redis.run(async () => await this.redis.client.zrangebyscore(this.sourcesKey, '-inf', now, 'LIMIT', 0, limit))
  }

  async outboxEvent (id: string): Promise<OutboxEventRecord | undefined> {
    // the compact field, or the earlier layout's text id
    const client = this.redis.client
    const [value, earlier] = await this.redis.run(async () => await Promise.all([client.hget(this.eventBucketKey(id), eventField(id)), client.hget(this.eventsKey, id)]))
    const found = value ?? earlier
    return found === null || found === undefined ? undefined : parseEvent(id, found)
  }

  async scheduleOutboxSource (source: string, at: number): Promise<void> {
    await this.redis.run(async () => await this.redis.client.zadd(this.sourcesKey, at, source))
  }

  async dropOutboxSource (source: string): Promise<void> {
    await this.redis.run(async () => await this.redis.client.zrem(this.sourcesKey, source))
  }

  async publishOutboxEvent (source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined> {
    if (!event.published) throw new StatedError('an outbox event is published with what held then')
    const keys = new DeclaredKeys([this.sourcesKey, this.eventsKey, this.key('seq'), this.dueKey, this.key('dests'), this.eventBucketKey(event.id)])
    const args: Array<string | number | Buffer> = [
      source ?? '', event.id, encodePublished(event.published, event.traceparent), now, event.documentId, eventField(event.id),
      deliveries.length, ...deliveries.flatMap((d) => [
        d.destination, d.extra ? JSON.stringify(d.extra) : '',
        keys.position(this.deliveryKey(d.destination, event.id)), keys.position(this.queueKey(d.destination, event.documentId)),
        keys.position(this.sentKey(d.destination)), keys.position(this.countsKey(d.destination)), keys.position(this.waitingKey(d.destination))
      ]),
      schedule.length, ...schedule.flatMap((s) => [s.source, s.at])
    ]
    const cursor = await this.redis.run(async () => await this.scripts.publish(keys.list.length, ...keys.list, ...args))
    return cursor === 0 ? undefined : { ...structuredClone(event), cursor }
  }

  async claimOutboxDeliveries (now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>> {
    const due = await this.redis.run(async () => await this.redis.client.zrangebyscore(this.dueKey, '-inf', now, 'LIMIT', 0, limit))
    if (due.length === 0) return []
    const keys = new DeclaredKeys([this.dueKey, this.eventsKey])
    const args: Array<string | number | Buffer> = [now, leaseMs, lease]
    for (const member of due) {
      const sep = member.indexOf('|')
      const eventId = member.slice(sep + 1)
      args.push(member, eventId, eventField(eventId), keys.position(this.deliveryKey(member.slice(0, sep), eventId)), keys.position(this.eventBucketKey(eventId)))
    }
    const rows = await this.redis.run(async () => await this.scripts.claimDeliveries(keys.list.length, ...keys.list, ...args))
    return rows.map(([member, fields, value]) => {
      const sep = member.indexOf('|')
      return { delivery: parseDelivery(member.slice(0, sep), member.slice(sep + 1), fields), event: parseEvent(member.slice(sep + 1), value) }
    })
  }

  async settleOutboxDelivery (destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean> {
    const time = outcome.state === 'retry' ? outcome.nextAttemptAt : now
    const error = outcome.state === 'delivered' ? '' : outcome.error
    const at = outcome.state === 'retry' ? '' : outcome.at
    // a delivery's document never changes: read first, its queue is declared to the script
    const documentId = await this.redis.run(async () => await this.redis.client.hget(this.deliveryKey(destination, eventId), 'doc'))
    if (documentId === null) return false
    const done = await this.redis.run(async () => await this.scripts.settle(
      this.dueKey, this.deliveryKey(destination, eventId), this.countsKey(destination), this.queueKey(destination, documentId), this.waitingKey(destination),
      destination, eventId, lease, outcome.state, String(time), error, at))
    return done === 1
  }

  async replayOutbox (destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }> {
    // the page and each delivery's document are fixed once written: read first, then declared
    const page = await this.redis.run(async () => await this.redis.client.zrangebyscore(this.sentKey(destination), `(${after}`, '+inf', 'WITHSCORES', 'LIMIT', 0, limit))
    const ids = page.filter((_, i) => i % 2 === 0)
    if (ids.length === 0) return { requeued: 0 }
    const documents = await this.redis.run(async () => await Promise.all(ids.map(async (id) => await this.redis.client.hget(this.deliveryKey(destination, id), 'doc'))))
    const keys = new DeclaredKeys([this.dueKey, this.countsKey(destination), this.waitingKey(destination)])
    const args: Array<string | number> = [destination, now]
    ids.forEach((id, i) => {
      const documentId = documents[i]
      if (documentId) args.push(id, keys.position(this.deliveryKey(destination, id)), keys.position(this.queueKey(destination, documentId)))
    })
    const requeued = await this.redis.run(async () => await this.scripts.replay(keys.list.length, ...keys.list, ...args))
    return { requeued, ...(ids.length < limit ? {} : { next: Number(page[page.length - 1]) }) }
  }

  async outboxDeliveries (destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]> {
    const ids = await this.redis.run(async () => await this.redis.client.zrangebyscore(this.sentKey(destination), `(${after}`, '+inf', 'LIMIT', 0, limit))
    if (ids.length === 0) return []
    // issued together, the reads leave in one write (auto-pipelining)
    const replies = await this.redis.run(async () => await Promise.all(ids.map(async (id) => await this.redis.client.hgetall(this.deliveryKey(destination, id)))))
    return ids.map((id, i) => parseDelivery(destination, id, replies[i] as Record<string, string>))
  }

  async outboxStatus (): Promise<OutboxDestinationStatus[]> {
    const destinations = (await this.redis.run(async () => await this.redis.client.smembers(this.key('dests')))).sort()
    if (destinations.length === 0) return []
    // issued together, the reads leave in one write (auto-pipelining); the oldest waiting is one ZRANGE
    const client = this.redis.client
    const [replies, oldest] = await this.redis.run(async () => await Promise.all([
      Promise.all(destinations.map(async (destination) => await client.hgetall(this.countsKey(destination)))),
      Promise.all(destinations.map(async (destination) => await client.zrange(this.waitingKey(destination), 0, 0, 'WITHSCORES')))
    ]))
    return destinations.map((destination, i) => {
      const counts = replies[i] as Record<string, string>
      const since = oldest[i]?.[1]
      return {
        destination,
        queued: Number(counts.queued ?? 0),
        delivered: Number(counts.delivered ?? 0),
        dead: Number(counts.dead ?? 0),
        ...(since !== undefined ? { oldestQueuedAt: new Date(Number(since)).toISOString() } : {})
      }
    })
  }
}
