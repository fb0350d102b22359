// OWASP API Security Top 10 (2023) — API1: Broken Object Level Authorization.
// Each object reached by an id is checked against the caller, not just the route's scope: an
// issuer reading, amending, revoking or attaching a file to another issuer's result; a requester
// using another requester's download link or agreement, or getting results with no agreement for
// them; the portal's access-history cursor replayed for another citizen; webhook deliveries and
// replays of another agency; audit search for anyone but an auditor. Another agency's object is
// answered as if it did not exist, changes nothing, and the refusal is on record.
import t from 'tap'
import { createHash } from 'node:crypto'
import { CODES, PROCEDURE, DOSSIER, bearer, buildWorld, consentToken, downloadLink, reuseQuery } from '../lib/world.js'
import { register } from '../lib/agencies.js'
import { startReceiver } from '../lib/webhook-receiver.js'

const w = await buildWorld(t)
const { app, docs, tokens } = w
const as = (token: string) => bearer(token)
const snapshot = async (id: string): Promise<string> => JSON.stringify((await w.store.documents.getDocument(id))?.document)

t.test('an issuer cannot read, amend, revoke or attach a file to another issuer\'s result', async (t) => {
  const theirs = docs.otherIssuers
  const before = await snapshot(theirs)
  const attempts = [
    { method: 'GET', url: `/v1/documents/${theirs}` },
    { method: 'GET', url: `/v1/documents/${theirs}?version=1` },
    { method: 'POST', url: `/v1/documents/${theirs}/amend`, payload: { procedureCode: PROCEDURE, dossierCode: DOSSIER, data: w.samples.otherIssuers.data, reason: 'Cải chính' } },
    { method: 'POST', url: `/v1/documents/${theirs}/revoke`, payload: { reason: 'Thu hồi' } },
    { method: 'PUT', url: `/v1/documents/${theirs}/file`, payload: Buffer.from('%PDF-1.7 forged'), headers: { 'content-type': 'application/pdf' } }
  ] as const
  for (const attempt of attempts) {
    const res = await app.inject({ method: attempt.method, url: attempt.url, headers: { ...as(tokens.issuer), ...('headers' in attempt ? attempt.headers : {}) }, ...('payload' in attempt ? { payload: attempt.payload } : {}) })
    t.equal(res.statusCode, 404, `${attempt.method} ${attempt.url}`)
    t.equal(res.json().code, 'document_not_found', 'as if it did not exist')
    t.notMatch(res.body, new RegExp(CODES.otherIssuer.replace(/\./g, '\\.')), 'the owner is not named')
  }
  // the same answer as for an id that exists nowhere: existence is not revealed
  const nowhere = await app.inject({ method: 'GET', url: '/v1/documents/01ARZ3NDEKTSV4RRFFQ69G5FAV', headers: as(tokens.issuer) })
  t.equal(nowhere.statusCode, 404)
  t.equal(nowhere.json().code, 'document_not_found')
  t.equal(await snapshot(theirs), before, 'their result is untouched')
  const mine = await app.inject({ method: 'GET', url: `/v1/documents/${theirs}`, headers: as(tokens.otherIssuer) })
  t.equal(mine.statusCode, 200, 'its owner still reads it')
  t.equal(mine.json().status, 'valid')
  t.notOk(mine.json().file, 'no file was attached')
})

t.test('a requester gets nothing for types no agreement of its own grants, even when another requester holds one', async (t) => {
  const denied = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.otherRequester), payload: reuseQuery(w, ['giay-khai-sinh']) })
  t.equal(denied.statusCode, 403)
  t.equal(denied.json().code, 'no_agreement')
  t.notMatch(denied.body, /fullName|dateOfBirth|attestation/, 'no data in the refusal')
  const status = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.otherRequester), payload: reuseQuery(w, ['giay-khai-sinh'], { mode: 'status' }) })
  t.equal(status.statusCode, 403, 'not even whether a result exists')
  const discovery = await app.inject({ method: 'GET', url: '/v1/discovery', headers: as(tokens.otherRequester) })
  t.same(discovery.json().grants, [], 'another requester\'s agreement is not shown as its own')
  const mine = await app.inject({ method: 'GET', url: '/v1/discovery', headers: as(tokens.requester) })
  t.ok(mine.json().grants.every((g: { agreement: string }) => g.agreement === 'ward-quang-trung-2026'))
  const audit = await app.audit.search({ action: 'reuse.queried', outcome: 'denied', agency: CODES.otherRequester, limit: 10 })
  t.equal(audit.events.length, 2, 'both refusals on record, with the caller as actor')
})

t.test('a requester\'s agreement covers only its own types, procedures and fields', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.requester), payload: reuseQuery(w, ['giay-khai-sinh']) })
  t.equal(res.statusCode, 200)
  const found = res.json().results[0].documents
  t.equal(found.length, 2, 'both issuers\' birth certificates of the citizen')
  for (const doc of found) t.same(Object.keys(doc.data).sort(), ['dateOfBirth', 'fullName'], 'only the granted fields')
  const other = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.requester), payload: reuseQuery(w, ['xac-nhan-tinh-trang-hon-nhan']) })
  t.equal(other.statusCode, 403)
  t.equal(other.json().code, 'no_agreement')
  const procedure = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.requester), payload: { ...reuseQuery(w), purpose: { procedureCode: '2.000001', dossierCode: DOSSIER } } })
  t.equal(procedure.statusCode, 403)
  t.equal(procedure.json().code, 'procedure_not_granted')
})

t.test('a consent token for one citizen does not open another citizen\'s results', async (t) => {
  const forOne = await consentToken(w)
  const res = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.requester), payload: { ...reuseQuery(w, ['phieu-ly-lich-tu-phap']), subject: { kind: 'citizen', id: w.otherCitizen }, consentToken: forOne } })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'consent_wrong_subject')
})

t.test('a download link works only for the requester it was issued to, and stays usable for it', async (t) => {
  const link = await downloadLink(w)
  for (const token of [tokens.otherRequester]) {
    const stolen = await app.inject({ method: 'GET', url: link, headers: as(token) })
    t.equal(stolen.statusCode, 403)
    t.equal(stolen.json().code, 'download_not_yours')
    t.notMatch(stolen.body, /PDF/)
  }
  for (const token of [tokens.issuer, tokens.portal, tokens.admin]) {
    t.equal((await app.inject({ method: 'GET', url: link, headers: as(token) })).statusCode, 403, 'other roles have no download scope')
  }
  const own = await app.inject({ method: 'GET', url: link, headers: as(tokens.requester) })
  t.equal(own.statusCode, 200, 'the refusals did not use it up')
  t.equal(own.headers['repr-digest'], `sha-256=:${createHash('sha256').update(own.rawPayload).digest('base64')}:`)
  const denied = await app.audit.search({ action: 'file.downloaded', outcome: 'denied', agency: CODES.otherRequester, limit: 10 })
  t.equal(denied.events.length, 1, 'the attempt with another agency\'s link is on record')
})

t.test('the portal\'s history cursor is bound to the citizen it was made for', async (t) => {
  // two releases for the citizen, so a first page of one has a cursor
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: as(tokens.requester), payload: reuseQuery(w) })
    t.equal(res.statusCode, 200)
  }
  const page = await app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: as(tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen }, limit: 1 } })
  t.equal(page.statusCode, 200)
  const cursor = page.json().nextCursor
  t.type(cursor, 'string')
  const replayed = await app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: as(tokens.portal), payload: { subject: { kind: 'citizen', id: w.otherCitizen }, limit: 1, cursor } })
  t.equal(replayed.statusCode, 400)
  t.equal(replayed.json().code, 'invalid_cursor')
  const docsOfOther = await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: as(tokens.portal), payload: { subject: { kind: 'citizen', id: w.otherCitizen } } })
  t.equal(docsOfOther.statusCode, 200)
  t.same(docsOfOther.json().documents.map((d: { id: string }) => d.id), [docs.otherCitizenBirth], 'only that citizen\'s own result')
  for (const token of [tokens.requester, tokens.issuer, tokens.auditor, tokens.admin]) {
    const res = await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: as(token), payload: { subject: { kind: 'citizen', id: w.citizen } } })
    t.equal(res.statusCode, 403, 'a citizen\'s data is the portal\'s to ask for, no other agency\'s')
  }
})

t.test('webhook deliveries and replays: each agency its own destination only', async (t) => {
  const receiver = await startReceiver()
  t.teardown(async () => await receiver.close())
  await register(app, tokens.admin, w.agencies.requester, ['requester'], { webhookUrl: receiver.url })
  const mine = await app.inject({ method: 'GET', url: '/v1/webhooks/deliveries', headers: as(tokens.requester) })
  t.equal(mine.statusCode, 200)
  t.equal(mine.json().destination, `agency:${CODES.requester}`)
  for (const token of [tokens.otherRequester, tokens.issuer]) {
    const theirs = await app.inject({ method: 'GET', url: '/v1/webhooks/deliveries', headers: as(token) })
    t.equal(theirs.statusCode, 404, 'an agency without a webhook sees no one else\'s')
    t.equal(theirs.json().code, 'no_webhook')
    const replay = await app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: as(token), payload: { after: 0 } })
    t.equal(replay.statusCode, 404)
  }
  const portal = await app.inject({ method: 'GET', url: '/v1/webhooks/deliveries?after=0&limit=1000', headers: as(tokens.portal) })
  t.equal(portal.statusCode, 200)
  t.equal(portal.json().destination, 'portal', 'the portal gets its own announcements, not an agency\'s notices')
  // only an administrator may name another destination: an agency naming one is refused, and shown nothing
  const forced = await app.inject({ method: 'GET', url: `/v1/webhooks/deliveries?destination=agency:${CODES.requester}`, headers: as(tokens.otherRequester) })
  t.equal(forced.statusCode, 403)
  t.equal(forced.json().code, 'insufficient_scope')
  t.notMatch(forced.body, CODES.requester, 'nothing of the named destination')
  const forcedReplay = await app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: as(tokens.otherRequester), payload: { after: 0, destination: `agency:${CODES.requester}` } })
  t.equal(forcedReplay.statusCode, 403)
})

t.test('the audit trail is for auditors: nobody else searches, exports or verifies it', async (t) => {
  for (const [name, token] of Object.entries(tokens)) {
    if (name === 'auditor') continue
    for (const [method, url] of [['POST', '/v1/audit/search'], ['GET', '/v1/audit/export'], ['GET', '/v1/audit/verify'], ['GET', '/v1/stats/reuse']] as const) {
      const res = await app.inject({ method, url, headers: as(token), ...(method === 'POST' ? { payload: { agency: CODES[name as keyof typeof CODES] } } : {}) })
      t.equal(res.statusCode, 403, `${name}: ${method} ${url}`)
    }
  }
  const auditor = await app.inject({ method: 'POST', url: '/v1/audit/search', headers: as(tokens.auditor), payload: { agency: CODES.issuer, limit: 1000 } })
  t.equal(auditor.statusCode, 200)
  t.ok(auditor.json().events.length > 0)
  t.ok(auditor.json().events.every((e: { actor: string }) => e.actor === CODES.issuer), 'the agency filter holds')
  t.notMatch(auditor.body, new RegExp(w.citizen), 'subjects appear as keyed hashes only')
})

t.test('agreements and agencies are the administrator\'s: a requester cannot read or change its own agreement', async (t) => {
  const before = JSON.stringify(await w.store.agreements.getAgreement('ward-quang-trung-2026'))
  const widen = await app.inject({ method: 'PUT', url: '/v1/agreements/ward-quang-trung-2026', headers: as(tokens.requester), payload: { requester: CODES.requester, documentTypes: ['xac-nhan-tinh-trang-hon-nhan'], procedureCodes: [PROCEDURE], fields: { 'xac-nhan-tinh-trang-hon-nhan': ['*'] }, validFrom: '2026-01-01' } })
  t.equal(widen.statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: '/v1/agreements', headers: as(tokens.requester) })).statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: `/v1/agencies/${CODES.otherRequester}`, headers: as(tokens.requester) })).statusCode, 403)
  t.equal(JSON.stringify(await w.store.agreements.getAgreement('ward-quang-trung-2026')), before, 'unchanged')
})
