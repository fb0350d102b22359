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
 */

/**
 * Publishes one event: unless its id exists, gives it the next cursor, queues a delivery per
 * destination (due now when it heads its queue), adds the scheduled sources; drops the source
 * either way, so a source confirmed twice (a lease that ran out mid-way) publishes once.
 * KEYS: src, ev, seq, due, dests. ARGV: source or '', event id, event JSON, now, key prefix,
 * document id, n, then n × (destination, extra JSON or ''), m, then m × (source, at).
 * Returns the cursor, or 0 when the event existed.
 */
const PUBLISH = `
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
local cursor = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[2], cursor .. ' ' .. ARGV[3])
local id, now, p, doc = ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  local dest, extra = ARGV[i], ARGV[i + 1]
  i = i + 2
  redis.call('HSET', p .. 'd:' .. dest .. ':' .. id, 'state', 'queued', 'attempts', 0, 'next', now, 'cursor', cursor, 'doc', doc, 'extra', extra)
  if redis.call('RPUSH', p .. 'q:' .. dest .. ':' .. doc, id) == 1 then
    redis.call('ZADD', KEYS[4], now, dest .. '|' .. id)
  end
  redis.call('ZADD', p .. 'x:' .. dest, cursor, id)
  redis.call('SADD', KEYS[5], dest)
  redis.call('HINCRBY', p .. 'n:' .. dest, 'queued', 1)
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
 * so another worker takes it only if this one dies. KEYS: due, ev. ARGV: now, lease ms, limit,
 * lease token, key prefix. Returns {member, HGETALL delivery, event value} per delivery.
 */
const CLAIM_DELIVERIES = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local hidden = tonumber(ARGV[1]) + tonumber(ARGV[2])
local out = {}
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local dest, id = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  local key = ARGV[5] .. 'd:' .. dest .. ':' .. id
  redis.call('ZADD', KEYS[1], hidden, member)
  redis.call('HSET', key, 'lease', ARGV[4])
  out[#out + 1] = { member, redis.call('HGETALL', key), redis.call('HGET', KEYS[2], id) or '' }
end
return out`

/**
 * Records an attempt, if the caller still holds the lease (a worker that outlived its lease
 * must not settle what another worker now holds). A retry stays at the head of its queue; a
 * delivered or dead one leaves it and the next event of the same document becomes due.
 * KEYS: due. ARGV: key prefix, destination, event id, lease, state (delivered|retry|dead),
 * time (next attempt for a retry, else now), error, settled-at.
 */
const SETTLE = `
local p, dest, id = ARGV[1], ARGV[2], ARGV[3]
local key = p .. 'd:' .. dest .. ':' .. id
if redis.call('HGET', key, 'lease') ~= ARGV[4] then return 0 end
redis.call('HDEL', key, 'lease')
redis.call('HINCRBY', key, 'attempts', 1)
local member = dest .. '|' .. id
if ARGV[5] == 'retry' then
  redis.call('HSET', key, 'next', ARGV[6], 'error', ARGV[7])
  redis.call('ZADD', KEYS[1], ARGV[6], member)
  return 1
end
redis.call('HSET', key, 'state', ARGV[5], 'at', ARGV[8])
if ARGV[5] == 'dead' then redis.call('HSET', key, 'error', ARGV[7]) end
redis.call('ZREM', KEYS[1], member)
redis.call('HINCRBY', p .. 'n:' .. dest, 'queued', -1)
redis.call('HINCRBY', p .. 'n:' .. dest, ARGV[5], 1)
local queue = p .. 'q:' .. dest .. ':' .. redis.call('HGET', key, 'doc')
redis.call('LREM', queue, 1, id)
local head = redis.call('LINDEX', queue, 0)
if head then redis.call('ZADD', KEYS[1], ARGV[6], dest .. '|' .. head) end
return 1`

/**
 * Queues again a page of a destination's settled deliveries after a cursor (queued ones are
 * left as they are). KEYS: due. ARGV: key prefix, destination, after, limit, now.
 * Returns {requeued, last cursor of the page or '' when the page was not full}.
 */
const REPLAY = `
local p, dest, now = ARGV[1], ARGV[2], ARGV[5]
local page = redis.call('ZRANGEBYSCORE', p .. 'x:' .. dest, '(' .. ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
local requeued = 0
for i = 1, #page, 2 do
  local id = page[i]
  local key = p .. 'd:' .. dest .. ':' .. id
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'queued' then
    redis.call('HSET', key, 'state', 'queued', 'attempts', 0, 'next', now)
    redis.call('HDEL', key, 'error', 'at', 'lease')
    redis.call('HINCRBY', p .. 'n:' .. dest, state, -1)
    redis.call('HINCRBY', p .. 'n:' .. dest, 'queued', 1)
    if redis.call('RPUSH', p .. 'q:' .. dest .. ':' .. redis.call('HGET', key, 'doc'), id) == 1 then
      redis.call('ZADD', KEYS[1], now, dest .. '|' .. id)
    end
    requeued = requeued + 1
  end
end
if #page / 2 < tonumber(ARGV[4]) then return {requeued, ''} end
return {requeued, page[#page]}`

/** KEYS: the lease. ARGV: owner, ttl ms. Takes a free lease or renews one's own. */
const HOLD_LEASE = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

type Client = Redis | Cluster

interface OutboxCommands {
  outboxPublish(...args: Array<string | number>): Promise<number>
  outboxClaimDeliveries(due: string, events: string, now: number, leaseMs: number, limit: number, lease: string, prefix: string): Promise<Array<[string, string[], string]>>
  outboxSettle(due: string, ...args: string[]): Promise<number>
  outboxReplay(due: string, prefix: string, destination: string, after: number, limit: number, now: number): Promise<[number, string]>
  outboxHoldLease(key: string, owner: string, ttlMs: number): Promise<number>
}

/** the scripts, registered once per client (EVALSHA, falling back to EVAL after a restart) */
export function defineOutboxCommands (client: Client): void {
  client.defineCommand('outboxPublish', { numberOfKeys: 5, lua: PUBLISH })
  client.defineCommand('outboxClaimDeliveries', { numberOfKeys: 2, lua: CLAIM_DELIVERIES })
  client.defineCommand('outboxSettle', { numberOfKeys: 1, lua: SETTLE })
  client.defineCommand('outboxReplay', { numberOfKeys: 1, lua: REPLAY })
  client.defineCommand('outboxHoldLease', { numberOfKeys: 1, lua: HOLD_LEASE })
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
    const args: Array<string | number> = [
      this.sourcesKey, this.eventsKey, this.prefix + 'seq', this.dueKey, this.prefix + 'dests',
      source ?? '', event.id, JSON.stringify(event), now, this.prefix, event.documentId,
      deliveries.length, ...deliveries.flatMap((d) => [d.destination, d.extra ? JSON.stringify(d.extra) : '']),
      schedule.length, ...schedule.flatMap((s) => [s.source, s.at])
    ]
    const cursor = await this.run(async () => await this.commands.outboxPublish(...args))
    return cursor === 0 ? undefined : { ...structuredClone(event), cursor }
  }

  async claimDeliveries (now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>> {
    const rows = await this.run(async () => await this.commands.outboxClaimDeliveries(this.dueKey, this.eventsKey, now, leaseMs, limit, lease, this.prefix))
    return rows.map(([member, fields, value]) => {
      const sep = member.indexOf('|')
      return { delivery: parseDelivery(member.slice(0, sep), member.slice(sep + 1), fields), event: parseEvent(value) }
    })
  }

  async settle (destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean> {
    const time = outcome.state === 'retry' ? outcome.nextAttemptAt : now
    const error = outcome.state === 'delivered' ? '' : outcome.error
    const at = outcome.state === 'retry' ? '' : outcome.at
    const done = await this.run(async () => await this.commands.outboxSettle(this.dueKey, this.prefix, destination, eventId, lease, outcome.state, String(time), error, at))
    return done === 1
  }

  async replay (destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }> {
    const [requeued, last] = await this.run(async () => await this.commands.outboxReplay(this.dueKey, this.prefix, destination, after, limit, now))
    return { requeued, ...(last === '' ? {} : { next: Number(last) }) }
  }

  async list (destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]> {
    const ids = await this.run(async () => await this.client.zrangebyscore(this.prefix + 'x:' + destination, `(${after}`, '+inf', 'LIMIT', 0, limit))
    if (ids.length === 0) return []
    // issued together, the reads leave in one write (auto-pipelining)
    const replies = await this.run(async () => await Promise.all(ids.map(async (id) => await this.client.hgetall(`${this.prefix}d:${destination}:${id}`))))
    return ids.map((id, i) => parseDelivery(destination, id, replies[i] as Record<string, string>))
  }

  async status (): Promise<OutboxDestinationStatus[]> {
    const destinations = (await this.run(async () => await this.client.smembers(this.prefix + 'dests'))).sort()
    if (destinations.length === 0) return []
    const replies = await this.run(async () => await Promise.all(destinations.map(async (destination) => await this.client.hgetall(this.prefix + 'n:' + destination))))
    return destinations.map((destination, i) => {
      const counts = replies[i] as Record<string, string>
      return { destination, queued: Number(counts.queued ?? 0), delivered: Number(counts.delivered ?? 0), dead: Number(counts.dead ?? 0) }
    })
  }

  async holdLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.run(async () => await this.commands.outboxHoldLease(this.prefix + 'lease:' + name, owner, Math.max(1, Math.ceil(ttlMs))))) === 1
  }
}
