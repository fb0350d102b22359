import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStores, RedisStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { today } from '../src/services/document-status.js'
import { build, captureLogs } from './helper.js'
import type { LogCapture } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'

/**
 * Reuse statistics as a province reads them: real queries, refusals and downloads, then the
 * figures per procedure, per agency, per document type and in total — with no personal data.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const OTHER_REQUESTER = '000.00.03.H41'
const AUDITOR = '000.00.05.H41'
const PROCEDURE = '1.001193'
const PROCEDURE_2 = '2.000889'
const DOSSIER = '000.20.41.H41-260301-0001'
const NOBODY = '079199000111'
const BIRTH = 'giay-khai-sinh'
const LAND = 'giay-chung-nhan-quyen-su-dung-dat'
const CRIME = 'phieu-ly-lich-tu-phap'
const samples = [...generateDocuments(200, { seed: 11 })]

interface World {
  app: FastifyInstance
  requesterToken: string
  otherToken: string
  auditorToken: string
  citizen: string
}

async function world (t: Test, store: Stores, logs?: LogCapture): Promise<World> {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: adminEnv(admin), ...(logs ? { logs } : {}) })
  const adminToken = await tokenFor(app, admin)
  const [issuer, requester, other, auditor] = await Promise.all([ISSUER, REQUESTER, OTHER_REQUESTER, AUDITOR].map(async (code) => await makeAgency(code)))
  await register(app, adminToken, issuer!, ['issuer'], { issuableTypes: [BIRTH, LAND] })
  await register(app, adminToken, requester!, ['requester'])
  await register(app, adminToken, other!, ['requester'])
  await register(app, adminToken, auditor!, ['auditor'])
  const issuerToken = await tokenFor(app, issuer!)
  const birth = structuredClone(samples.find((d) => d.type === BIRTH) as SampleDocument)
  const land = structuredClone(samples.find((d) => d.type === LAND && d.subject.kind === 'citizen') as SampleDocument)
  land.subject = birth.subject
  let birthId = ''
  for (const doc of [birth, land]) {
    const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${issuerToken}` }, payload: doc })
    if (res.statusCode !== 201) throw new Error(res.body)
    if (doc === birth) birthId = res.json().id
  }
  const upload = await app.inject({ method: 'PUT', url: `/v1/documents/${birthId}/file`, headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'application/pdf' }, payload: Buffer.from('%PDF-1.7 giấy khai sinh') })
  if (upload.statusCode !== 200) throw new Error(upload.body)
  const agreement = await app.inject({
    method: 'PUT', url: '/v1/agreements/ward-quang-trung-2026', headers: { authorization: `Bearer ${adminToken}` },
    payload: {
      requester: REQUESTER,
      documentTypes: [BIRTH, LAND, CRIME],
      procedureCodes: [PROCEDURE, PROCEDURE_2],
      fields: { [BIRTH]: ['fullName'], [LAND]: ['parcelNumber'], [CRIME]: ['*'] },
      fileDownload: true,
      validFrom: '2026-01-01'
    }
  })
  if (agreement.statusCode !== 201) throw new Error(agreement.body)
  return { app, requesterToken: await tokenFor(app, requester!), otherToken: await tokenFor(app, other!), auditorToken: await tokenFor(app, auditor!), citizen: birth.subject.id }
}

const query = async (w: World, body: Record<string, unknown>, token = w.requesterToken) =>
  await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { authorization: `Bearer ${token}` }, payload: body })
const ask = (w: World, types: string[], procedureCode = PROCEDURE, id = w.citizen) =>
  ({ subject: { kind: 'citizen', id }, documentTypes: types, purpose: { procedureCode, dossierCode: DOSSIER } })
const stats = async (w: World, search: string, token = w.auditorToken) =>
  await w.app.inject({ method: 'GET', url: `/v1/stats/reuse${search}`, headers: { authorization: `Bearer ${token}` } })

const shiftDay = (day: string, days: number): string => new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10)

/** What a ward office does in a morning: three answered queries, two refused, one file downloaded. */
async function morning (t: Test, w: World): Promise<void> {
  const full = await query(w, ask(w, [BIRTH, LAND]))
  t.equal(full.statusCode, 200)
  t.same(full.json().results.map((r: { found: boolean }) => r.found), [true, true])
  const link = full.json().results[0].documents[0].download as string
  const nothing = await query(w, ask(w, [BIRTH], PROCEDURE_2, NOBODY))
  t.same(nothing.json().results.map((r: { found: boolean }) => r.found), [false])
  const status = await query(w, { ...ask(w, [LAND]), mode: 'status' })
  t.same(status.json().results.map((r: { found: boolean }) => r.found), [true])
  const noAgreement = await query(w, ask(w, [BIRTH]), w.otherToken)
  t.equal(noAgreement.json().code, 'no_agreement')
  const noConsent = await query(w, ask(w, [CRIME], PROCEDURE_2))
  t.equal(noConsent.json().code, 'consent_required')
  const file = await w.app.inject({ method: 'GET', url: link, headers: { authorization: `Bearer ${w.requesterToken}` } })
  t.equal(file.statusCode, 200)
  // a refused download is not a download
  t.equal((await w.app.inject({ method: 'GET', url: link, headers: { authorization: `Bearer ${w.requesterToken}` } })).statusCode, 404)
}

const figures = (queries: number, found: number, denials: number, downloads: number) =>
  ({ queries, found, denials, downloads, reuseRate: queries ? found / queries : null })

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('every figure, per procedure, agency and document type, counted as it happened', async (t) => {
      const store = await makeStore(t)
      const w = await world(t, store)
      const empty = await stats(w, '')
      t.equal(empty.statusCode, 200)
      t.same(empty.json().total, figures(0, 0, 0, 0), 'nothing yet: reuseRate null')
      t.same(empty.json().groups, [])
      t.equal(empty.json().to, today(), 'up to today by default')
      t.equal(empty.json().from, shiftDay(today(), -29), 'the last 30 days')
      t.equal(empty.json().groupBy, 'procedure')

      await morning(t, w)

      const total = figures(3, 2, 2, 1)
      const byProcedure = (await stats(w, '?groupBy=procedure')).json()
      t.same(byProcedure.total, total)
      t.equal(byProcedure.total.reuseRate, 2 / 3, 'two of three answered queries found a valid result')
      t.same(byProcedure.groups, [
        { key: PROCEDURE, ...figures(2, 2, 1, 1) },
        { key: PROCEDURE_2, ...figures(1, 0, 1, 0) }
      ])

      const byAgency = (await stats(w, '?groupBy=agency')).json()
      t.same(byAgency.total, total)
      t.same(byAgency.groups, [
        { key: REQUESTER, name: `Agency ${REQUESTER}`, ...figures(3, 2, 1, 1) },
        { key: OTHER_REQUESTER, name: `Agency ${OTHER_REQUESTER}`, ...figures(0, 0, 1, 0) }
      ])
      t.equal(byAgency.groups[1].reuseRate, null, 'an agency refused every time has no rate')

      const byType = (await stats(w, `?groupBy=documentType&from=${shiftDay(today(), -1)}&to=${today()}`)).json()
      t.same(byType.total, total)
      t.same(byType.groups, [
        { key: LAND, ...figures(2, 2, 0, 0) },
        { key: BIRTH, ...figures(2, 1, 1, 1) },
        { key: CRIME, ...figures(0, 0, 1, 0) }
      ], 'most queries first, then by code')

      const before = (await stats(w, `?from=${shiftDay(today(), -400)}&to=${shiftDay(today(), -1)}&groupBy=agency`)).json()
      t.same(before.total, figures(0, 0, 0, 0), 'a period without today has none of today\'s figures')
      t.same(before.groups, [])
      const later = (await stats(w, `?from=${shiftDay(today(), -3)}&to=${shiftDay(today(), 3)}`)).json()
      t.same(later.total, total, 'a period around today has them all')

      const read = await w.app.audit.search({ action: 'stats.read', limit: 10 })
      t.equal(read.events.length, 6, 'each reading is on record')
      t.equal(read.events[0]?.actor, AUDITOR)

      // no personal data in any answer, nor in the store's keys and fields
      for (const groupBy of ['procedure', 'agency', 'documentType']) {
        const body = (await stats(w, `?groupBy=${groupBy}`)).body
        t.notOk(body.includes(w.citizen) || body.includes(NOBODY) || body.includes(DOSSIER), `no identifier or dossier (${groupBy})`)
      }
      if (store instanceof RedisStores) {
        const keys = await store.client.keys(`${store.key('x').split('{')[0] as string}*`)
        t.ok(keys.some((k) => k.includes('{stats}')), 'the counters are in Redis')
        t.notOk(keys.some((k) => k.includes(w.citizen) || k.includes(NOBODY)), 'no personal identifier in any Redis key')
        for (const key of keys.filter((k) => k.includes('{stats}'))) {
          const fields = Object.keys(await store.client.hgetall(key))
          t.notOk(fields.some((f) => f.includes(w.citizen) || f.includes(NOBODY) || f.includes(DOSSIER)), 'codes only in the counters')
        }
      }
    })

    t.test('periods and parameters checked; auditors only', async (t) => {
      const w = await world(t, await makeStore(t))
      const inverted = await stats(w, '?from=2026-03-02&to=2026-03-01')
      t.equal(inverted.statusCode, 400)
      t.equal(inverted.json().code, 'invalid_date_range')
      t.equal(inverted.headers['content-type'], 'application/problem+json; charset=utf-8')
      const tooLong = await stats(w, '?from=2024-01-01&to=2026-01-01')
      t.equal(tooLong.statusCode, 400)
      t.equal(tooLong.json().code, 'date_range_too_long')
      const twoYears = await stats(w, '?from=2024-01-01&to=2025-12-31')
      t.equal(twoYears.statusCode, 200, '731 days, a leap year included, are answered')
      t.equal((await stats(w, `?from=${shiftDay(today(), 1)}`)).json().code, 'invalid_date_range', 'from after today, to defaulting to today')
      t.same((await stats(w, '?to=2026-03-31')).json().from, '2026-03-02', 'from defaults to 30 days before to')
      for (const search of ['?from=2026-02-30', '?from=26-03-01', '?to=2026-03-01T00:00:00Z', '?groupBy=dossier', '?groupBy=procedure&subject=001099012345', '?from=2026-03-01&from=2026-03-02']) {
        const res = await stats(w, search)
        t.equal(res.statusCode, 400, search)
        t.equal(res.json().code, 'validation_failed', search)
      }
      t.equal((await stats(w, '', w.requesterToken)).statusCode, 403, 'a requester does not read statistics')
      t.equal((await w.app.inject({ method: 'GET', url: '/v1/stats/reuse' })).statusCode, 401)
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))

t.test('a counter that cannot be written never fails the query, and logs no personal data', async (t) => {
  const countless = new MemoryStores()
  countless.reuseRecords.addReuseCounts = async (): Promise<void> => { throw new Error('counters unavailable') }
  const logs = captureLogs()
  const w = await world(t, countless, logs)
  const found = await query(w, ask(w, [BIRTH, LAND]))
  t.equal(found.statusCode, 200)
  t.ok(found.headers['reuse-receipt'])
  const link = found.json().results[0].documents[0].download as string
  t.equal((await w.app.inject({ method: 'GET', url: link, headers: { authorization: `Bearer ${w.requesterToken}` } })).statusCode, 200, 'the file still downloads')
  t.equal((await query(w, ask(w, [BIRTH]), w.otherToken)).json().code, 'no_agreement', 'a refusal is still the refusal')
  const warnings = logs.lines.filter((l) => l.msg === 'reuse statistics not counted')
  t.equal(warnings.length, 3, 'each lost count is a warning')
  t.ok(warnings.every((l) => l.level === 40 && typeof l.requestId === 'string'))
  t.notOk(logs.text().includes(w.citizen), 'no identifier in any log line')
})
