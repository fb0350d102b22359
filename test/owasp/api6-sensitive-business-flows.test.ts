// OWASP API Security Top 10 (2023) — API6: Unrestricted Access to Sensitive Business Flows.
// The flows worth abusing here are the release of a citizen's results and the files behind
// them. Tested: a requester sweeping many citizens leaves one audited, countable event per
// subject; a download link is single use and its owner's only; a consent token opens one dossier
// of one procedure for one requester, not a second, and not after it is withdrawn, expired or
// made to last too long; hidden queries need an agreement that allows them; an agreement's
// suspension or validity takes effect on the next query; a revoked or superseded result is never
// released as valid; indexing cannot be replayed into duplicates or into another issuer's result.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { AGREEMENT, AGREEMENT_ID, CODES, DOSSIER, PROCEDURE, bearer, buildWorld, consentToken, downloadLink, reuseQuery, sample } from '../lib/world.js'
import { makeAgency, register, tokenFor } from '../lib/agencies.js'

const w = await buildWorld(t)
const { app, tokens } = w
const query = async (body: Record<string, unknown>, token = tokens.requester) =>
  await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(token), payload: body })
const putAgreement = async (changes: Record<string, unknown>) => {
  const res = await app.inject({ method: 'PUT', url: `/v1/agreements/${AGREEMENT_ID}`, headers: bearer(tokens.admin), payload: { ...AGREEMENT, ...changes } })
  if (res.statusCode >= 300) throw new Error(res.body)
}

t.test('a sweep over many citizens: each query audited with its subject and purpose, and counted', async (t) => {
  const citizens = ['001099000001', '079188000002', '048200000003', '001099000004', '036195000005', '092201000006']
  const before = (await app.audit.search({ action: 'reuse.queried', agency: CODES.requester, limit: 1000 })).events.length
  for (const id of citizens) {
    const res = await query({ ...reuseQuery(w), subject: { kind: 'citizen', id }, mode: 'status' })
    t.equal(res.statusCode, 200)
    t.same(res.json().results[0].documents, [], 'nothing for citizens with no result')
  }
  const events = (await app.audit.search({ action: 'reuse.queried', agency: CODES.requester, limit: 1000 })).events
  t.equal(events.length - before, citizens.length, 'one event per query, empty answers included')
  const sweep = events.slice(0, citizens.length)
  t.equal(new Set(sweep.map((e) => e.subject)).size, citizens.length, 'each with its own subject hash: an auditor sees the sweep')
  t.ok(sweep.every((e) => e.purpose?.dossierCode === DOSSIER && e.purpose.procedureCode === PROCEDURE), 'and the dossier it was made for')
  t.notOk(JSON.stringify(sweep).includes(citizens[0] as string), 'no identifier in clear')
  const stats = await app.inject({ method: 'GET', url: '/v1/stats/reuse?groupBy=agency', headers: bearer(tokens.auditor) })
  t.equal(stats.statusCode, 200)
  t.match(stats.body, new RegExp(CODES.requester.replace(/\./g, '\\.')), 'the statistics count the requester\'s queries')
})

t.test('a download link is used once, by its owner only', async (t) => {
  const link = await downloadLink(w)
  t.equal((await app.inject({ method: 'GET', url: link, headers: bearer(tokens.otherRequester) })).statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: link, headers: bearer(tokens.requester) })).statusCode, 200)
  const again = await app.inject({ method: 'GET', url: link, headers: bearer(tokens.requester) })
  t.equal(again.statusCode, 404, 'used up')
  t.equal(again.json().code, 'download_not_found')
  const guessed = await app.inject({ method: 'GET', url: `/v1/files/${'A'.repeat(43)}`, headers: bearer(tokens.requester) })
  t.equal(guessed.statusCode, 404, 'a made-up link is unknown')
  const status = await query({ ...reuseQuery(w), mode: 'status' })
  t.notMatch(status.body, /\/v1\/files\//, 'status mode hands out no link')
})

t.test('a consent token opens its own dossier, procedure and requester only; withdrawn, expired or too long-lived it opens nothing', async (t) => {
  const crime = reuseQuery(w, ['phieu-ly-lich-tu-phap'])
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['another dossier', { ...crime, purpose: { procedureCode: PROCEDURE, dossierCode: '000.20.41.H41-260301-0999' }, consentToken: await consentToken(w) }, 'consent_wrong_dossier'],
    ['another procedure', { ...crime, consentToken: await consentToken(w, { procedure_code: '2.000001' }) }, 'consent_wrong_procedure'],
    ['another requester', { ...crime, consentToken: await consentToken(w, { azp: CODES.otherRequester }) }, 'consent_wrong_requester'],
    ['another type', { ...crime, consentToken: await consentToken(w, { document_types: ['giay-khai-sinh'] }) }, 'consent_wrong_types'],
    ['expired', { ...crime, consentToken: await consentToken(w, { iat: now - 7200, exp: now - 3600 }) }, 'consent_expired'],
    ['longer than 30 days', { ...crime, consentToken: await consentToken(w, { exp: now + 31 * 86_400 }) }, 'consent_invalid']
  ]
  for (const [what, body, code] of cases) {
    const res = await query(body)
    t.equal(res.statusCode, 403, what)
    t.equal(res.json().code, code, what)
  }
  const given = await consentToken(w)
  t.equal((await query({ ...crime, consentToken: given })).statusCode, 200, 'the right token works')
  t.equal((await query({ ...crime, consentToken: given })).statusCode, 200, 'for the same dossier again (the clerk re-checks)')
  const jti = JSON.parse(Buffer.from(given.split('.')[1] as string, 'base64url').toString()).jti
  t.equal((await app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: bearer(tokens.requester), payload: { consentId: jti } })).statusCode, 403, 'a requester cannot withdraw (or fake-withdraw) a consent')
  t.equal((await app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: bearer(tokens.portal), payload: { consentId: jti } })).statusCode, 204)
  const after = await query({ ...crime, consentToken: given })
  t.equal(after.statusCode, 403)
  t.equal(after.json().code, 'consent_revoked')
})

t.test('hidden queries need an agreement that allows them, and a date the citizen will see them from', async (t) => {
  const hidden = await query(reuseQuery(w, ['giay-khai-sinh'], { hidden: true, hiddenUntil: '2027-01-01' }))
  t.equal(hidden.statusCode, 403)
  t.equal(hidden.json().code, 'hidden_not_allowed')
  await putAgreement({ hiddenAllowed: true })
  const noDate = await query(reuseQuery(w, ['giay-khai-sinh'], { hidden: true }))
  t.equal(noDate.statusCode, 400)
  t.equal(noDate.json().code, 'hidden_until_required')
  t.equal((await query(reuseQuery(w, ['giay-khai-sinh'], { hidden: true, hiddenUntil: '2027-01-01' }))).statusCode, 200)
  await putAgreement({})
})

t.test('an agreement suspended, not yet valid or ended stops releases on the next query', async (t) => {
  t.equal((await query(reuseQuery(w))).statusCode, 200)
  for (const changes of [{ status: 'suspended' }, { validFrom: '2999-01-01' }, { validFrom: '2020-01-01', validUntil: '2021-01-01' }]) {
    await putAgreement(changes)
    const res = await query(reuseQuery(w))
    t.equal(res.statusCode, 403, JSON.stringify(changes))
    t.equal(res.json().code, 'no_agreement')
    t.notMatch(res.body, /fullName/)
  }
  await putAgreement({})
  t.equal((await query(reuseQuery(w))).statusCode, 200, 'restored')
})

t.test('a revoked or superseded result is never released as valid; the lifecycle cannot be replayed', async (t) => {
  const doc = { ...sample('giay-khai-sinh'), subject: { kind: 'citizen' as const, id: w.citizen }, documentNumber: `BF-${randomUUID().slice(0, 8)}` }
  const created = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(tokens.issuer), payload: doc })
  t.equal(created.statusCode, 201)
  const id = created.json().id
  const retried = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(tokens.issuer), payload: doc })
  t.equal(retried.statusCode, 200, 'a retry is the same document, not a second one')
  t.equal(retried.json().id, id)
  const changed = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(tokens.issuer), payload: { ...doc, data: { ...doc.data, fullName: 'Tên Khác' } } })
  t.equal(changed.statusCode, 409, 'other content under the same number is not silently overwritten')
  t.equal(changed.json().code, 'document_exists')
  const elsewhere = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(tokens.otherIssuer), payload: doc })
  t.equal(elsewhere.statusCode, 201, 'another issuer\'s number space is its own')
  t.not(elsewhere.json().id, id)

  const amended = await app.inject({ method: 'POST', url: `/v1/documents/${id}/amend`, headers: bearer(tokens.issuer), payload: { procedureCode: PROCEDURE, dossierCode: DOSSIER, data: doc.data, reason: 'Cải chính' } })
  t.equal(amended.statusCode, 201)
  const released = (await query(reuseQuery(w))).json().results[0].documents as Array<{ id: string, version: number }>
  t.same(released.filter((d) => d.id === id).map((d) => d.version), [2], 'only the latest version is released')
  t.equal((await app.inject({ method: 'POST', url: `/v1/documents/${id}/revoke`, headers: bearer(tokens.issuer), payload: { reason: 'Cấp sai' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/v1/documents/${id}/revoke`, headers: bearer(tokens.issuer), payload: { reason: 'Lần nữa' } })).statusCode, 409, 'revoked once')
  const late = await app.inject({ method: 'POST', url: `/v1/documents/${id}/amend`, headers: bearer(tokens.issuer), payload: { procedureCode: PROCEDURE, dossierCode: DOSSIER, data: doc.data, reason: 'Sửa lại' } })
  t.equal(late.statusCode, 409, 'a revoked result cannot be revived by an amendment')
  t.equal(late.json().code, 'document_revoked')
  const after = (await query(reuseQuery(w))).json().results[0].documents as Array<{ id: string }>
  t.notOk(after.some((d) => d.id === id), 'the revoked result is not released')
})

t.test('an agency\'s token is its own flow: a new requester gets nothing until an agreement names it', async (t) => {
  const newcomer = await makeAgency('000.00.71.H41')
  await register(app, tokens.admin, newcomer, ['requester'])
  const token = await tokenFor(app, newcomer)
  const res = await query(reuseQuery(w), token)
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'no_agreement')
})
