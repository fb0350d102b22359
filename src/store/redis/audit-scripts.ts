/**
 * The audit trail's Lua scripts (redis/audit.ts runs them): append, retention, reveal. Each
 * touches only the keys it is given in KEYS, all under the {audit} tag.
 */

/**
 * Appends consecutive audit events of one chain: each event, its chain position and every index
 * entry, then the new head — or nothing. The first must follow the stored head (seq 1 on an
 * empty chain) and each the one before (seq + 1, prevHash = its hash), so a chain can never
 * fork or skip, whatever the callers do. An event that announces a change also queues its
 * outbox source here, so nothing announced is lost between the audit record and the outbox
 * (redis/outbox.ts). Like every script here it touches only keys it is given in KEYS (all
 * under the {audit} tag, so one slot): a cluster routes it, and checks it, by them.
 * KEYS: events hash, heads hash, the outbox sources, then the chain buckets and index keys of
 * the batch. ARGV: chain, then per event: seq, prevHash, hash, its field (the id as stored: the
 * `ev` field, chain bucket value and index member), the encoded event, its outbox source or '',
 * time (ms), position in KEYS of its chain bucket, n, then for each of its n indexes: its
 * position in KEYS, the position of its first-entry bucket (0: none) and its field there, and
 * the entry's score. An index with a first-entry bucket gets its first 3 entries there (16-byte
 * ids end to end), the ones after in its sorted set.
 */
export const APPEND_AUDIT = `
local head = redis.call('HGET', KEYS[2], ARGV[1])
local i = 2
local previous
if tonumber(ARGV[2]) == 1 then
  if head then return 0 end
else
  previous = { tonumber(ARGV[2]) - 1, ARGV[3] }
  if head ~= (tostring(previous[1]) .. ' ' .. previous[2]) then return 0 end
end
local last
-- the whole batch is checked before anything is written: a script is not rolled back
while i <= #ARGV do
  local seq, prevHash = tonumber(ARGV[i]), ARGV[i + 1]
  if last and (seq ~= last[1] + 1 or prevHash ~= last[2]) then return redis.error_reply('ERR audit batch is not a chain') end
  last = { seq, ARGV[i + 2] }
  i = i + 9 + 4 * tonumber(ARGV[i + 8])
end
i = 2
while i <= #ARGV do
  local seq, id = tonumber(ARGV[i]), ARGV[i + 3]
  redis.call('HSET', KEYS[1], id, ARGV[i + 4])
  redis.call('HSET', KEYS[tonumber(ARGV[i + 7])], tostring(seq), id)
  if ARGV[i + 5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[i + 6], ARGV[i + 5]) end
  local n = tonumber(ARGV[i + 8])
  for j = 0, n - 1 do
    local at = i + 9 + 4 * j
    local bucket = tonumber(ARGV[at + 1])
    local first = bucket ~= 0 and #id == 16 and (redis.call('HGET', KEYS[bucket], ARGV[at + 2]) or '')
    if first and #first < 48 then
      redis.call('HSET', KEYS[bucket], ARGV[at + 2], first .. id)
    else
      redis.call('ZADD', KEYS[tonumber(ARGV[at])], ARGV[at + 3], id)
    end
  end
  i = i + 9 + 4 * n
end
redis.call('HSET', KEYS[2], ARGV[1], tostring(last[1]) .. ' ' .. last[2])
return 1`

/**
 * Retention for one chain, one bounded batch at a time: a script runs alone on the server, so
 * pruning a long chain in one go would stall every gateway (BUSY after lua-time-limit) and,
 * audit being fail-closed, refuse every request meanwhile. The caller reads the batch first
 * (seqs from the chain's floor, their events, and from each event's own fields its index keys,
 * so nothing is scanned and every key is declared); the script removes them only if the floor
 * (the chain's first kept seq, kept in the chain's own hash, 1 when absent) has not moved
 * meanwhile, then moves it past the batch. Events are never rewritten, so what was read still holds.
 * KEYS: events hash, the chain's hash (floor, and the earlier layout's seq → id), then chain
 * buckets, index keys and first-entry buckets. ARGV: the floor read, the new floor, then per
 * seq: seq, its event's field ('' when none), the position in KEYS of its chain bucket, n, then
 * for each of its n indexes: its position in KEYS, its first-entry bucket's (0: none) and its
 * field there (where this event's id is taken out of the ids kept end to end).
 * Returns the number of seqs removed, or -1 when the floor moved (read again).
 */
export const PRUNE_AUDIT = `
if tonumber(redis.call('HGET', KEYS[2], 'floor') or '1') ~= tonumber(ARGV[1]) then return -1 end
local removed = 0
local i = 3
-- index members are removed per index, many at a time, at the end (one command for hundreds)
local members = {}
while i <= #ARGV do
  local seq, id, bucket, n = ARGV[i], ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])], tonumber(ARGV[i + 3])
  if id ~= '' then
    for j = 0, n - 1 do
      local at = i + 4 + 3 * j
      local index = tonumber(ARGV[at])
      local list = members[index]
      if not list then list = {}; members[index] = list end
      list[#list + 1] = id
      local bucket = tonumber(ARGV[at + 1])
      local first = bucket ~= 0 and redis.call('HGET', KEYS[bucket], ARGV[at + 2])
      if first and #id == 16 then
        for k = 1, #first, 16 do
          if string.sub(first, k, k + 15) == id then
            local rest = string.sub(first, 1, k - 1) .. string.sub(first, k + 16)
            if rest == '' then redis.call('HDEL', KEYS[bucket], ARGV[at + 2]) else redis.call('HSET', KEYS[bucket], ARGV[at + 2], rest) end
            break
          end
        end
      end
    end
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', bucket, seq)
    redis.call('HDEL', KEYS[2], seq)
    removed = removed + 1
  end
  i = i + 4 + 3 * n
end
for index, list in pairs(members) do
  for k = 1, #list, 500 do
    redis.call('ZREM', KEYS[index], unpack(list, k, math.min(k + 499, #list)))
  end
end
redis.call('HSET', KEYS[2], 'floor', ARGV[2])
return removed`

/**
 * A subject's hidden accesses due by a day move to its access history, atomically, so a
 * concurrent read sees each in one of the two, never both or neither. Scores in the hidden
 * index are the days they become visible (YYYYMMDD); the history is ordered by id (score 0).
 * KEYS: the hidden index, the history index. ARGV: the day's score, how many at most.
 */
export const REVEAL_HISTORY = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], 0, id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids`

/** Raises the archive's mark (KEYS[1], field `mark`) to ARGV[1] when it is higher (ids compare as text). */
export const RAISE_ARCHIVE_MARK = `
local mark = redis.call('HGET', KEYS[1], 'mark')
if (not mark) or mark < ARGV[1] then redis.call('HSET', KEYS[1], 'mark', ARGV[1]) end
return 1
`

/**
 * Forgets an archived, idle chain: its head (KEYS[1], field ARGV[1]) if it is still ARGV[2], and
 * its chain hash (KEYS[2]: what retention kept of it). 1 when forgotten, 0 when the head moved.
 */
export const FORGET_CHAIN = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
`
