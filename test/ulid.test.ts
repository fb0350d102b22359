import { test } from 'tap'
import { decodeTime } from 'ulid'
import { ulidFactory } from '../src/lib/ulid.js'

test('ids from the pooled random source are ULIDs, in the order made, all different, every character drawn', async (t) => {
  const next = ulidFactory()
  const ids = Array.from({ length: 20_000 }, (_, i) => next(1_800_000_000_000 + Math.floor(i / 1000)))
  t.ok(ids.every((id) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)), 'Crockford base 32, 26 characters')
  t.equal(decodeTime(ids[0] as string), 1_800_000_000_000, 'the time part is the time given')
  t.same([...ids].sort(), ids, 'ids made in the same millisecond still sort in the order made')
  t.equal(new Set(ids).size, ids.length, 'no id twice')
  // the first id of each millisecond has a fresh random part: every one of the 32 characters appears in it
  const fresh = ids.filter((_, i) => i % 1000 === 0).concat(Array.from({ length: 200 }, (_, i) => next(1_900_000_000_000 + i)))
  const seen = new Set(fresh.flatMap((id) => [...id.slice(10)]))
  t.equal(seen.size, 32, 'the random part uses the whole alphabet')
})
