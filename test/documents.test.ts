import { createHash } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { SAMPLE_TYPES, generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'

/**
 * The issuer side of the index, as an issuing agency's system meets it: index, read, amend,
 * revoke, upload the file, import in bulk — and every bad input refused with nothing written.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const ISSUER = '000.00.12.H41'
const OTHER_ISSUER = '000.00.15.H41'
const samples = [...generateDocuments(60, { seed: 7 })]
const sample = (type: string, n = 0): SampleDocument => structuredClone(samples.filter((d) => d.type === type)[n] as SampleDocument)

interface World { app: FastifyInstance, token: string, otherToken: string, adminToken: string }

async function world (t: Test, store: Stores): Promise<World> {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: { ...adminEnv(admin), FILE_SIZE_LIMIT_BYTES: '65536', BATCH_MAX_LINES: '50' } })
  const adminToken = await tokenFor(app, admin)
  const issuer = await makeAgency(ISSUER)
  const other = await makeAgency(OTHER_ISSUER)
  // the samples below are of every type
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: SAMPLE_TYPES })
  await register(app, adminToken, other, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  return { app, token: await tokenFor(app, issuer), otherToken: await tokenFor(app, other), adminToken }
}

const as = (token: string) => ({ authorization: `Bearer ${token}` })
const post = async (w: World, body: unknown, token = w.token) => await w.app.inject({ method: 'POST', url: '/v1/documents', headers: as(token), payload: body as object })

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('the catalogue: the shipped types with their schemas; an admin changes one without invalidating old documents', async (t) => {
      const w = await world(t, await makeStore(t))
      const list = await w.app.inject({ method: 'GET', url: '/v1/document-types', headers: as(w.token) })
      t.equal(list.statusCode, 200)
      const codes = list.json().documentTypes.map((d: { code: string }) => d.code)
      for (const code of ['giay-khai-sinh', 'xac-nhan-tinh-trang-hon-nhan', 'phieu-ly-lich-tu-phap', 'giay-chung-nhan-quyen-su-dung-dat', 'giay-chung-nhan-dang-ky-doanh-nghiep', 'giay-phep-lai-xe', 'xac-nhan-thong-tin-cu-tru']) {
        t.ok(codes.includes(code), code)
      }
      const one = (await w.app.inject({ method: 'GET', url: '/v1/document-types/phieu-ly-lich-tu-phap', headers: as(w.token) })).json()
      t.equal(one.consentRequired, true)
      t.equal(one.schema.type, 'object')

      const doc = sample('giay-khai-sinh')
      const created = await post(w, doc)
      t.equal(created.statusCode, 201)
      const type = (await w.app.inject({ method: 'GET', url: '/v1/document-types/giay-khai-sinh', headers: as(w.token) })).json()
      const { code: _c, schemaVersion: _v, ...definition } = type
      const stricter = { ...definition, schema: { ...type.schema, required: [...type.schema.required, 'hometown', 'registrationBookNumber'].filter((v, i, a) => a.indexOf(v) === i) } }
      t.equal((await w.app.inject({ method: 'PUT', url: '/v1/document-types/giay-khai-sinh', headers: as(w.token), payload: stricter })).statusCode, 403, 'issuers do not change the catalogue')
      const put = await w.app.inject({ method: 'PUT', url: '/v1/document-types/giay-khai-sinh', headers: as(w.adminToken), payload: stricter })
      t.equal(put.statusCode, 200)
      t.equal(put.json().schemaVersion, type.schemaVersion + 1)
      const read = await w.app.inject({ method: 'GET', url: `/v1/documents/${created.json().id}`, headers: as(w.token) })
      t.equal(read.json().typeSchemaVersion, type.schemaVersion, 'the old document keeps its schema version')
      t.equal(read.json().status, 'valid')
      const bad = await w.app.inject({ method: 'PUT', url: '/v1/document-types/bad-type', headers: as(w.adminToken), payload: { ...definition, schema: { type: 'object', properties: { x: { type: 'no-such-type' } } } } })
      t.equal(bad.json().code, 'invalid_schema')
    })

    t.test('index one result: 201, the same again 200 with the same document, other content 409 pointing to amend', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = sample('xac-nhan-tinh-trang-hon-nhan')
      const first = await post(w, doc)
      t.equal(first.statusCode, 201)
      const body = first.json()
      t.match(body.id, /^[0-9A-HJKMNP-TV-Z]{26}$/)
      t.equal(body.version, 1)
      t.equal(body.issuer, ISSUER)
      t.equal(body.status, doc.validUntil && doc.validUntil < new Date().toISOString().slice(0, 10) ? 'expired' : 'valid')
      t.ok(body.validUntil, 'a marital-status confirmation gets the type\'s default validity')
      const again = await post(w, doc)
      t.equal(again.statusCode, 200)
      t.equal(again.json().id, body.id)
      const changed = await post(w, { ...doc, data: { ...doc.data, purpose: 'Kết hôn với người nước ngoài' } })
      t.equal(changed.statusCode, 409)
      t.equal(changed.json().code, 'document_exists')
      t.equal(changed.json().documentId, body.id)
      t.equal(changed.json().amend, `/v1/documents/${body.id}/amend`)
    })

    t.test('amend makes a new version and supersedes the old; revoke marks it; every version stays readable', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = { ...sample('giay-chung-nhan-quyen-su-dung-dat'), validUntil: undefined }
      const id = (await post(w, doc)).json().id
      const amended = await w.app.inject({
        method: 'POST', url: `/v1/documents/${id}/amend`, headers: as(w.token),
        payload: { procedureCode: '1.004227', dossierCode: '000.00.15.H41-260301-0001', data: { ...doc.data, areaM2: 123.4 }, reason: 'Đính chính diện tích thửa đất' }
      })
      t.equal(amended.statusCode, 201)
      t.equal(amended.json().version, 2)
      t.equal(amended.json().data.areaM2, 123.4)
      const v1 = (await w.app.inject({ method: 'GET', url: `/v1/documents/${id}?version=1`, headers: as(w.token) })).json()
      t.equal(v1.status, 'superseded')
      t.equal(v1.latestVersion, 2)
      t.equal((await w.app.inject({ method: 'GET', url: `/v1/documents/${id}?version=3`, headers: as(w.token) })).statusCode, 404)

      const revoked = await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/revoke`, headers: as(w.token), payload: { reason: 'Thu hồi theo Quyết định số 12/QĐ-UBND' } })
      t.equal(revoked.statusCode, 200)
      t.equal(revoked.json().status, 'revoked')
      t.equal(revoked.json().revocationReason, 'Thu hồi theo Quyết định số 12/QĐ-UBND')
      t.ok(revoked.json().revokedAt)
      t.equal((await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/revoke`, headers: as(w.token), payload: { reason: 'again' } })).statusCode, 409)
      t.equal((await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/amend`, headers: as(w.token), payload: { procedureCode: '1.004227', dossierCode: '000.00.15.H41-260301-0002', data: doc.data, reason: 'x' } })).json().code, 'document_revoked')
      const events = await w.app.audit.search({ documentId: id, limit: 10 })
      t.same(events.events.map((e) => e.action), ['document.revoked', 'document.amended', 'document.indexed'], 'every write is on record')
    })

    t.test('another issuer\'s document is not found, never forbidden', async (t) => {
      const w = await world(t, await makeStore(t))
      const id = (await post(w, sample('giay-khai-sinh', 1))).json().id
      for (const [method, url, payload] of [
        ['GET', `/v1/documents/${id}`, undefined],
        ['POST', `/v1/documents/${id}/amend`, { procedureCode: '1.001193', dossierCode: '000.00.41.H41-260101-0001', data: {}, reason: 'x' }],
        ['POST', `/v1/documents/${id}/revoke`, { reason: 'x' }]
      ] as const) {
        const res = await w.app.inject({ method, url, headers: as(w.otherToken), ...(payload ? { payload } : {}) })
        t.equal(res.statusCode, 404, `${method} ${url}`)
        t.equal(res.json().code, 'document_not_found')
      }
      const file = await w.app.inject({ method: 'PUT', url: `/v1/documents/${id}/file`, headers: { ...as(w.otherToken), 'content-type': 'application/pdf' }, payload: Buffer.from('%PDF-1.7') })
      t.equal(file.statusCode, 404)
      t.equal((await w.app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: as(w.token) })).json().status, 'valid', 'untouched')
    })

    t.test('the digitized file: streamed, checked against its digest, stored once, limited in size', async (t) => {
      const w = await world(t, await makeStore(t))
      const id = (await post(w, sample('giay-khai-sinh', 2))).json().id
      const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(40_000, 7)])
      const digest = createHash('sha256').update(pdf).digest()
      const wrong = await w.app.inject({ method: 'PUT', url: `/v1/documents/${id}/file`, headers: { ...as(w.token), 'content-type': 'application/pdf', 'repr-digest': `sha-256=:${createHash('sha256').update('other').digest('base64')}:` }, payload: pdf })
      t.equal(wrong.statusCode, 422)
      t.equal(wrong.json().code, 'digest_mismatch')
      t.notOk((await w.app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: as(w.token) })).json().file, 'nothing stored')
      const tooBig = await w.app.inject({ method: 'PUT', url: `/v1/documents/${id}/file`, headers: { ...as(w.token), 'content-type': 'application/pdf' }, payload: Buffer.alloc(70_000) })
      t.equal(tooBig.statusCode, 413)
      t.equal(tooBig.json().code, 'file_too_large')
      const wrongType = await w.app.inject({ method: 'PUT', url: `/v1/documents/${id}/file`, headers: { ...as(w.token), 'content-type': 'application/zip' }, payload: pdf })
      t.equal(wrongType.statusCode, 415)
      t.match(wrongType.json().detail, /"application\/zip" is not accepted by PUT \/v1\/documents\/:id\/file; send one of Content-Type: application\/pdf, image\/jpeg/, 'the detail lists the file types accepted')
      const ok = await w.app.inject({ method: 'PUT', url: `/v1/documents/${id}/file`, headers: { ...as(w.token), 'content-type': 'application/pdf', 'repr-digest': `sha-256=:${digest.toString('base64')}:` }, payload: pdf })
      t.equal(ok.statusCode, 200)
      t.same(ok.json().file, { mediaType: 'application/pdf', size: pdf.length, sha256: digest.toString('hex') })
      const stored = await w.app.blobs.open(digest.toString('hex'))
      t.equal(stored?.size, pdf.length)
      stored?.stream.destroy()
      t.equal((await w.app.inject({ method: 'PUT', url: `/v1/documents/${id}/file`, headers: { ...as(w.token), 'content-type': 'application/pdf' }, payload: pdf })).statusCode, 409, 'a version has one file')
    })

    t.test('bad input: each identifier, the data, the type, the dates — 4xx and nothing written', async (t) => {
      const w = await world(t, await makeStore(t))
      const base = sample('giay-khai-sinh', 3)
      const cases: Array<[string, (d: any) => void, number, string]> = [
        ['citizen id too short', (d) => { d.subject.id = '00109901234' }, 422, 'invalid_subject'],
        ['citizen id with letters', (d) => { d.subject.id = '00109901234A' }, 422, 'invalid_subject'],
        ['citizen id with an unknown province', (d) => { d.subject.id = '097099012345' }, 422, 'invalid_subject'],
        ['citizen id province 000', (d) => { d.subject.id = '000099012345' }, 422, 'invalid_subject'],
        ['organization subject for a birth certificate', (d) => { d.subject = { kind: 'organization', id: '0101234567' } }, 422, 'subject_kind_not_allowed'],
        ['procedure code', (d) => { d.procedureCode = '4.001193' }, 400, 'validation_failed'],
        ['dossier code', (d) => { d.dossierCode = '000.00.41.H41-2203-0001' }, 400, 'validation_failed'],
        ['unknown type', (d) => { d.type = 'giay-phep-bay' }, 422, 'unknown_document_type'],
        ['data violating the schema', (d) => { d.data.unknownField = 1 }, 422, 'data_invalid'],
        ['impossible date', (d) => { d.issuedAt = '2023-02-30' }, 400, 'validation_failed'],
        ['wrong date format', (d) => { d.issuedAt = '30/01/2023' }, 400, 'validation_failed'],
        ['validUntil before validFrom', (d) => { d.validFrom = '2024-01-10'; d.issuedAt = '2024-01-10'; d.validUntil = '2024-01-01' }, 422, 'invalid_validity_period'],
        ['mass assignment of issuer', (d) => { d.issuer = OTHER_ISSUER }, 400, 'validation_failed'],
        ['mass assignment of status', (d) => { d.status = 'valid' }, 400, 'validation_failed'],
        ['mass assignment of version', (d) => { d.version = 7 }, 400, 'validation_failed']
      ]
      for (const [what, mutate, status, code] of cases) {
        const doc = structuredClone(base) as any
        mutate(doc)
        const res = await post(w, doc)
        t.equal(res.statusCode, status, what)
        t.equal(res.json().code, code, what)
      }
      const organization = sample('giay-chung-nhan-dang-ky-doanh-nghiep')
      const badTax = await post(w, { ...organization, subject: { kind: 'organization', id: '010123456' } })
      t.equal(badTax.json().code, 'invalid_subject')
      const indexed = await w.app.audit.search({ action: 'document.indexed', limit: 100 })
      t.equal(indexed.events.length, 0, 'nothing was indexed, nothing audited as indexed')
    })

    t.test('decomposed Unicode matches its composed twin', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = sample('giay-khai-sinh', 4)
      const first = await post(w, doc)
      const decomposed = JSON.parse(JSON.stringify(doc), (_k, v) => typeof v === 'string' ? v.normalize('NFD') : v)
      t.not(JSON.stringify(decomposed), JSON.stringify(doc))
      const again = await post(w, decomposed)
      t.equal(again.statusCode, 200, 'the same document, not a conflict')
      t.equal(again.json().id, first.json().id)
    })

    t.test('batch: mixed lines; good ones indexed once, bad ones reported; a retried batch indexes nothing twice', async (t) => {
      const w = await world(t, await makeStore(t))
      const good = samples.slice(10, 16)
      const lines = [
        JSON.stringify(good[0]), JSON.stringify(good[1]), '{"type": broken', JSON.stringify({ ...good[2], subject: { kind: 'citizen', id: '1' } }),
        JSON.stringify(good[3]), JSON.stringify({ ...good[4], extra: true }), JSON.stringify(good[5])
      ]
      const send = async (body: string) => await w.app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...as(w.token), 'content-type': 'application/x-ndjson' }, payload: body })
      const res = await send(lines.join('\n') + '\n')
      t.equal(res.statusCode, 200)
      t.match(String(res.headers['content-type']), /application\/x-ndjson/)
      const results = res.body.trim().split('\n').map((line) => JSON.parse(line))
      t.same(results.map((r) => r.outcome), ['created', 'created', 'rejected', 'rejected', 'created', 'rejected', 'created'])
      t.same(results.map((r) => r.line), [1, 2, 3, 4, 5, 6, 7])
      t.equal(results[2].problem.code, 'malformed_json')
      t.equal(results[3].problem.code, 'invalid_subject')
      t.equal(results[5].problem.code, 'validation_failed')
      const retry = (await send(lines.join('\n'))).body.trim().split('\n').map((line) => JSON.parse(line))
      t.same(retry.map((r) => r.outcome), ['existing', 'existing', 'rejected', 'rejected', 'existing', 'rejected', 'existing'])
      t.same(retry.filter((r) => r.id).map((r) => r.id), results.filter((r) => r.id).map((r) => r.id), 'the same documents')
      const over = await send(Array.from({ length: 51 }, () => JSON.stringify(good[0])).join('\n'))
      t.equal(over.statusCode, 413)
      t.equal(over.json().code, 'batch_too_large')
      t.equal((await send('')).statusCode, 400)
      const notUtf8 = await w.app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...as(w.token), 'content-type': 'application/x-ndjson' }, payload: Buffer.concat([Buffer.from(JSON.stringify({ ...good[0], documentNumber: 'X' }).slice(0, -2)), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]) })
      t.equal(notUtf8.statusCode, 400, 'a body that is not UTF-8 is refused whole: nothing is indexed from bytes read as something else')
      t.equal(notUtf8.json().code, 'invalid_utf8')
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))
