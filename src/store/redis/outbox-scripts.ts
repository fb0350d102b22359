/**
 * The outbox's Lua scripts (redis/outbox.ts runs them): publish, claim, settle, replay. Keys as
 * listed in redis/outbox.ts; each script touches only the keys it is given in KEYS.
 */

/**
 * Publishes one event: unless its id exists, gives it the next cursor, queues a delivery per
 * destination (due now when it heads its queue), adds the scheduled sources; drops the source
 * either way, so a source confirmed twice (a lease that ran out mid-way) publishes once.
 * KEYS: src, ev (the earlier layout's), seq, due, dests, the event's bucket (e:), then per
 * destination its d:, q:, x:, n: and w: keys.
 * ARGV: source or '', event id, the event's stored value (after its cursor), now, document id,
 * the event's field in its bucket, n, then n × (destination, extra JSON or '', positions in KEYS of its d:,
 * q:, x:, n:, w:), m, then m × (source, at). An event the earlier layout stored (under its text id)
 * exists too.
 * Returns the cursor, or 0 when the event existed.
 */
export const PUBLISH = `
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
if redis.call('HEXISTS', KEYS[6], ARGV[6]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
local cursor = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[6], ARGV[6], cursor .. ' ' .. ARGV[3])
local id, now, doc = ARGV[2], ARGV[4], ARGV[5]
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  local dest, extra = ARGV[i], ARGV[i + 1]
  local delivery, queue, sent, counts, waiting = KEYS[tonumber(ARGV[i + 2])], KEYS[tonumber(ARGV[i + 3])], KEYS[tonumber(ARGV[i + 4])], KEYS[tonumber(ARGV[i + 5])], KEYS[tonumber(ARGV[i + 6])]
  i = i + 7
  redis.call('HSET', delivery, 'state', 'queued', 'attempts', 0, 'next', now, 'cursor', cursor, 'doc', doc, 'extra', extra)
  if redis.call('RPUSH', queue, id) == 1 then
    redis.call('ZADD', KEYS[4], now, dest .. '|' .. id)
  end
  redis.call('ZADD', sent, cursor, id)
  redis.call('SADD', KEYS[5], dest)
  redis.call('HINCRBY', counts, 'queued', 1)
  redis.call('ZADD', waiting, now, id)
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
 * KEYS: due, ev (the earlier layout's), then the deliveries' d: keys and their events' buckets.
 * ARGV: now, lease ms, lease token, then per delivery: its "due" member, event id, the event's
 * field in its bucket, positions in KEYS of its d: key and of the bucket (an event of the
 * earlier layout is in ev under its id).
 * Returns {member, HGETALL delivery, event value} per delivery claimed.
 */
export const CLAIM_DELIVERIES = `
local now = tonumber(ARGV[1])
local hidden = now + tonumber(ARGV[2])
local out = {}
for i = 4, #ARGV, 5 do
  local member, id, field, key, bucket = ARGV[i], ARGV[i + 1], ARGV[i + 2], KEYS[tonumber(ARGV[i + 3])], KEYS[tonumber(ARGV[i + 4])]
  local due = redis.call('ZSCORE', KEYS[1], member)
  if due and tonumber(due) <= now then
    redis.call('ZADD', KEYS[1], hidden, member)
    redis.call('HSET', key, 'lease', ARGV[3])
    out[#out + 1] = { member, redis.call('HGETALL', key), redis.call('HGET', bucket, field) or redis.call('HGET', KEYS[2], id) or '' }
  end
end
return out`

/**
 * Records an attempt, if the caller still holds the lease (a worker that outlived its lease
 * must not settle what another worker now holds). A retry stays at the head of its queue; a
 * delivered or dead one leaves it and the next event of the same document becomes due.
 * KEYS: due, the delivery (d:), the destination's counts (n:), its queue for the delivery's
 * document (q:), its waiting deliveries (w:). ARGV: destination, event id, lease, state (delivered|retry|dead), time (next
 * attempt for a retry, else now), error, settled-at.
 */
export const SETTLE = `
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
redis.call('ZREM', KEYS[5], id)
redis.call('LREM', queue, 1, id)
local head = redis.call('LINDEX', queue, 0)
if head then redis.call('ZADD', KEYS[1], ARGV[5], dest .. '|' .. head) end
return 1`

/**
 * Queues again a page of a destination's settled deliveries (queued ones are left as they are);
 * the caller has read the page from the destination's x: set and each delivery's document.
 * KEYS: due, the destination's counts (n:), its waiting deliveries (w:), then d: and q: keys. ARGV: destination, now, then
 * per delivery: event id, positions in KEYS of its d: and q: keys. Returns how many it queued.
 */
export const REPLAY = `
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
    redis.call('ZADD', KEYS[3], now, id)
    if redis.call('RPUSH', queue, id) == 1 then
      redis.call('ZADD', KEYS[1], now, dest .. '|' .. id)
    end
    requeued = requeued + 1
  end
end
return requeued`
