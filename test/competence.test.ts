// An issuer is competent for the document types an admin lists on its agency record, and only
// those. A commune's civil-status office that may issue birth certificates tries to plant a
// criminal-record extract about a citizen — indexed alone, in a batch, then amended, revoked
// and given a file — and is refused each time (403 type_not_issuable, on record as denied);
// nothing is stored and a requester entitled to criminal records finds nothing. Discovery and
// the agency registry show the list; the admin's PUT checks it.
import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { PDF, bearer, buildWorld, consentToken, reuseQuery, sample } from './lib/world.js'
import { makeAgency, register, tokenFor } from './lib/agencies.js'
import { today } from '../src/services/document-status.js'

const BIRTH = 'giay-khai-sinh'
const CRIME = 'phieu-ly-lich-tu-phap'
const COMMUNE = '000.21.41.H41'

const w = await buildWorld(t)
const { app, tokens } = w
const commune = await makeAgency(COMMUNE)
await register(app, tokens.admin, commune, ['issuer'], { name: 'UBND xã Phước Hòa (tư pháp – hộ tịch)', issuableTypes: [BIRTH] })
const communeToken = await tokenFor(app, commune)
const citizenHash = app.documents.subjectHash({ kind: 'citizen', id: w.citizen })

/** a criminal-record extract about the world's citizen, issued today (valid for the type's six months), with a number of its own */
function plantedExtract (): Record<string, unknown> {
  const { validUntil: _until, ...extract } = sample(CRIME)
  return { ...extract, subject: { kind: 'citizen', id: w.citizen }, documentNumber: `LLTP-${randomUUID().slice(0, 8)}`, issuedAt: today(), validFrom: today() }
}

async function deniedEvents (action: string): Promise<Array<{ detail?: Record<string, unknown>, subject?: string, documents?: Array<{ id: string }> }>> {
  return (await app.audit.search({ agency: COMMUNE, action, outcome: 'denied', limit: 100 })).events
}

/** what a requester entitled to criminal records (with the citizen's consent) gets for the citizen */
async function requesterSees (t: Test): Promise<unknown[]> {
  const res = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(tokens.requester), payload: reuseQuery(w, [CRIME], { consentToken: await consentToken(w) }) })
  t.equal(res.statusCode, 200, 'the requester may ask for criminal records')
  return res.json().results.flatMap((r: { documents: unknown[] }) => r.documents)
}

t.test('an issuer cannot index a type it is not competent for: 403, nothing stored, on record, nothing to reuse', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(communeToken), payload: plantedExtract() })
  t.equal(res.statusCode, 403)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/)
  t.equal(res.json().code, 'type_not_issuable')
  t.match(res.json().detail, CRIME)
  t.same(await w.store.documents.documentsOfSubject(citizenHash, [CRIME]), [], 'no criminal record of the citizen is stored')
  const denied = await deniedEvents('document.indexed')
  t.equal(denied.length, 1, 'the attempt is audited as denied')
  t.equal(denied[0]?.subject, citizenHash, 'with whose result it was')
  t.match(denied[0]?.detail, { code: 'type_not_issuable', type: CRIME })
  t.same(await requesterSees(t), [], 'a requester finds no criminal record')
  const birth = { ...sample(BIRTH), subject: { kind: 'citizen', id: w.citizen }, documentNumber: `KS-${randomUUID().slice(0, 8)}` }
  t.equal((await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(communeToken), payload: birth })).statusCode, 201, 'what it is competent for it indexes')
})

t.test('a batch line of a type the issuer is not competent for is rejected on its own (403), the others indexed', async (t) => {
  const birth = { ...sample(BIRTH, (d) => d.subject.id !== w.citizen), documentNumber: `KS-${randomUUID().slice(0, 8)}` }
  const body = [plantedExtract(), birth].map((line) => JSON.stringify(line)).join('\n') + '\n'
  const res = await app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...bearer(communeToken), 'content-type': 'application/x-ndjson' }, payload: body })
  t.equal(res.statusCode, 200)
  const lines = res.body.trim().split('\n').map((line) => JSON.parse(line))
  t.match(lines[0], { line: 1, outcome: 'rejected', problem: { status: 403, code: 'type_not_issuable' } })
  t.match(lines[1], { line: 2, outcome: 'created' })
  t.same(await w.store.documents.documentsOfSubject(citizenHash, [CRIME]), [], 'no criminal record of the citizen is stored')
  t.equal((await deniedEvents('document.indexed')).length, 2, 'the refused line is audited as denied')
  t.same(await requesterSees(t), [], 'a requester finds no criminal record')
})

t.test('a result of a type the issuer is no longer competent for cannot be amended, revoked or given a file', async (t) => {
  // an admin's slip: the commune is listed for criminal records, indexes one, and the list is corrected
  await register(app, tokens.admin, commune, ['issuer'], { issuableTypes: [BIRTH, CRIME] })
  const indexed = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(communeToken), payload: plantedExtract() })
  t.equal(indexed.statusCode, 201)
  const id = indexed.json().id as string
  await register(app, tokens.admin, commune, ['issuer'], { issuableTypes: [BIRTH] })
  const before = JSON.stringify((await w.store.documents.getDocument(id))?.document)
  const attempts = [
    { action: 'document.amended', method: 'POST', url: `/v1/documents/${id}/amend`, payload: { procedureCode: indexed.json().procedureCode, dossierCode: indexed.json().dossierCode, data: indexed.json().data, reason: 'Cải chính' } },
    { action: 'document.revoked', method: 'POST', url: `/v1/documents/${id}/revoke`, payload: { reason: 'Thu hồi' } },
    { action: 'document.file_uploaded', method: 'PUT', url: `/v1/documents/${id}/file`, payload: PDF, headers: { 'content-type': 'application/pdf' } }
  ] as const
  for (const attempt of attempts) {
    const res = await app.inject({ method: attempt.method, url: attempt.url, headers: { ...bearer(communeToken), ...('headers' in attempt ? attempt.headers : {}) }, payload: attempt.payload })
    t.equal(res.statusCode, 403, `${attempt.method} ${attempt.url}`)
    t.equal(res.json().code, 'type_not_issuable')
    const denied = await deniedEvents(attempt.action)
    t.equal(denied.length, 1, `${attempt.action} audited as denied`)
    t.equal(denied[0]?.documents?.[0]?.id, id, 'naming the document')
  }
  t.equal(JSON.stringify((await w.store.documents.getDocument(id))?.document), before, 'the result is unchanged: no new version, not revoked, no file')
  const read = await app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: bearer(communeToken) })
  t.equal(read.statusCode, 200, 'its own result stays readable')
})

t.test('discovery and the registry show what an issuer may issue; a change applies from the next request on', async (t) => {
  const discovery = async (token: string) => (await app.inject({ method: 'GET', url: '/v1/discovery', headers: bearer(token) })).json()
  t.same((await discovery(communeToken)).issuableTypes, [BIRTH])
  t.same((await discovery(tokens.issuer)).issuableTypes, [BIRTH, 'giay-chung-nhan-quyen-su-dung-dat'])
  t.notOk('issuableTypes' in await discovery(tokens.requester), 'a requester issues nothing')
  const listed = (await app.inject({ method: 'GET', url: '/v1/agencies', headers: bearer(tokens.admin) })).json().agencies
  t.same(listed.find((a: { code: string }) => a.code === COMMUNE).issuableTypes, [BIRTH])
  t.notOk('issuableTypes' in listed.find((a: { code: string }) => a.code === w.agencies.requester.code))

  await register(app, tokens.admin, commune, ['issuer'], { issuableTypes: [BIRTH, 'trich-luc-khai-tu'] })
  t.teardown(async () => { await register(app, tokens.admin, commune, ['issuer'], { issuableTypes: [BIRTH] }) })
  t.same((await discovery(communeToken)).issuableTypes, [BIRTH, 'trich-luc-khai-tu'], 'the same token sees the new list')
  const change = (await app.audit.search({ action: 'agency.updated', limit: 1 })).events[0]
  t.match(change?.detail, { agency: COMMUNE, issuableTypes: [BIRTH, 'trich-luc-khai-tu'], previous: { issuableTypes: [BIRTH] } }, 'the admin change is on record')
})

t.test('an issuer registered before competences existed may issue nothing until an admin lists its types', async (t) => {
  const legacy = await makeAgency('000.22.41.H41')
  await register(app, tokens.admin, legacy, ['issuer'], { issuableTypes: [BIRTH] })
  // the record as an earlier version of the gateway stored it: no list at all
  const { issuableTypes: _types, ...old } = await w.store.agencies.getAgency(legacy.code) as NonNullable<Awaited<ReturnType<typeof w.store.agencies.getAgency>>>
  await w.store.agencies.putAgency(old)
  const token = await tokenFor(app, legacy)
  const birth = { ...sample(BIRTH, (d) => d.subject.id !== w.citizen), documentNumber: `KS-${randomUUID().slice(0, 8)}` }
  const refused = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(token), payload: birth })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'type_not_issuable')
  t.same((await app.inject({ method: 'GET', url: '/v1/discovery', headers: bearer(token) })).json().issuableTypes, [])
  t.same((await app.inject({ method: 'GET', url: `/v1/agencies/${legacy.code}`, headers: bearer(tokens.admin) })).json().issuableTypes, [], 'the registry shows it issues nothing')
  // the migration: PUT the agency with its types
  await register(app, tokens.admin, legacy, ['issuer'], { issuableTypes: [BIRTH] })
  t.equal((await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(token), payload: birth })).statusCode, 201)
})

t.test('PUT /v1/agencies checks the list: catalogue codes, required for an issuer, only for an issuer', async (t) => {
  const code = '000.23.41.H41'
  const newcomer = await makeAgency(code)
  const put = async (body: Record<string, unknown>) => await app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: bearer(tokens.admin), payload: { name: 'UBND xã Tân Lập', jwks: newcomer.jwks, ...body } })
  const cases: Array<[string, Record<string, unknown>, number, string, string?]> = [
    ['a type not in the catalogue', { roles: ['issuer'], issuableTypes: [BIRTH, 'giay-phep-bay'] }, 422, 'unknown_document_type', '/issuableTypes/1'],
    ['an issuer without the list', { roles: ['issuer'] }, 422, 'issuable_types_missing', '/issuableTypes'],
    ['an issuer with an empty list', { roles: ['issuer', 'requester'], issuableTypes: [] }, 422, 'issuable_types_missing', '/issuableTypes'],
    ['a list without the issuer role', { roles: ['requester'], issuableTypes: [BIRTH] }, 422, 'issuer_role_missing', '/issuableTypes'],
    ['a code that is no type code', { roles: ['issuer'], issuableTypes: ['Giấy khai sinh'] }, 400, 'validation_failed', '/issuableTypes/0'],
    ['a type listed twice', { roles: ['issuer'], issuableTypes: [BIRTH, BIRTH] }, 400, 'validation_failed']
  ]
  for (const [name, body, status, problem, pointer] of cases) {
    const res = await put(body)
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, problem, name)
    if (pointer) t.ok(res.json().errors?.some((e: { pointer: string }) => e.pointer === pointer), `${name}: ${pointer} is named`)
  }
  t.equal((await app.inject({ method: 'GET', url: `/v1/agencies/${code}`, headers: bearer(tokens.admin) })).statusCode, 404, 'nothing was registered')
  const ok = await put({ roles: ['issuer'], issuableTypes: [BIRTH, 'trich-luc-khai-tu'] })
  t.equal(ok.statusCode, 201)
  t.same(ok.json().issuableTypes, [BIRTH, 'trich-luc-khai-tu'])
  const requester = await put({ roles: ['requester'] })
  t.equal(requester.statusCode, 200, 'an agency that issues nothing needs no list')
  t.notOk('issuableTypes' in requester.json(), 'and drops it with the issuer role')
})
