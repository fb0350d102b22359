import type { Cluster, Redis } from 'ioredis'
import type { OutboxDeliveryRecord, OutboxDestinationStatus, OutboxEventRecord, OutboxSettlement } from './store.js'

/*
 * The outbox in Redis. Every key shares the {audit} hash tag, because a source is queued by the
 * very script that appends the audit event recording the change (store.appendAuditEvent with
 * `announce`), and an event, its deliveries and its queues are written by one script below —
 * on a cluster, one slot. Keys, after `<prefix>{audit}:ob:`:
 *   src           sorted set: source → when it is due (the audit event's time, or an expiry)
 *   ev            hash: event id → "<cursor> <event JSON>"
 *   seq           the last cursor given
 *   due           sorted set: "<destination>|<event id>" → when the delivery is due; only the
 *                 head of each (destination, document) queue is in it, so order holds
 *   d:<dest>:<id> hash: one delivery (state, attempts, next, error, at, cursor, doc, extra, lease)
 *   q:<dest>:<doc> list: a destination's unsettled events of one document, oldest first
 *   x:<dest>      sorted set: event id → cursor, every delivery a destination ever had (replay)
 *   n:<dest>      hash: queued / delivered / dead counts
 *   dests         set of destinations
 *   lease:<name>  a lease (SET PX) held by one process
 * Destinations never contain "|" (agency codes are digits, dots and letters).
 *
 * Every script touches only keys it is given in KEYS, never a name it builds from what it reads:
 * a cluster routes and checks a script by its declared keys, and keys a slot migration moves
 * under a script that did not declare them could be read half here, half there. What a script
 * would otherwise discover (the due deliveries, a delivery's document, a replay page) the caller
 * reads first; the script then checks that it still holds.
 */

/**
 * Publishes one event: unless its id exists, gives it the next cursor, queues a delivery per
 * destination (due now when it heads its queue), adds the scheduled sources; drops the source
 * either way, so a source confirmed twice (a lease that ran out mid-way) publishes once.
 * KEYS: src, ev, seq, due, dests, then per destination its d:, q:, x: and n: keys.
 * ARGV: source or '', event id, event JSON, now, document id, n, then n × (destination, extra
 * JSON or '', positions in KEYS of its d:, q:, x:, n:), m, then m × (source, at).
 * Returns the cursor, or 0 when the event existed.
 */
const PUBLISH = `
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
local cursor = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[2], cursor .. ' ' .. ARGV[3])
local id, now, doc = ARGV[2], ARGV[4], ARGV[5]
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  local dest, extra = ARGV[i], ARGV[i + 1]
  local delivery, queue, sent, counts = KEYS[tonumber(ARGV[i + 2])], KEYS[tonumber(ARGV[i + 3])], KEYS[tonumber(ARGV[i + 4])], KEYS[tonumber(ARGV[i + 5])]
  i = i + 6
  redis.call('HSET', delivery, 'state', 'queued', 'attempts', 0, 'next', now, 'cursor', cursor, 'doc', doc, 'extra', extra)
  if redis.call('RPUSH', queue, id) == 1 then
    redis.call('ZADD', KEYS[4], now, dest .. '|' .. id)
  end
  redis.call('ZADD', sent, cursor, id)
  redis.call('SADD', KEYS[5], dest)
  redis.call('HINCRBY', counts, 'queued', 1)
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  i = i + 2
end
return cursor`

/**
 * Leases due deliveries to one worker: each stays in "due" with its time pushed past the lease,
 * so another worker takes it only if this one dies. The caller has read which are due; one that
 * another worker claimed (or settled) since is no longer due and is skipped.
 * KEYS: due, ev, then the deliveries' d: keys. ARGV: now, lease ms, lease token, then per
 * delivery: its "due" member, event id, position of its d: key in KEYS.
 * Returns {member, HGETALL delivery, event value} per delivery claimed.
 */
const CLAIM_DELIVERIES = `
local now = tonumber(ARGV[1])
local hidden = now + tonumber(ARGV[2])
local out = {}
for i = 4, #ARGV, 3 do
  local member, id, key = ARGV[i], ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])]
  local due = redis.call('ZSCORE', KEYS[1], member)
  if due and tonumber(due) <= now then
    redis.call('ZADD', KEYS[1], hidden, member)
    redis.call('HSET', key, 'lease', ARGV[3])
    out[#out + 1] = { member, redis.call('HGETALL', key), redis.call('HGET', KEYS[2], id) or '' }
  end
end
return out`

/**
 * Records an attempt, if the caller still holds the lease (a worker that outlived its lease
 * must not settle what another worker now holds). A retry stays at the head of its queue; a
 * delivered or dead one leaves it and the next event of the same document becomes due.
 * KEYS: due, the delivery (d:), the destination's counts (n:), its queue for the delivery's
 * document (q:). ARGV: destination, event id, lease, state (delivered|retry|dead), time (next
 * attempt for a retry, else now), error, settled-at.
 */
const SETTLE = `
local dest, id, key, counts, queue = ARGV[1], ARGV[2], KEYS[2], KEYS[3], KEYS[4]
if redis.call('HGET', key, 'lease') ~= ARGV[3] then return 0 end
redis.call('HDEL', key, 'lease')
redis.call('HINCRBY', key, 'attempts', 1)
local member = dest .. '|' .. id
if ARGV[4] == 'retry' then
  redis.call('HSET', key, 'next', ARGV[5], 'error', ARGV[6])
  redis.call('ZADD', KEYS[1], ARGV[5], member)
  return 1
end
redis.call('HSET', key, 'state', ARGV[4], 'at', ARGV[7])
if ARGV[4] == 'dead' then redis.call('HSET', key, 'error', ARGV[6]) end
redis.call('ZREM', KEYS[1], member)
redis.call('HINCRBY', counts, 'queued', -1)
redis.call('HINCRBY', counts, ARGV[4], 1)
redis.call('LREM', queue, 1, id)
local head = redis.call('LINDEX', queue, 0)
if head then redis.call('ZADD', KEYS[1], ARGV[5], dest .. '|' .. head) end
return 1`

/**
 * Queues again a page of a destination's settled deliveries (queued ones are left as they are);
 * the caller has read the page from the destination's x: set and each delivery's document.
 * KEYS: due, the destination's counts (n:), then d: and q: keys. ARGV: destination, now, then
 * per delivery: event id, positions in KEYS of its d: and q: keys. Returns how many it queued.
 */
const REPLAY = `
local dest, now, counts = ARGV[1], ARGV[2], KEYS[2]
local requeued = 0
for i = 3, #ARGV, 3 do
  local id, key, queue = ARGV[i], KEYS[tonumber(ARGV[i + 1])], KEYS[tonumber(ARGV[i + 2])]
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'queued' then
    redis.call('HSET', key, 'state', 'queued', 'attempts', 0, 'next', now)
    redis.call('HDEL', key, 'error', 'at', 'lease')
    redis.call('HINCRBY', counts, state, -1)
    redis.call('HINCRBY', counts, 'queued', 1)
    if redis.call('RPUSH', queue, id) == 1 then
      redis.call('ZADD', KEYS[1], now, dest .. '|' .. id)
    end
    requeued = requeued + 1
  end
end
return requeued`

/** KEYS: the lease. ARGV: owner, ttl ms. Takes a free lease or renews one's own. */
const HOLD_LEASE = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

type Client = Redis | Cluster

/** the commands with a varying number of keys take that number first */
interface OutboxCommands {
  outboxPublish(...args: Array<string | number>): Promise<number>
  outboxClaimDeliveries(...args: Array<string | number>): Promise<Array<[string, string[], string]>>
  outboxSettle(...args: string[]): Promise<number>
  outboxReplay(...args: Array<string | number>): Promise<number>
  outboxHoldLease(key: string, owner: string, ttlMs: number): Promise<number>
}

/** the scripts called with their number of keys first */
export const OUTBOX_VARIABLE_KEY_COMMANDS = ['outboxPublish', 'outboxClaimDeliveries', 'outboxReplay']

/** the scripts, registered once per client (EVALSHA, falling back to EVAL after a restart) */
export function defineOutboxCommands (client: Client): void {
  client.defineCommand('outboxPublish', { lua: PUBLISH })
  client.defineCommand('outboxClaimDeliveries', { lua: CLAIM_DELIVERIES })
  client.defineCommand('outboxSettle', { numberOfKeys: 4, lua: SETTLE })
  client.defineCommand('outboxReplay', { lua: REPLAY })
  client.defineCommand('outboxHoldLease', { numberOfKeys: 1, lua: HOLD_LEASE })
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


function parseEvent (value: string): OutboxEventRecord {
  const space = value.indexOf(' ')
  return { ...JSON.parse(value.slice(space + 1)), cursor: Number(value.slice(0, space)) }
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

/** The outbox operations of RedisStore (see the Store contract). */
export class RedisOutbox {
  private readonly commands: OutboxCommands

  constructor (private readonly client: Client, private readonly prefix: string, private readonly run: <T>(operation: () => Promise<T>) => Promise<T>) {
    this.commands = client as unknown as OutboxCommands
  }

  /** the sorted set the audit append script adds an announced event's source to */
  get sourcesKey (): string { return this.prefix + 'src' }
  private get dueKey (): string { return this.prefix + 'due' }
  private get eventsKey (): string { return this.prefix + 'ev' }
  private deliveryKey (destination: string, eventId: string): string { return `${this.prefix}d:${destination}:${eventId}` }
  private queueKey (destination: string, documentId: string): string { return `${this.prefix}q:${destination}:${documentId}` }
  private sentKey (destination: string): string { return `${this.prefix}x:${destination}` }
  private countsKey (destination: string): string { return `${this.prefix}n:${destination}` }

  async dueSources (now: number, limit: number): Promise<string[]> {
    return await this.run(async () => await this.client.zrangebyscore(this.sourcesKey, '-inf', now, 'LIMIT', 0, limit))
  }

  async event (id: string): Promise<OutboxEventRecord | undefined> {
    const value = await this.run(async () => await this.client.hget(this.eventsKey, id))
    return value === null ? undefined : parseEvent(value)
  }

  async schedule (source: string, at: number): Promise<void> {
    await this.run(async () => await this.client.zadd(this.sourcesKey, at, source))
  }

  async drop (source: string): Promise<void> {
    await this.run(async () => await this.client.zrem(this.sourcesKey, source))
  }

  async publish (source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined> {
    const keys = new DeclaredKeys([this.sourcesKey, this.eventsKey, this.prefix + 'seq', this.dueKey, this.prefix + 'dests'])
    const args: Array<string | number> = [
      source ?? '', event.id, JSON.stringify(event), now, event.documentId,
      deliveries.length, ...deliveries.flatMap((d) => [
        d.destination, d.extra ? JSON.stringify(d.extra) : '',
        keys.position(this.deliveryKey(d.destination, event.id)), keys.position(this.queueKey(d.destination, event.documentId)),
        keys.position(this.sentKey(d.destination)), keys.position(this.countsKey(d.destination))
      ]),
      schedule.length, ...schedule.flatMap((s) => [s.source, s.at])
    ]
    const cursor = await this.run(async () => await this.commands.outboxPublish(keys.list.length, ...keys.list, ...args))
    return cursor === 0 ? undefined : { ...structuredClone(event), cursor }
  }

  async claimDeliveries (now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>> {
    const due = await this.run(async () => await this.client.zrangebyscore(this.dueKey, '-inf', now, 'LIMIT', 0, limit))
    if (due.length === 0) return []
    const keys = new DeclaredKeys([this.dueKey, this.eventsKey])
    const args: Array<string | number> = [now, leaseMs, lease]
    for (const member of due) {
      const sep = member.indexOf('|')
      const eventId = member.slice(sep + 1)
      args.push(member, eventId, keys.position(this.deliveryKey(member.slice(0, sep), eventId)))
    }
    const rows = await this.run(async () => await this.commands.outboxClaimDeliveries(keys.list.length, ...keys.list, ...args))
    return rows.map(([member, fields, value]) => {
      const sep = member.indexOf('|')
      return { delivery: parseDelivery(member.slice(0, sep), member.slice(sep + 1), fields), event: parseEvent(value) }
    })
  }

  async settle (destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean> {
    const time = outcome.state === 'retry' ? outcome.nextAttemptAt : now
    const error = outcome.state === 'delivered' ? '' : outcome.error
    const at = outcome.state === 'retry' ? '' : outcome.at
    // a delivery's document never changes: read first, its queue is declared to the script
    const documentId = await this.run(async () => await this.client.hget(this.deliveryKey(destination, eventId), 'doc'))
    if (documentId === null) return false
    const done = await this.run(async () => await this.commands.outboxSettle(
      this.dueKey, this.deliveryKey(destination, eventId), this.countsKey(destination), this.queueKey(destination, documentId),
      destination, eventId, lease, outcome.state, String(time), error, at))
    return done === 1
  }

  async replay (destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }> {
    // the page and each delivery's document are fixed once written: read first, then declared
    const page = await this.run(async () => await this.client.zrangebyscore(this.sentKey(destination), `(${after}`, '+inf', 'WITHSCORES', 'LIMIT', 0, limit))
    const ids = page.filter((_, i) => i % 2 === 0)
    if (ids.length === 0) return { requeued: 0 }
    const documents = await this.run(async () => await Promise.all(ids.map(async (id) => await this.client.hget(this.deliveryKey(destination, id), 'doc'))))
    const keys = new DeclaredKeys([this.dueKey, this.countsKey(destination)])
    const args: Array<string | number> = [destination, now]
    ids.forEach((id, i) => {
      const documentId = documents[i]
      if (documentId) args.push(id, keys.position(this.deliveryKey(destination, id)), keys.position(this.queueKey(destination, documentId)))
    })
    const requeued = await this.run(async () => await this.commands.outboxReplay(keys.list.length, ...keys.list, ...args))
    return { requeued, ...(ids.length < limit ? {} : { next: Number(page[page.length - 1]) }) }
  }

  async list (destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]> {
    const ids = await this.run(async () => await this.client.zrangebyscore(this.sentKey(destination), `(${after}`, '+inf', 'LIMIT', 0, limit))
    if (ids.length === 0) return []
    // issued together, the reads leave in one write (auto-pipelining)
    const replies = await this.run(async () => await Promise.all(ids.map(async (id) => await this.client.hgetall(this.deliveryKey(destination, id)))))
    return ids.map((id, i) => parseDelivery(destination, id, replies[i] as Record<string, string>))
  }

  async status (): Promise<OutboxDestinationStatus[]> {
    const destinations = (await this.run(async () => await this.client.smembers(this.prefix + 'dests'))).sort()
    if (destinations.length === 0) return []
    const replies = await this.run(async () => await Promise.all(destinations.map(async (destination) => await this.client.hgetall(this.countsKey(destination)))))
    return destinations.map((destination, i) => {
      const counts = replies[i] as Record<string, string>
      return { destination, queued: Number(counts.queued ?? 0), delivered: Number(counts.delivered ?? 0), dead: Number(counts.dead ?? 0) }
    })
  }

  async holdLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.run(async () => await this.commands.outboxHoldLease(this.prefix + 'lease:' + name, owner, Math.max(1, Math.ceil(ttlMs))))) === 1
  }
}
