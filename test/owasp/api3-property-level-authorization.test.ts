// OWASP API Security Top 10 (2023) — API3: Broken Object Property Level Authorization.
// Mass assignment: fields the server sets (issuer, status, version, revoked, id, createdAt,
// scopes, schemaVersion, an agreement's grants) sent in the bodies of document indexing,
// amendment, revocation, agency registration, agreements, document types, reuse queries and
// token requests are refused as unknown (400, a pointer to each) and change nothing; in a
// request that is accepted, the server's values are the ones kept. Excessive exposure: answers
// never carry a subject's identifier in clear where the caller did not send it, nor its keyed
// hash outside the audit trail, nor another agency's data, nor private key material.
import t from 'tap'
import type { Test } from 'tap'
import { PROCEDURE, DOSSIER, CODES, bearer, buildWorld, reuseQuery } from '../lib/world.js'

const w = await buildWorld(t)
const { app, tokens, docs } = w
const subjectHash = app.documents.subjectHash({ kind: 'citizen', id: w.citizen })

async function refusedFields (t: Test, method: 'POST' | 'PUT', url: string, token: string, body: Record<string, unknown>, fields: string[]): Promise<void> {
  const res = await app.inject({ method, url, headers: bearer(token), payload: body })
  t.equal(res.statusCode, 400, `${method} ${url}: ${fields.join(', ')} refused`)
  t.equal(res.json().code, 'validation_failed')
  const pointers = (res.json().errors ?? []).map((e: { pointer: string }) => e.pointer)
  for (const field of fields) t.ok(pointers.includes(`/${field}`), `/${field} is named`)
}

t.test('documents: server-set fields in index, amend and revoke bodies are refused', async (t) => {
  const before = JSON.stringify((await w.store.documents.getDocument(docs.birth))?.document)
  const set = { issuer: CODES.otherIssuer, status: 'valid', version: 7, revoked: false, id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', createdAt: '2000-01-01T00:00:00Z' }
  await refusedFields(t, 'POST', '/v1/documents', tokens.issuer, { ...w.samples.birth, documentNumber: 'MA-1', ...set }, Object.keys(set))
  await refusedFields(t, 'POST', `/v1/documents/${docs.birth}/amend`, tokens.issuer,
    { procedureCode: PROCEDURE, dossierCode: DOSSIER, data: w.samples.birth.data, reason: 'Cải chính', ...set, type: 'phieu-ly-lich-tu-phap', subject: { kind: 'citizen', id: w.otherCitizen }, documentNumber: 'X' },
    [...Object.keys(set), 'type', 'subject', 'documentNumber'])
  await refusedFields(t, 'POST', `/v1/documents/${docs.birth}/revoke`, tokens.issuer, { reason: 'Thu hồi', revokedAt: '2000-01-01T00:00:00Z', by: CODES.otherIssuer, status: 'valid' }, ['revokedAt', 'by', 'status'])
  t.equal(JSON.stringify((await w.store.documents.getDocument(docs.birth))?.document), before, 'the document is untouched')
  // nested: a field the document type does not have
  const extra = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(tokens.issuer), payload: { ...w.samples.birth, documentNumber: 'MA-2', data: { ...w.samples.birth.data, verified: true } } })
  t.equal(extra.statusCode, 422)
  t.equal(extra.json().code, 'data_invalid')
  t.ok(extra.json().errors.some((e: { pointer: string }) => e.pointer === '/data/verified'))
})

t.test('documents: what the server sets is what is kept', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(tokens.issuer), payload: { ...w.samples.birth, documentNumber: 'MA-3/2026/TP-KS' } })
  t.equal(res.statusCode, 201)
  const doc = res.json()
  t.equal(doc.issuer, CODES.issuer, 'the issuer is the caller')
  t.equal(doc.version, 1)
  t.equal(doc.status, 'valid')
  t.match(doc.id, /^[0-9A-HJKMNP-TV-Z]{26}$/)
  t.ok(Math.abs(Date.parse(doc.createdAt) - Date.now()) < 60_000, 'createdAt is the server\'s time')
  const amended = await app.inject({ method: 'POST', url: `/v1/documents/${doc.id}/amend`, headers: bearer(tokens.issuer), payload: { procedureCode: PROCEDURE, dossierCode: DOSSIER, data: w.samples.birth.data, reason: 'Cải chính' } })
  t.equal(amended.json().version, 2)
  t.equal(amended.json().type, doc.type, 'type, subject and number stay')
  t.same(amended.json().subject, doc.subject)
})

t.test('agencies: the registry sets code, scopes and times; roles are a closed list; keys are public', async (t) => {
  const code = '000.00.51.H41'
  const jwks = w.agencies.issuer.jwks
  await refusedFields(t, 'PUT', `/v1/agencies/${code}`, tokens.admin, { name: 'Sở Y tế', roles: ['issuer'], issuableTypes: ['giay-khai-sinh'], jwks, code: CODES.admin, scopes: ['admin'], createdAt: '2000-01-01T00:00:00Z', updatedAt: '2000-01-01T00:00:00Z' }, ['code', 'scopes', 'createdAt', 'updatedAt'])
  const superuser = await app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: bearer(tokens.admin), payload: { name: 'Sở Y tế', roles: ['issuer', 'superadmin'], jwks } })
  t.equal(superuser.statusCode, 400, 'a role outside the list is refused')
  const privateKey = await app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: bearer(tokens.admin), payload: { name: 'Sở Y tế', roles: ['issuer'], jwks: { keys: [w.agencies.issuer.privateKey] } } })
  t.equal(privateKey.statusCode, 400)
  t.equal(privateKey.json().code, 'private_key_material')
  t.notMatch(privateKey.body, new RegExp(String(w.agencies.issuer.privateKey.d)), 'the leaked key is not echoed')
  t.equal((await app.inject({ method: 'GET', url: `/v1/agencies/${code}`, headers: bearer(tokens.admin) })).statusCode, 404, 'nothing was registered')
  const ok = await app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: bearer(tokens.admin), payload: { name: 'Sở Y tế', roles: ['issuer'], issuableTypes: ['giay-khai-sinh'], jwks } })
  t.equal(ok.statusCode, 201)
  t.equal(ok.json().code, code, 'the code is the path\'s')
  t.same(ok.json().scopes, ['documents:write'], 'scopes follow from the roles')
})

t.test('agreements and document types: ids, times, status and schema versions are the server\'s', async (t) => {
  const body = { requester: CODES.otherRequester, documentTypes: ['giay-khai-sinh'], procedureCodes: [PROCEDURE], fields: { 'giay-khai-sinh': ['fullName'] }, validFrom: '2026-01-01' }
  await refusedFields(t, 'PUT', '/v1/agreements/health-2026', tokens.admin, { ...body, id: 'ward-quang-trung-2026', createdAt: '2000-01-01', updatedAt: '2000-01-01' }, ['id', 'createdAt', 'updatedAt'])
  t.equal(await w.store.agreements.getAgreement('health-2026'), undefined, 'nothing was created')
  const created = await app.inject({ method: 'PUT', url: '/v1/agreements/health-2026', headers: bearer(tokens.admin), payload: body })
  t.equal(created.statusCode, 201)
  t.equal(created.json().id, 'health-2026')
  t.equal(created.json().fileDownload, false, 'defaults are the narrow ones')
  t.equal(created.json().hiddenAllowed, false)
  const type = (await app.inject({ method: 'GET', url: '/v1/document-types/giay-khai-sinh', headers: bearer(tokens.admin) })).json()
  await refusedFields(t, 'PUT', '/v1/document-types/giay-khai-sinh', tokens.admin,
    { name: type.name, subjectKinds: type.subjectKinds, defaultValidity: type.defaultValidity, consentRequired: type.consentRequired, schema: type.schema, code: 'other', schemaVersion: 99 }, ['code', 'schemaVersion'])
})

t.test('a requester cannot widen its grant from the query body, nor a caller its token from the token request', async (t) => {
  await refusedFields(t, 'POST', '/v1/reuse-queries', tokens.requester, { ...reuseQuery(w), fields: ['*'], fileDownload: true, requester: CODES.otherRequester, hiddenAllowed: true }, ['fields', 'fileDownload', 'requester', 'hiddenAllowed'])
  const res = await app.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'a.b.c', roles: 'admin' }).toString()
  })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error, 'invalid_request')
})

t.test('answers expose only what the caller may see', async (t) => {
  const reuse = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(tokens.requester), payload: reuseQuery(w) })
  t.equal(reuse.statusCode, 200)
  t.notOk(reuse.body.includes(w.citizen), 'the requester sent the identifier; it is not echoed back')
  t.notOk(reuse.body.includes(subjectHash), 'no keyed hash of the subject')
  for (const doc of reuse.json().results[0].documents) {
    t.same(Object.keys(doc.data).sort(), ['dateOfBirth', 'fullName'], 'only the fields the agreement grants')
    t.notOk('subject' in doc, 'no subject')
    t.notOk('dossierCode' in doc || 'procedureCode' in doc, 'not the issuer\'s own dossier')
  }
  const bodies: Array<[string, string]> = [
    ['issuer reading its document', (await app.inject({ method: 'GET', url: `/v1/documents/${docs.birth}`, headers: bearer(tokens.issuer) })).body],
    ['portal citizen documents', (await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: bearer(tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen } } })).body],
    ['portal access history', (await app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: bearer(tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen } } })).body],
    ['discovery', (await app.inject({ method: 'GET', url: '/v1/discovery', headers: bearer(tokens.requester) })).body],
    ['attestation verification', (await app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: bearer(tokens.otherRequester), payload: { attestation: reuse.json().results[0].documents[0].attestation } })).body],
    ['webhook deliveries', (await app.inject({ method: 'GET', url: '/v1/webhooks/deliveries', headers: bearer(tokens.portal) })).body],
    ['agencies', (await app.inject({ method: 'GET', url: '/v1/agencies', headers: bearer(tokens.admin) })).body]
  ]
  for (const [what, body] of bodies) t.notOk(body.includes(subjectHash), `${what}: no keyed hash of the subject`)
  const portal = JSON.parse(bodies[1]?.[1] as string)
  t.ok(portal.documents.length > 0)
  t.ok(portal.documents.every((d: Record<string, unknown>) => !('subject' in d)), 'the portal is not sent the identifier back in every item')
  const verify = JSON.parse(bodies[4]?.[1] as string)
  t.equal(verify.valid, true)
  t.notOk(JSON.stringify(verify.claims).includes(w.citizen), 'an attestation names no subject')
  t.notMatch(bodies[6]?.[1] as string, /"d":/, 'agencies are listed with public keys only')
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  for (const key of jwks.keys) {
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) t.notOk(member in key, `the gateway's published key has no "${member}"`)
  }
  // the issuer sees its own dossier and subject: it sent them
  const own = JSON.parse(bodies[0]?.[1] as string)
  t.equal(own.subject.id, w.citizen)
  const theirs = await app.inject({ method: 'GET', url: `/v1/documents/${docs.otherIssuers}`, headers: bearer(tokens.issuer) })
  t.notOk(theirs.body.includes(w.citizen), 'another issuer\'s document: nothing of it')
})
