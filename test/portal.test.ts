import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { build, captureLogs } from './helper.js'
import type { LogCapture } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'
import { today } from '../src/services/document-status.js'
import { PortalService } from '../src/services/portal.js'

/**
 * The national portal's two views of a citizen, as the portal meets them: the citizen's own
 * results with their status now, and who used them — hidden accesses left out until their date,
 * without a trace, whatever the page size.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const POLICE = '000.00.07.H41'
const PORTAL = '000.00.00.G22'
const NAMES: Record<string, string> = {
  [ISSUER]: 'Sở Tư pháp tỉnh Khánh Hòa',
  [REQUESTER]: 'UBND phường Quang Trung',
  [POLICE]: 'Công an tỉnh Khánh Hòa',
  [PORTAL]: 'Cổng Dịch vụ công quốc gia'
}
const PROCEDURE = '1.001193'
const POLICE_PROCEDURE = '2.001234'
const samples = [...generateDocuments(200, { seed: 11 })]

interface World {
  app: FastifyInstance
  logs: LogCapture
  adminToken: string
  issuerToken: string
  requesterToken: string
  policeToken: string
  portalToken: string
  citizen: string
  other: string
  /** document ids by type, for the citizen */
  ids: Record<string, string>
  docs: SampleDocument[]
}

async function world (t: Test, store: Stores): Promise<World> {
  const admin = await makeAgency(ADMIN_CODE)
  const logs = captureLogs()
  const app = await build(t, { store, env: adminEnv(admin), logs })
  const adminToken = await tokenFor(app, admin)
  const agencies = { issuer: await makeAgency(ISSUER), requester: await makeAgency(REQUESTER), police: await makeAgency(POLICE), portal: await makeAgency(PORTAL) }
  await register(app, adminToken, agencies.issuer, ['issuer'], { name: NAMES[ISSUER], issuableTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat', 'xac-nhan-thong-tin-cu-tru'] })
  await register(app, adminToken, agencies.requester, ['requester'], { name: NAMES[REQUESTER] })
  await register(app, adminToken, agencies.police, ['requester'], { name: NAMES[POLICE] })
  await register(app, adminToken, agencies.portal, ['portal'], { name: NAMES[PORTAL] })
  const birth = structuredClone(samples.find((d) => d.type === 'giay-khai-sinh') as SampleDocument)
  const citizen = birth.subject.id
  const land = structuredClone(samples.find((d) => d.type === 'giay-chung-nhan-quyen-su-dung-dat' && d.subject.kind === 'citizen') as SampleDocument)
  land.subject = birth.subject
  const residence = structuredClone(samples.find((d) => d.type === 'xac-nhan-thong-tin-cu-tru' && d.validUntil !== undefined && d.validUntil < today()) as SampleDocument)
  residence.subject = birth.subject
  const elsewhere = structuredClone(samples.find((d) => d.type === 'giay-khai-sinh' && d.subject.id !== citizen) as SampleDocument)
  const issuerToken = await tokenFor(app, agencies.issuer)
  const ids: Record<string, string> = {}
  for (const doc of [birth, land, residence, elsewhere]) {
    const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${issuerToken}` }, payload: doc })
    if (res.statusCode !== 201) throw new Error(res.body)
    if (doc !== elsewhere) ids[doc.type] = res.json().id
  }
  const agreements = [
    ['ward-quang-trung-2026', { requester: REQUESTER, documentTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat', 'xac-nhan-tinh-trang-hon-nhan'], procedureCodes: [PROCEDURE], fields: { 'giay-khai-sinh': ['fullName'], 'giay-chung-nhan-quyen-su-dung-dat': ['parcelNumber'], 'xac-nhan-tinh-trang-hon-nhan': ['*'] }, validFrom: '2026-01-01' }],
    ['police-khanh-hoa-2026', { requester: POLICE, documentTypes: ['giay-khai-sinh'], procedureCodes: [POLICE_PROCEDURE], fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth'] }, hiddenAllowed: true, validFrom: '2026-01-01' }]
  ] as const
  for (const [id, payload] of agreements) {
    const res = await app.inject({ method: 'PUT', url: `/v1/agreements/${id}`, headers: { authorization: `Bearer ${adminToken}` }, payload })
    if (res.statusCode !== 201) throw new Error(res.body)
  }
  return {
    app, logs, adminToken, issuerToken,
    requesterToken: await tokenFor(app, agencies.requester),
    policeToken: await tokenFor(app, agencies.police),
    portalToken: await tokenFor(app, agencies.portal),
    citizen, other: elsewhere.subject.id, ids, docs: [birth, land, residence]
  }
}

const dossier = (agency: string, n: number): string => `${agency}-261101-${String(n).padStart(4, '0')}`

async function reuse (w: World, token: string, body: Record<string, unknown>): Promise<{ status: number, queryId?: string }> {
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { authorization: `Bearer ${token}` }, payload: body })
  return { status: res.statusCode, queryId: res.statusCode === 200 ? res.json().queryId : undefined }
}

async function portal (w: World, path: string, payload: Record<string, unknown>, token = w.portalToken) {
  return await w.app.inject({ method: 'POST', url: `/v1/portal/${path}`, headers: { authorization: `Bearer ${token}` }, payload })
}

interface Item { time: string, agency: { code: string, name?: string }, procedureCode: string, dossierCode: string, reason?: string, mode: string, documents: Array<{ id: string, version: number, type?: string }>, queryId: string }

/**
 * The reuse queries about the citizen, oldest first: the ones the citizen sees and the ones it
 * must not (hidden until a later date, refused, found nothing, about someone else).
 */
async function history (w: World) {
  const subject = { kind: 'citizen', id: w.citizen }
  const birthAndLand = ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat']
  const tomorrow = today(new Date(Date.now() + 86_400_000))
  const police = (n: number, extra: Record<string, unknown>) => ({ subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: POLICE_PROCEDURE, dossierCode: dossier(POLICE, n) }, ...extra })
  const ward = (n: number, extra: Record<string, unknown> = {}) => ({ subject, documentTypes: birthAndLand, purpose: { procedureCode: PROCEDURE, dossierCode: dossier(REQUESTER, n) }, ...extra })
  const steps: Array<{ token: string, body: Record<string, unknown>, status: number, seen: boolean }> = [
    { token: w.policeToken, body: police(1, { hidden: true, hiddenUntil: '2099-12-31', reason: 'Điều tra vụ án số 01' }), status: 200, seen: false },
    { token: w.requesterToken, body: ward(1, { reason: 'Đăng ký thường trú' }), status: 200, seen: true },
    { token: w.policeToken, body: police(2, { hidden: true, hiddenUntil: tomorrow }), status: 200, seen: false },
    { token: w.policeToken, body: police(3, { hidden: true, hiddenUntil: '2026-01-01', reason: 'Xác minh nhân thân' }), status: 200, seen: true },
    { token: w.policeToken, body: police(4, { hidden: true, hiddenUntil: today() }), status: 200, seen: true },
    { token: w.requesterToken, body: ward(2, { mode: 'status' }), status: 200, seen: true },
    { token: w.requesterToken, body: ward(3, { documentTypes: ['xac-nhan-tinh-trang-hon-nhan'] }), status: 200, seen: false },
    { token: w.requesterToken, body: ward(4, { purpose: { procedureCode: '2.000001', dossierCode: dossier(REQUESTER, 4) } }), status: 403, seen: false },
    { token: w.requesterToken, body: ward(5, { subject: { kind: 'citizen', id: w.other }, documentTypes: ['giay-khai-sinh'] }), status: 200, seen: false },
    { token: w.policeToken, body: police(5, { hidden: true, hiddenUntil: '2099-12-31' }), status: 200, seen: false }
  ]
  const done = []
  for (const step of steps) {
    const res = await reuse(w, step.token, step.body)
    if (res.status !== step.status) throw new Error(`reuse query ${JSON.stringify(step.body.purpose)}: ${res.status}`)
    done.push({ ...step, queryId: res.queryId, dossierCode: (step.body.purpose as { dossierCode: string }).dossierCode })
  }
  return {
    seen: done.filter((s) => s.seen).reverse(),
    unseen: done.filter((s) => !s.seen)
  }
}

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('access history: who used the results, hidden accesses left out until their date', async (t) => {
      const w = await world(t, await makeStore(t))
      const { seen, unseen } = await history(w)
      const subject = { kind: 'citizen', id: w.citizen }
      const res = await portal(w, 'access-history', { subject })
      t.equal(res.statusCode, 200)
      const body = res.json() as { items: Item[], nextCursor?: string }
      t.same(body.items.map((i) => [i.dossierCode, i.agency.code, i.agency.name, i.reason ?? null, i.mode, i.procedureCode]), [
        [dossier(REQUESTER, 2), REQUESTER, NAMES[REQUESTER], null, 'status', PROCEDURE],
        [dossier(POLICE, 4), POLICE, NAMES[POLICE], null, 'full', POLICE_PROCEDURE],
        [dossier(POLICE, 3), POLICE, NAMES[POLICE], 'Xác minh nhân thân', 'full', POLICE_PROCEDURE],
        [dossier(REQUESTER, 1), REQUESTER, NAMES[REQUESTER], 'Đăng ký thường trú', 'full', PROCEDURE]
      ], 'newest first; a hidden access shows from its hidden-until date on, not before')
      t.same(body.items.map((i) => i.queryId), seen.map((s) => s.queryId), 'each item is the requester\'s own queryId')
      t.notOk(body.nextCursor, 'everything fits: no cursor')
      const first = body.items[3] as Item
      t.same(first.documents, [
        { id: w.ids['giay-khai-sinh'], version: 1, type: 'giay-khai-sinh' },
        { id: w.ids['giay-chung-nhan-quyen-su-dung-dat'], version: 1, type: 'giay-chung-nhan-quyen-su-dung-dat' }
      ], 'which versions of which results were released')
      t.ok(body.items.every((i, n) => n === 0 || i.time <= (body.items[n - 1] as Item).time))
      for (const hidden of unseen) {
        t.notOk(res.body.includes(hidden.dossierCode), `nothing of ${hidden.dossierCode} in the answer`)
        if (hidden.queryId) t.notOk(res.body.includes(hidden.queryId))
      }
      t.notOk(res.body.includes('Điều tra'), 'nor the reason of a hidden one')

      // on record before the answer; the subject as its keyed hash only
      const hash = w.app.documents.subjectHash({ kind: 'citizen', id: w.citizen })
      const recorded = (await w.app.audit.search({ action: 'portal.access_history', limit: 10 })).events
      t.equal(recorded.length, 1)
      t.equal(recorded[0]?.actor, PORTAL)
      t.equal(recorded[0]?.subject, hash)
      t.equal(recorded[0]?.outcome, 'granted')
      t.same(recorded[0]?.detail, { returned: 4 })
      t.notOk(w.logs.text().includes(w.citizen), 'the identifier is in no log line')
      t.notOk(JSON.stringify((await w.app.audit.search({ limit: 200 })).events).includes(w.citizen), 'nor in any audit event')

      // a period: from (inclusive) and to (exclusive)
      const third = body.items[2] as Item
      const since = (await portal(w, 'access-history', { subject, from: third.time })).json() as { items: Item[] }
      t.same(since.items.map((i) => i.dossierCode), [dossier(REQUESTER, 2), dossier(POLICE, 4), dossier(POLICE, 3)])
      const until = (await portal(w, 'access-history', { subject, to: third.time })).json() as { items: Item[] }
      t.same(until.items.map((i) => i.dossierCode), [dossier(REQUESTER, 1)], '`to` is exclusive')
      const before = await portal(w, 'access-history', { subject, to: '2026-01-01T00:00:00Z' })
      t.same(before.json(), { items: [] })
      t.equal((await w.app.audit.search({ action: 'portal.access_history', outcome: 'empty', limit: 10 })).events.length, 1, 'an empty history is audited too')
      const inverted = await portal(w, 'access-history', { subject, from: '2026-06-01T00:00:00Z', to: '2026-05-01T00:00:00Z' })
      t.equal(inverted.statusCode, 400)
      t.equal(inverted.json().code, 'invalid_time_range')

      // someone else's history holds only what was asked about them
      const other = (await portal(w, 'access-history', { subject: { kind: 'citizen', id: w.other } })).json() as { items: Item[] }
      t.same(other.items.map((i) => i.dossierCode), [dossier(REQUESTER, 5)])
    })

    t.test('access history pages: every visible access once, in order, whatever the page size; no cursor leads to nothing', async (t) => {
      const w = await world(t, await makeStore(t))
      const { seen } = await history(w)
      const subject = { kind: 'citizen', id: w.citizen }
      for (const limit of [1, 2, 3, 4, 5]) {
        const walked: string[] = []
        const sizes: number[] = []
        let cursor: string | undefined
        let pages = 0
        do {
          const res = await portal(w, 'access-history', { subject, limit, ...(cursor ? { cursor } : {}) })
          t.equal(res.statusCode, 200)
          const page = res.json() as { items: Item[], nextCursor?: string }
          walked.push(...page.items.map((i) => i.queryId))
          sizes.push(page.items.length)
          cursor = page.nextCursor
        } while (cursor && ++pages < 10)
        t.same(walked, seen.map((s) => s.queryId), `limit ${limit}: all four, once each, newest first`)
        const full = Math.floor(seen.length / limit)
        const expected = [...Array(full).fill(limit), ...(seen.length % limit ? [seen.length % limit] : [])]
        t.same(sizes, expected, `limit ${limit}: full pages, and no empty page at the end`)
      }

      // a cursor is for that citizen and that period only, and cannot be forged
      const page = (await portal(w, 'access-history', { subject, limit: 1 })).json() as { items: Item[], nextCursor: string }
      const resumeAt = (page.items[0] as Item).queryId
      t.notOk(Buffer.from(page.nextCursor, 'base64url').toString('latin1').includes(resumeAt), 'the cursor shows no event id')
      t.notOk(page.nextCursor.includes(Buffer.from(`{"id":"${resumeAt}"`).toString('base64url').slice(0, 30)), 'not even encoded')
      for (const [what, body] of [
        ['another citizen', { subject: { kind: 'citizen', id: w.other }, limit: 1, cursor: page.nextCursor }],
        ['another period', { subject, limit: 1, from: '2026-01-01T00:00:00Z', cursor: page.nextCursor }],
        ['a changed byte', { subject, limit: 1, cursor: page.nextCursor.slice(0, 20) + (page.nextCursor[20] === 'A' ? 'B' : 'A') + page.nextCursor.slice(21) }],
        ['garbage', { subject, limit: 1, cursor: 'not-a-cursor' }]
      ] as const) {
        const res = await portal(w, 'access-history', body)
        t.equal(res.statusCode, 400, what)
        t.equal(res.json().code, 'invalid_cursor', what)
      }
    })

    t.test('access history pages look the same whether or not hidden accesses lie between the visible ones', async (t) => {
      const w = await world(t, await makeStore(t))
      // two citizens with the same visible history; the first also looked at, hidden, many
      // times more than one page's reading budget once allowed, both between and after the visible accesses
      const asked = { kind: 'citizen', id: w.citizen }
      const clean = { kind: 'citizen', id: w.other }
      const ward = async (subject: typeof asked, n: number): Promise<void> => {
        const res = await reuse(w, w.requesterToken, { subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode: dossier(REQUESTER, n) } })
        if (res.status !== 200) throw new Error(`ward query ${n}: ${res.status}`)
      }
      const police = async (n: number): Promise<void> => {
        const res = await reuse(w, w.policeToken, { subject: asked, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: POLICE_PROCEDURE, dossierCode: dossier(POLICE, n) }, hidden: true, hiddenUntil: '2099-12-31' })
        if (res.status !== 200) throw new Error(`police query ${n}: ${res.status}`)
      }
      let hidden = 0
      for (const n of [1, 2, 3]) {
        await ward(asked, n)
        await ward(clean, n)
        for (let i = 0; i < (n === 1 ? 25 : 3); i++) await police(++hidden)
      }
      await ward(asked, 4)
      await ward(clean, 4)
      for (let i = 0; i < 12; i++) await police(++hidden)

      // what a page shows: its items (all but who they were about) and whether a cursor follows
      const walk = async (subject: typeof asked, limit: number, extra: Record<string, unknown> = {}) => {
        const pages: Array<{ items: unknown[], next: boolean }> = []
        let cursor: string | undefined
        do {
          const res = await portal(w, 'access-history', { subject, limit, ...extra, ...(cursor ? { cursor } : {}) })
          t.equal(res.statusCode, 200)
          const page = res.json() as { items: Item[], nextCursor?: string }
          pages.push({ items: page.items.map((i) => [i.agency.code, i.procedureCode, i.dossierCode, i.mode, i.documents.length]), next: page.nextCursor !== undefined })
          cursor = page.nextCursor
        } while (cursor && pages.length < 20)
        return pages
      }
      for (const limit of [1, 2, 3, 4, 5, 50]) {
        const seen = await walk(asked, limit)
        t.same(seen, await walk(clean, limit), `limit ${limit}: the same pages, items and cursors`)
        t.same(seen.flatMap((p) => p.items.map((i) => (i as string[])[2])), [4, 3, 2, 1].map((n) => dossier(REQUESTER, n)), `limit ${limit}: the four visible accesses, once each`)
        t.notOk(seen.some((p) => p.items.length === 0), `limit ${limit}: no empty page`)
      }
      const from = (await w.app.audit.search({ action: 'reuse.queried', limit: 200 })).events.at(-1)?.time as string
      t.same(await walk(asked, 1, { from }), await walk(clean, 1, { from }), 'over a period too')
    })

    t.test('a hidden access shows from its hidden-until date on, in its place in time', async (t) => {
      const w = await world(t, await makeStore(t))
      const subject = { kind: 'citizen' as const, id: w.citizen }
      const purpose = (agency: string, n: number) => ({ procedureCode: agency === POLICE ? POLICE_PROCEDURE : PROCEDURE, dossierCode: dossier(agency, n) })
      const inAWeek = today(new Date(Date.now() + 7 * 86_400_000))
      t.equal((await reuse(w, w.requesterToken, { subject, documentTypes: ['giay-khai-sinh'], purpose: purpose(REQUESTER, 1) })).status, 200)
      t.equal((await reuse(w, w.policeToken, { subject, documentTypes: ['giay-khai-sinh'], purpose: purpose(POLICE, 1), hidden: true, hiddenUntil: inAWeek })).status, 200)
      t.equal((await reuse(w, w.policeToken, { subject, documentTypes: ['giay-khai-sinh'], purpose: purpose(POLICE, 2), hidden: true, hiddenUntil: '2099-12-31' })).status, 200)
      t.equal((await reuse(w, w.requesterToken, { subject, documentTypes: ['giay-khai-sinh'], purpose: purpose(REQUESTER, 2) })).status, 200)
      const service = new PortalService({ agencies: w.app.stores.agencies, documents: w.app.stores.documents, index: w.app.documents, audit: w.app.audit, secret: 'test-secret' })
      const hash = w.app.documents.subjectHash(subject)
      const walk = async (now: Date, limit: number): Promise<string[][]> => {
        const pages: string[][] = []
        let cursor: string | undefined
        do {
          const page = await service.accessHistory(hash, { limit, ...(cursor ? { cursor } : {}) }, now)
          pages.push(page.items.map((i) => i.dossierCode as string))
          cursor = page.nextCursor
        } while (cursor && pages.length < 10)
        return pages
      }
      t.same(await walk(new Date(), 1), [[dossier(REQUESTER, 2)], [dossier(REQUESTER, 1)]], 'today: not yet')
      const later = new Date(Date.now() + 8 * 86_400_000)
      t.same(await walk(later, 1), [[dossier(REQUESTER, 2)], [dossier(POLICE, 1)], [dossier(REQUESTER, 1)]], 'in a week: between the two it came between')
      t.same(await walk(later, 2), [[dossier(REQUESTER, 2), dossier(POLICE, 1)], [dossier(REQUESTER, 1)]])
    })

    t.test('citizen documents: every own result, latest version, status now, newest issued first', async (t) => {
      const w = await world(t, await makeStore(t))
      const as = { authorization: `Bearer ${w.issuerToken}` }
      const birthId = w.ids['giay-khai-sinh'] as string
      const landId = w.ids['giay-chung-nhan-quyen-su-dung-dat'] as string
      const land = w.docs[1] as SampleDocument
      const pdf = Buffer.from('%PDF-1.7 giấy chứng nhận quyền sử dụng đất')
      t.equal((await w.app.inject({ method: 'PUT', url: `/v1/documents/${landId}/file`, headers: { ...as, 'content-type': 'application/pdf' }, payload: pdf })).statusCode, 200)
      t.equal((await w.app.inject({ method: 'POST', url: `/v1/documents/${birthId}/revoke`, headers: as, payload: { reason: 'Cấp sai thông tin' } })).statusCode, 200)
      const amendDossier = dossier(ISSUER, 9)
      const amended = await w.app.inject({ method: 'POST', url: `/v1/documents/${landId}/amend`, headers: as, payload: { procedureCode: '1.004227', dossierCode: amendDossier, data: { ...land.data, areaM2: 123.4 }, reason: 'Đính chính diện tích thửa đất' } })
      t.equal(amended.statusCode, 201)

      const res = await portal(w, 'citizen-documents', { subject: { kind: 'citizen', id: w.citizen } })
      t.equal(res.statusCode, 200)
      const documents = res.json().documents as Array<Record<string, unknown>>
      const newestFirst = [...w.docs].sort((a, b) => a.issuedAt < b.issuedAt ? 1 : -1).map((d) => d.type)
      t.same(documents.map((d) => d.type), newestFirst, 'the citizen\'s three results, not another citizen\'s, newest issued first')
      const byType = Object.fromEntries(documents.map((d) => [d.type, d]))
      t.match(byType['giay-khai-sinh'], { id: birthId, version: 1, latestVersion: 1, status: 'revoked', revocationReason: 'Cấp sai thông tin', issuer: ISSUER, issuerName: NAMES[ISSUER] })
      t.ok(Date.parse(String(byType['giay-khai-sinh']?.revokedAt)) <= Date.now(), 'when it was revoked')
      t.match(byType['giay-chung-nhan-quyen-su-dung-dat'], { id: landId, version: 2, latestVersion: 2, status: 'valid', dossierCode: amendDossier, procedureCode: '1.004227', amendmentReason: 'Đính chính diện tích thửa đất', data: { areaM2: 123.4 } })
      t.match(byType['giay-chung-nhan-quyen-su-dung-dat']?.file, { mediaType: 'application/pdf', size: pdf.length, carriedFrom: 1 }, 'the file of version 1, carried forward by the amendment')
      t.match(byType['xac-nhan-thong-tin-cu-tru'], { status: 'expired', validUntil: (w.docs[2] as SampleDocument).validUntil })
      t.same(byType['giay-khai-sinh']?.data, (w.docs[0] as SampleDocument).data, 'the citizen sees all of its own data')
      t.ok(documents.every((d) => d.subject === undefined), 'the identifier is not echoed in the items')
      t.same(documents.filter((d) => d.revokedAt !== undefined || d.revocationReason !== undefined).map((d) => d.id), [birthId], 'revocation only on the revoked one')
      t.notOk(res.body.includes(w.citizen))

      const onlyBirth = (await portal(w, 'citizen-documents', { subject: { kind: 'citizen', id: w.citizen }, documentTypes: ['giay-khai-sinh'] })).json()
      t.same(onlyBirth.documents.map((d: { id: string }) => d.id), [birthId])

      // a new paper: the amendment replaces the file, and the scan uploaded to the new version shows on it
      const replaced = await w.app.inject({ method: 'POST', url: `/v1/documents/${landId}/amend`, headers: as, payload: { procedureCode: '1.004227', dossierCode: amendDossier, data: { ...land.data, areaM2: 123.5 }, reason: 'Cấp lại giấy chứng nhận', replacesFile: true } })
      t.equal(replaced.statusCode, 201)
      t.notOk(replaced.json().file)
      const scan = Buffer.from('%PDF-1.7 giấy chứng nhận quyền sử dụng đất cấp lại')
      const freshLand = await w.app.inject({ method: 'PUT', url: `/v1/documents/${landId}/file`, headers: { ...as, 'content-type': 'application/pdf' }, payload: scan })
      t.equal(freshLand.statusCode, 200)
      const withFile = (await portal(w, 'citizen-documents', { subject: { kind: 'citizen', id: w.citizen }, documentTypes: ['giay-chung-nhan-quyen-su-dung-dat'] })).json()
      t.equal(withFile.documents[0].version, 3)
      t.same(withFile.documents[0].file, { mediaType: 'application/pdf', size: scan.length, sha256: freshLand.json().file.sha256 })

      const nobody = await portal(w, 'citizen-documents', { subject: { kind: 'organization', id: '0312345678' } })
      t.same(nobody.json(), { documents: [] })

      const hash = w.app.documents.subjectHash({ kind: 'citizen', id: w.citizen })
      const recorded = (await w.app.audit.search({ action: 'portal.citizen_documents', limit: 10 })).events.reverse()
      t.same(recorded.map((e) => [e.actor, e.outcome, e.detail?.returned]), [[PORTAL, 'granted', 3], [PORTAL, 'granted', 1], [PORTAL, 'granted', 1], [PORTAL, 'empty', 0]])
      t.equal(recorded[0]?.subject, hash)
      t.same(recorded[0]?.documents?.map((d) => d.id).sort(), [birthId, landId, w.ids['xac-nhan-thong-tin-cu-tru']].sort(), 'which results went to the portal')
      t.notOk(w.logs.text().includes(w.citizen), 'the identifier is in no log line')
    })

    t.test('refused: another scope, unknown fields, bad values, a bad identifier', async (t) => {
      const w = await world(t, await makeStore(t))
      const subject = { kind: 'citizen', id: w.citizen }
      for (const path of ['citizen-documents', 'access-history']) {
        for (const token of [w.requesterToken, w.issuerToken]) {
          const res = await portal(w, path, { subject }, token)
          t.equal(res.statusCode, 403, `${path}: only the portal`)
          t.equal(res.json().code, 'insufficient_scope')
        }
        t.equal((await w.app.inject({ method: 'POST', url: `/v1/portal/${path}`, payload: { subject } })).statusCode, 401, `${path}: no token`)
        const unknown = await portal(w, path, { subject, extra: true })
        t.equal(unknown.statusCode, 400, `${path}: unknown field`)
        t.equal(unknown.json().errors?.[0]?.pointer, '/extra')
        t.equal((await portal(w, path, { subject: { ...subject, name: 'Nguyễn Văn A' } })).statusCode, 400, `${path}: unknown field in the subject`)
        t.equal((await portal(w, path, {})).statusCode, 400, `${path}: no subject`)
        for (const id of ['12', '999199012345', '00109901234X']) {
          const bad = await portal(w, path, { subject: { kind: 'citizen', id } })
          t.equal(bad.statusCode, 422, `${path}: ${id}`)
          t.equal(bad.json().code, 'invalid_subject')
          if (id.length === 12) t.notOk(bad.body.includes(id), 'the identifier is not echoed')
        }
        t.equal((await portal(w, path, { subject: { kind: 'organization', id: '031234567' } })).statusCode, 422, `${path}: a short tax code`)
      }
      for (const body of [{ limit: 0 }, { limit: 201 }, { limit: 'ten' }, { from: 'yesterday' }, { cursor: 'x'.repeat(513) }]) {
        t.equal((await portal(w, 'access-history', { subject, ...body })).statusCode, 400, JSON.stringify(body))
      }
      for (const documentTypes of [[], ['Giấy khai sinh'], ['giay-khai-sinh', 'giay-khai-sinh']]) {
        t.equal((await portal(w, 'citizen-documents', { subject, documentTypes })).statusCode, 400, JSON.stringify(documentTypes))
      }
      const portalEvents = (await w.app.audit.search({ limit: 500 })).events.filter((e) => e.action.startsWith('portal.'))
      t.same(portalEvents, [], 'a refused call releases nothing')
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))
