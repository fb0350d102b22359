import t from 'tap'
import { bearer, buildWorld, reuseQuery, sample } from './lib/world.js'

/**
 * A value of the wrong form is refused with the form it should have and an example, not with
 * the regular expression that checks it; the problem keeps its `errors` list of pointers.
 */
const w = await buildWorld(t)

interface FieldError { in: string, pointer: string, detail: string }
const errorsOf = (res: { json: () => { code: string, errors?: FieldError[] } }): Record<string, string> =>
  Object.fromEntries((res.json().errors ?? []).map((e) => [e.pointer, e.detail]))

t.test('a result indexed with fields of the wrong form', async (t) => {
  const doc = { ...sample('giay-khai-sinh'), type: 'Giay_Khai_Sinh', procedureCode: '1001193', dossierCode: 'HS-2023-7', issuedAt: '15/04/2023' }
  const res = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: doc })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'validation_failed')
  t.same(errorsOf(res), {
    '/type': 'must be a document type code (lower-case words joined by hyphens), e.g. giay-khai-sinh',
    '/procedureCode': 'must be a procedure code (mã TTHC), e.g. 1.001193',
    '/dossierCode': 'must be a dossier code (mã hồ sơ), e.g. 000.00.41.H41-230415-0007',
    '/issuedAt': 'must be a date as YYYY-MM-DD, e.g. 2023-04-15'
  })
  t.ok(res.json().errors.every((e: FieldError) => e.in === 'body'), 'each error says where it is')
  t.notMatch(res.body, /must match pattern/, 'no regular expression quoted')
})

t.test('a date that does not exist is told the same form', async (t) => {
  const res = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: { ...sample('giay-khai-sinh'), issuedAt: '2023-02-30' } })
  t.equal(res.statusCode, 400)
  t.same(errorsOf(res), { '/issuedAt': 'must be a date as YYYY-MM-DD, e.g. 2023-04-15' })
})

t.test('document ids, agency codes and document type lists', async (t) => {
  const byId = await w.app.inject({ method: 'GET', url: '/v1/documents/not-a-document-id', headers: bearer(w.tokens.issuer) })
  t.equal(byId.statusCode, 400)
  t.same(errorsOf(byId), { '/id': 'must be a document id (26 characters), e.g. 01HZX3J4K5M6N7P8Q9R0S1T2V3' })

  const agency = await w.app.inject({ method: 'GET', url: '/v1/agencies/H41-000', headers: bearer(w.tokens.admin) })
  t.equal(agency.statusCode, 400)
  t.same(errorsOf(agency), { '/code': 'must be an agency code (mã định danh điện tử), e.g. 000.00.00.H41' })

  const query = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, ['Giấy khai sinh']) })
  t.equal(query.statusCode, 400)
  t.equal(errorsOf(query)['/documentTypes/0'], 'must be a document type code (lower-case words joined by hyphens), e.g. giay-khai-sinh')
})

t.test('a query-string date of the statistics is told once, with its form', async (t) => {
  const res = await w.app.inject({ method: 'GET', url: '/v1/stats/reuse?from=15/04/2023', headers: bearer(w.tokens.auditor) })
  t.equal(res.statusCode, 400)
  t.same(res.json().errors, [{ in: 'querystring', pointer: '/from', detail: 'must be a date as YYYY-MM-DD, e.g. 2023-04-15' }])
})
