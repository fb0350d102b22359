import t from 'tap'
import { canonicalDigest } from '../src/lib/digest.js'
import { MemoryStores } from '../src/store/index.js'
import type { AgreementRecord } from '../src/store/index.js'
import { AGREEMENT, AGREEMENT_ID, CODES, PROCEDURE, bearer, buildWorld, reuseQuery } from './lib/world.js'

/**
 * Data minimization fails closed: an agreement releases the fields it names and nothing else;
 * what discovery tells a requester is what the release path gives it; refusals read none of the
 * citizen's documents and count nothing a caller invents.
 */

const BIRTH = 'giay-khai-sinh'
const LAND = 'giay-chung-nhan-quyen-su-dung-dat'

t.test('an agreement that grants a type without naming its fields is refused, and nothing is stored', async (t) => {
  const w = await buildWorld(t)
  const put = async (id: string, body: Record<string, unknown>) =>
    await w.app.inject({ method: 'PUT', url: `/v1/agreements/${id}`, headers: bearer(w.tokens.admin), payload: body })
  const missing = await put('no-fields-for-land', { ...AGREEMENT, documentTypes: [BIRTH, LAND], fields: { [BIRTH]: ['fullName'] } })
  t.equal(missing.statusCode, 422)
  t.equal(missing.json().code, 'fields_missing')
  t.match(missing.json().detail, LAND, 'the problem names the type without fields')

  const ungranted = await put('fields-for-ungranted', { ...AGREEMENT, documentTypes: [BIRTH], fields: { [BIRTH]: ['fullName'], [LAND]: ['*'] } })
  t.equal(ungranted.statusCode, 422)
  t.equal(ungranted.json().code, 'fields_for_ungranted_type')

  const typo = await put('field-typo', { ...AGREEMENT, documentTypes: [BIRTH], fields: { [BIRTH]: ['fullname'] } })
  t.equal(typo.statusCode, 422)
  t.equal(typo.json().code, 'unknown_field', 'a field the type cannot hold is a typo, not a silent empty release')

  const none = await put('status-only', { ...AGREEMENT, requester: CODES.otherRequester, documentTypes: [BIRTH], fields: { [BIRTH]: [] } })
  t.equal(none.statusCode, 201, 'an explicit empty list is accepted: the type is granted with no data fields')

  const list = await w.app.inject({ method: 'GET', url: '/v1/agreements', headers: bearer(w.tokens.admin) })
  t.same(list.json().agreements.map((a: { id: string }) => a.id).sort(), ['status-only', AGREEMENT_ID], 'the refused agreements were not stored')
})

t.test('an agreement stored without fields for a type releases no field, exactly as discovery says', async (t) => {
  const store = new MemoryStores()
  const w = await buildWorld(t, { store })
  // as an agreement written before every granted type had to name its fields
  const current = (await store.agreements.getAgreement(AGREEMENT_ID)) as AgreementRecord
  await store.agreements.putAgreement({ ...current, fields: {} })

  const discovery = await w.app.inject({ method: 'GET', url: '/v1/discovery', headers: bearer(w.tokens.requester) })
  const grant = discovery.json().grants.find((g: { documentType: string }) => g.documentType === BIRTH)
  t.same(grant.fields, [], 'discovery: no field is released')

  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, [BIRTH]) })
  t.equal(res.statusCode, 200)
  const released = res.json().results[0].documents[0]
  t.ok(released, 'the result is still found')
  t.same(released.data, {}, 'the release path: no field leaves the gateway')
  t.notOk(JSON.stringify(released).includes(w.samples.birth.data.fullName as string), 'the citizen\'s name is nowhere in the answer')
  const claims = JSON.parse(Buffer.from(released.attestation.split('.')[1], 'base64url').toString('utf8'))
  t.equal(claims.data_sha256, canonicalDigest({}), 'the attestation vouches for the empty release')
})

t.test('discovery and release read the same fields for every granted type', async (t) => {
  const w = await buildWorld(t)
  const discovery = await w.app.inject({ method: 'GET', url: '/v1/discovery', headers: bearer(w.tokens.requester) })
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, [BIRTH, LAND]) })
  t.equal(res.statusCode, 200)
  for (const result of res.json().results as Array<{ documentType: string, documents: Array<{ data: Record<string, unknown> }> }>) {
    const fields = discovery.json().grants.find((g: { documentType: string }) => g.documentType === result.documentType).fields as string[]
    t.ok(result.documents.length > 0, `${result.documentType} found`)
    for (const document of result.documents) {
      t.ok(Object.keys(document.data).every((field) => fields.includes(field)), `${result.documentType}: only the fields discovery lists are released`)
    }
  }
})

t.test('a refused query reads none of the citizen\'s documents', async (t) => {
  const store = new MemoryStores()
  const w = await buildWorld(t, { store })
  let reads = 0
  const read = store.documents.documentsOfSubject.bind(store.documents)
  store.documents.documentsOfSubject = async (...args) => { reads++; return await read(...args) }

  const refused = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.otherRequester), payload: reuseQuery(w, [BIRTH]) })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'no_agreement')
  const wrongProcedure = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: { ...reuseQuery(w, [BIRTH]), purpose: { procedureCode: '2.000001', dossierCode: '000.20.41.H41-260301-0002' } } })
  t.equal(wrongProcedure.json().code, 'procedure_not_granted')
  const noConsent = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, ['phieu-ly-lich-tu-phap']) })
  t.equal(noConsent.json().code, 'consent_required')
  t.equal(reads, 0, 'no refusal read the subject\'s documents')

  const granted = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, [BIRTH]) })
  t.equal(granted.statusCode, 200)
  t.equal(reads, 1, 'a granted query reads them once')
})

t.test('refused queries count only document types and procedures that exist', async (t) => {
  const w = await buildWorld(t)
  const invented = Array.from({ length: 5 }, (_, i) => `loai-bia-dat-${i}`)
  for (const procedureCode of ['3.999999', PROCEDURE]) {
    const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: { ...reuseQuery(w, [BIRTH, ...invented]), purpose: { procedureCode, dossierCode: '000.20.41.H41-260301-0003' } } })
    t.equal(res.statusCode, 403)
  }
  const stats = async (groupBy: string) =>
    (await w.app.inject({ method: 'GET', url: `/v1/stats/reuse?groupBy=${groupBy}`, headers: bearer(w.tokens.auditor) })).json()
  const byType = await stats('documentType')
  t.same(byType.groups.map((g: { key: string }) => g.key), [BIRTH], 'only the catalogue\'s type is counted')
  t.equal(byType.groups[0].denials, 2)
  t.equal(byType.total.denials, 2, 'both refusals are in the total')
  const byProcedure = await stats('procedure')
  t.same(byProcedure.groups.map((g: { key: string }) => g.key), [PROCEDURE], 'a procedure no agreement names makes no counter')
})
