/**
 * The documents' Lua scripts (redis/documents.ts runs them). Each touches only the keys it is
 * given in KEYS.
 */

/**
 * Registers version 1 of many documents on one server, each exactly once per natural key: for
 * each, unless its registration record exists (or, while the earlier layout's records are still
 * there, its old record does), writes the record, version 1 and the partition's index entry, and
 * the id → partition pointer. Returns per document 1 (registered) or the record found.
 * KEYS per document: its registration bucket, its subject's partition, its pointer bucket, and
 * with ARGV[1] = '1' the earlier layout's record. ARGV: '1'/'0', then per document: record
 * field, record, id, type, version, pointer field, pointer.
 */
export const REGISTER_MANY = `
local legacy = ARGV[1] == '1'
local step = legacy and 4 or 3
local out = {}
local k = 1
for a = 2, #ARGV, 7 do
  local found = redis.call('HGET', KEYS[k], ARGV[a])
  if not found and legacy then found = redis.call('GET', KEYS[k + 3]) end
  if found then
    out[#out + 1] = found
  else
    redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
    redis.call('HSETNX', KEYS[k + 1], ARGV[a + 2] .. '|v:1', ARGV[a + 4])
    redis.call('HSET', KEYS[k + 1], ARGV[a + 2], ARGV[a + 3])
    redis.call('HSET', KEYS[k + 2], ARGV[a + 5], ARGV[a + 6])
    out[#out + 1] = 1
  end
  k = k + step
end
return out`

/**
 * The registration records of many natural keys on one server, in order (false where none).
 * KEYS: their buckets, and with ARGV[1] = '1' then the earlier layout's records. ARGV: '1'/'0',
 * then the record fields.
 */
export const LOOKUP_MANY = `
local legacy = ARGV[1] == '1'
local n = #ARGV - 1
local out = {}
for i = 1, n do
  local found = redis.call('HGET', KEYS[i], ARGV[i + 1])
  if not found and legacy then found = redis.call('GET', KEYS[n + i]) end
  out[i] = found or false
end
return out`

/**
 * Writes version 1 of a document into its subject's partition, idempotently (a retry after a
 * crash redoes exactly this). KEYS: the partition. ARGV: id, type, version.
 */
export const PUT_FIRST_VERSION = `
redis.call('HSETNX', KEYS[1], ARGV[1] .. '|v:1', ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

/**
 * Appends version n+1 when the document's last version is still n and it is not revoked; with
 * ARGV[4] = '1', version n's file (if any) becomes version n+1's too, marked with the version it
 * was uploaded to. KEYS: the subject's partition. ARGV: document id, expected n, the new
 * version, '1' to carry the file. Returns 0 (not appended), 1 (appended, no file) or the carried file's JSON.
 */
export const AMEND = `
local d = ARGV[1] .. '|'
if redis.call('HEXISTS', KEYS[1], d .. 'revoked') == 1 then return 0 end
local n = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], d .. 'v:' .. n) == 0 or redis.call('HEXISTS', KEYS[1], d .. 'v:' .. (n + 1)) == 1 then return 0 end
redis.call('HSET', KEYS[1], d .. 'v:' .. (n + 1), ARGV[3])
if ARGV[4] ~= '1' then return 1 end
local found = redis.call('HGET', KEYS[1], d .. 'file:' .. n)
if not found then return 1 end
local file = cjson.decode(found)
if file.carriedFrom == nil then file.carriedFrom = n end
local carried = cjson.encode(file)
redis.call('HSET', KEYS[1], d .. 'file:' .. (n + 1), carried)
return carried`

/**
 * Replaces a stored version if it is still exactly as read (re-encryption of its data, or its
 * rewrite in the compact layout). KEYS: the subject's partition. ARGV: the version's field, the
 * new value, then each form the value read may be stored in (the compact one, the earlier JSON).
 */
export const REWRITE_VERSION = `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return 0 end
for i = 3, #ARGV do
  if stored == ARGV[i] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0`

