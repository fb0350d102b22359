import t from 'tap'
import type { Test } from 'tap'
import { MemoryStores } from '../src/store/index.js'
import type { AuditCheckpointRecord, Stores } from '../src/store/index.js'
import { bearer, buildWorld } from './lib/world.js'
import type { World } from './lib/world.js'
import { redisServerBinary, startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'

/**
 * Checkpoints are made every minute by every gateway process, for years: an auditor pages
 * through a range of them, and a page costs about a page to read, not the whole history.
 */
const BASE = Date.parse('2026-01-01T00:00:00.000Z')
const at = (minute: number): string => new Date(BASE + minute * 60_000).toISOString()
const record = (minute: number, tag: string): AuditCheckpointRecord => ({ time: at(minute), jws: `h.${tag}.s`, chains: [] })

/** 300 checkpoints a minute apart, and one a second process stored late with an earlier clock */
async function fill (store: Stores): Promise<void> {
  for (let minute = 0; minute < 300; minute++) {
    await store.audit.putAuditCheckpoint(record(minute, `m${minute}`))
    if (minute === 120) await store.audit.putAuditCheckpoint(record(119.5, 'late'))
  }
}

async function pages (t: Test, w: World, range: string, limit: number): Promise<Array<{ time: string, jws: string }>> {
  const seen: Array<{ time: string, jws: string }> = []
  let cursor: string | undefined
  for (let page = 0; page < 100; page++) {
    const url = `/v1/audit/checkpoints?${range}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const res = await w.app.inject({ method: 'GET', url, headers: bearer(w.tokens.auditor) })
    t.equal(res.statusCode, 200)
    const body = res.json() as { checkpoints: Array<{ time: string, jws: string }>, nextCursor?: string }
    t.ok(body.checkpoints.length <= limit, 'a page holds at most `limit`')
    seen.push(...body.checkpoints)
    cursor = body.nextCursor
    if (!cursor) return seen
    t.equal(body.checkpoints.length, limit, 'a page that has a next one is full')
  }
  throw new Error('the pages never ended')
}

async function pagesThroughARange (t: Test, store: Stores): Promise<void> {
  await fill(store)
  const w = await buildWorld(t, { store })
  const seen = await pages(t, w, `from=${encodeURIComponent(at(10))}&to=${encodeURIComponent(at(250))}`, 7)
  const expected = ['m10', ...Array.from({ length: 239 }, (_, i) => `m${i + 11}`)]
  expected.splice(expected.indexOf('m120') + 1, 0, 'late')
  t.same(seen.map((c) => c.jws.split('.')[1]), expected, 'every checkpoint of the range once, in the order stored, the late one included')

  // a cursor is bound to its range
  const first = (await w.app.inject({ method: 'GET', url: `/v1/audit/checkpoints?to=${encodeURIComponent(at(250))}&limit=5`, headers: bearer(w.tokens.auditor) })).json() as { nextCursor: string }
  const moved = await w.app.inject({ method: 'GET', url: `/v1/audit/checkpoints?to=${encodeURIComponent(at(251))}&cursor=${encodeURIComponent(first.nextCursor)}`, headers: bearer(w.tokens.auditor) })
  t.equal(moved.statusCode, 400)
  t.equal(moved.json().code, 'invalid_cursor')
  const forged = await w.app.inject({ method: 'GET', url: '/v1/audit/checkpoints?cursor=eyJpZCI6IjAifQ.AAAA', headers: bearer(w.tokens.auditor) })
  t.equal(forged.statusCode, 400)
  t.equal(forged.json().code, 'invalid_cursor')

  const none = (await w.app.inject({ method: 'GET', url: `/v1/audit/checkpoints?from=${encodeURIComponent(at(-100))}&to=${encodeURIComponent(at(-50))}`, headers: bearer(w.tokens.auditor) })).json()
  t.same(none, { checkpoints: [] }, 'a range before any checkpoint is empty, with no cursor')
}

t.test('paging through a range of checkpoints, on the memory store', async (t) => {
  await pagesThroughARange(t, new MemoryStores())
})

t.test('paging through a range of checkpoints, on Redis', { skip: redisServerBinary() ? false : 'redis-server is not installed' }, async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  await pagesThroughARange(t, await testRedisStore(t, redis))
})

t.test('a page reads about a page of the stored checkpoints, not all of them', async (t) => {
  const store = new MemoryStores()
  await fill(store)
  let read = 0
  const all = store.audit.auditCheckpoints.bind(store.audit)
  store.audit.auditCheckpoints = async (start?: number, stop?: number) => {
    const some = await all(start, stop)
    read += some.length
    return some
  }
  const w = await buildWorld(t, { store })
  read = 0
  const res = await w.app.inject({ method: 'GET', url: `/v1/audit/checkpoints?from=${encodeURIComponent(at(200))}&to=${encodeURIComponent(at(210))}&limit=5`, headers: bearer(w.tokens.auditor) })
  t.equal(res.json().checkpoints.length, 5)
  t.ok(read < 100, `${read} of 301 stored checkpoints read for a page of 5`)
})
