import t from 'tap'
import type { Test } from 'tap'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { counterField } from '../src/services/stats.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { CODES, PROCEDURE, bearer, buildWorld } from './lib/world.js'

/**
 * The reuse figures as a series (the console's per-day and per-month charts): each day or month
 * of the period, every step present, adding up to the period's total, per group too.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const OTHER = '2.000889'
/** three days across a month's end, and one day left out of the period */
const COUNTS: Record<string, Array<[string, number, number]>> = {
  '2026-01-30': [[PROCEDURE, 4, 1], [OTHER, 2, 2]],
  '2026-01-31': [[PROCEDURE, 3, 3]],
  '2026-02-02': [[OTHER, 5, 1]],
  '2026-02-04': [[PROCEDURE, 9, 9]]
}

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    const store = await makeStore(t)
    const w = await buildWorld(t, { store })
    for (const [day, rows] of Object.entries(COUNTS)) {
      for (const [procedure, queries, found] of rows) {
        await store.reuseRecords.addReuseCounts(day, {
          [counterField('queries')]: queries,
          [counterField('found')]: found,
          [counterField('queries', 'procedure', procedure)]: queries,
          [counterField('found', 'procedure', procedure)]: found,
          [counterField('queries', 'agency', CODES.requester)]: queries,
          [counterField('found', 'agency', CODES.requester)]: found
        })
      }
    }
    const stats = async (query: string) => await w.app.inject({ method: 'GET', url: `/v1/stats/reuse?${query}`, headers: bearer(w.tokens.auditor) })
    const figures = (queries: number, found: number) => ({ queries, found, denials: 0, downloads: 0, reuseRate: queries > 0 ? found / queries : null })

    t.test('per day: every day of the period, in order, zeros included', async (t) => {
      const res = await stats('from=2026-01-30&to=2026-02-02&groupBy=procedure&interval=day')
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.equal(body.interval, 'day')
      t.same(body.total, figures(14, 7))
      t.same(body.series.map((s: any) => [s.period, s.total]), [
        ['2026-01-30', figures(6, 3)], ['2026-01-31', figures(3, 3)], ['2026-02-01', figures(0, 0)], ['2026-02-02', figures(5, 1)]
      ])
      t.same(body.series[0].groups, [{ key: PROCEDURE, ...figures(4, 1) }, { key: OTHER, ...figures(2, 2) }], 'per group each day too')
      t.same(body.groups, [{ key: PROCEDURE, ...figures(7, 4) }, { key: OTHER, ...figures(7, 3) }].sort((a, b) => b.queries - a.queries || a.key.localeCompare(b.key)))
    })

    t.test('per month: a month cut by the period counts its days inside it', async (t) => {
      const body = (await stats('from=2026-01-30&to=2026-02-02&groupBy=agency&interval=month')).json()
      t.same(body.series.map((s: any) => [s.period, s.total]), [['2026-01', figures(9, 6)], ['2026-02', figures(5, 1)]])
      t.same(body.series[0].groups, [{ key: CODES.requester, name: `Agency ${CODES.requester}`, ...figures(9, 6) }], 'agencies by name')
      const plain = (await stats('from=2026-01-30&to=2026-02-02&groupBy=agency')).json()
      t.same({ total: plain.total, groups: plain.groups }, { total: body.total, groups: body.groups }, 'the same totals as without a series')
      t.notOk('series' in plain || 'interval' in plain, 'no series unless asked')
    })

    t.test('a bad interval is refused; the read is on record with its interval', async (t) => {
      const bad = await stats('groupBy=procedure&interval=week')
      t.same([bad.statusCode, bad.json().code], [400, 'validation_failed'])
      const search = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { action: 'stats.read', limit: 5 } })
      const reads = search.json().events.map((e: any) => e.detail)
      t.match(reads[0], { groupBy: 'agency', from: '2026-01-30', to: '2026-02-02' })
      t.notOk('interval' in reads[0], 'the plain read, newest')
      t.match(reads[1], { groupBy: 'agency', interval: 'month' }, 'the series read before it')
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))
