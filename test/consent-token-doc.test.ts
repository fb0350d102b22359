import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose'
import type { JWK } from 'jose'
import { makeAgency, register } from './lib/agencies.js'
import { bearer, buildWorld, CODES, DOSSIER, PROCEDURE } from './lib/world.js'

/**
 * A portal team mints consent tokens from docs/consent-token.md alone: every token below is
 * built here with jose from what that page says (not with the gateway's own helpers), and each
 * rule the page states is broken once, expecting the code the page gives for it.
 */
const w = await buildWorld(t)
const portalKey = w.agencies.portal.privateKey as JWK & { kid: string, alg: string }
const CRIMINAL_RECORD = 'phieu-ly-lich-tu-phap'

interface Mint {
  claims?: Record<string, unknown>
  /** claims left out of the payload */
  without?: string[]
  header?: Record<string, unknown>
  /** header members left out */
  headerWithout?: string[]
  key?: JWK & { alg: string }
}

/** "Claims": the citizen, the requester, the types, the procedure, the dossier, iat, exp ≤ 30 days, a jti. */
async function mint (options: Mint = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload: Record<string, unknown> = {
    iss: CODES.portal,
    sub: w.citizen,
    azp: CODES.requester,
    document_types: [CRIMINAL_RECORD],
    procedure_code: PROCEDURE,
    dossier_code: DOSSIER,
    iat: now,
    exp: now + 7 * 86_400,
    jti: randomUUID(),
    ...options.claims
  }
  for (const claim of options.without ?? []) delete payload[claim]
  const key = options.key ?? portalKey
  const header: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'consent+jwt', ...options.header }
  for (const member of options.headerWithout ?? []) delete header[member]
  return await new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(await importJWK(key, key.alg))
}

async function query (consentToken: string | undefined, purpose = { procedureCode: PROCEDURE, dossierCode: DOSSIER }) {
  return await w.app.inject({
    method: 'POST',
    url: '/v1/reuse-queries',
    headers: bearer(w.tokens.requester),
    payload: { subject: { kind: 'citizen', id: w.citizen }, documentTypes: [CRIMINAL_RECORD], purpose, ...(consentToken === undefined ? {} : { consentToken }) }
  })
}

async function expectRefused (tt: Test, token: string | undefined, code: string, purpose?: { procedureCode: string, dossierCode: string }): Promise<void> {
  const res = await query(token, purpose)
  tt.equal(res.statusCode, 403, res.body)
  tt.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  tt.equal(res.json().code, code)
}

t.test('a token minted as the page says is accepted', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  for (const [name, options] of [
    ['typ consent+jwt', {}],
    ['no typ', { headerWithout: ['typ'] }],
    ['typ JWT', { header: { typ: 'JWT' } }],
    ['typ application/consent+jwt', { header: { typ: 'application/consent+jwt' } }],
    ['lasting exactly 30 days', { claims: { iat: now, exp: now + 30 * 86_400 } }],
    ['iat 30 s ahead of the gateway', { claims: { iat: now + 30, exp: now + 3600 } }],
    ['a past nbf, an aud and claims the gateway does not read', { claims: { nbf: now - 10, aud: 'anything', consent_text: 'Tôi đồng ý' } }],
    ['more types than the query asks for', { claims: { document_types: [CRIMINAL_RECORD, 'giay-khai-sinh'] } }]
  ] as Array<[string, Mint]>) {
    const res = await query(await mint(options))
    t.equal(res.statusCode, 200, `${name}: ${res.body}`)
    t.equal(res.json().results[0].documentType, CRIMINAL_RECORD, name)
  }
})

t.test('a portal with an Ed25519 key signs with EdDSA', async (t) => {
  const portal = await makeAgency('000.00.00.G23', 'EdDSA')
  await register(w.app, w.tokens.admin, portal, ['portal'])
  const res = await query(await mint({ claims: { iss: portal.code }, key: portal.privateKey }))
  t.equal(res.statusCode, 200, res.body)
})

t.test('no token where a type needs consent: consent_required', async (t) => {
  await expectRefused(t, undefined, 'consent_required')
})

t.test('header rules: consent_invalid', async (t) => {
  const secret = randomBytes(32)
  const hs256 = await new SignJWT({ iss: CODES.portal, sub: w.citizen }).setProtectedHeader({ alg: 'HS256', kid: portalKey.kid }).sign(secret)
  const otherKeys = await generateKeyPair('ES256', { extractable: true })
  const stranger = { ...(await exportJWK(otherKeys.privateKey)), kid: portalKey.kid, alg: 'ES256' }
  const cases: Array<[string, string]> = [
    ['not a compact JWS', 'not-a-jwt'],
    ['alg HS256', hs256],
    ['no kid', await mint({ headerWithout: ['kid'] })],
    ['typ at+jwt', await mint({ header: { typ: 'at+jwt' } })],
    ['typ reuse-attestation+jwt', await mint({ header: { typ: 'reuse-attestation+jwt' } })],
    ['a kid the portal has not registered', await mint({ header: { kid: 'not-a-registered-key' } })],
    ['signed with a key the portal has not registered', await mint({ key: stranger })]
  ]
  for (const [name, token] of cases) {
    const res = await query(token)
    t.equal(res.statusCode, 403, name)
    t.equal(res.json().code, 'consent_invalid', name)
  }
})

t.test('iss must be an active agency with the portal role: consent_issuer_not_portal', async (t) => {
  // the requester signing its own consent, with its own registered key
  await expectRefused(t, await mint({ claims: { iss: CODES.requester }, key: w.agencies.requester.privateKey }), 'consent_issuer_not_portal')
  await expectRefused(t, await mint({ claims: { iss: '000.00.99.Z99' } }), 'consent_issuer_not_portal')
  await expectRefused(t, await mint({ without: ['iss'] }), 'consent_issuer_not_portal')
})

t.test('required claims and their types: consent_invalid', async (t) => {
  for (const claim of ['sub', 'azp', 'iat', 'exp', 'jti']) {
    const res = await query(await mint({ without: [claim] }))
    t.equal(res.json().code, 'consent_invalid', `without ${claim}`)
  }
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, Record<string, unknown>]> = [
    ['exp 30 days and 1 s after iat', { iat: now, exp: now + 30 * 86_400 + 1 }],
    ['iat not a number', { iat: String(now) }],
    ['jti of 201 characters', { jti: 'j'.repeat(201) }],
    ['empty jti', { jti: '' }],
    ['jti a number', { jti: 42 }],
    ['document_types a string', { document_types: CRIMINAL_RECORD }],
    ['document_types a number', { document_types: 7 }],
    ['document_types with a number', { document_types: [CRIMINAL_RECORD, 7] }]
  ]
  for (const [name, claims] of cases) {
    const res = await query(await mint({ claims }))
    t.equal(res.statusCode, 403, `${name}: ${res.body}`)
    t.equal(res.json().code, 'consent_invalid', name)
  }
})

t.test('lifetime: consent_expired, consent_not_yet_valid', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  await expectRefused(t, await mint({ claims: { iat: now - 7200, exp: now - 3600 } }), 'consent_expired')
  await expectRefused(t, await mint({ claims: { iat: now - 7200, exp: now - 120 } }), 'consent_expired')
  await expectRefused(t, await mint({ claims: { iat: now + 3600, exp: now + 7200 } }), 'consent_not_yet_valid')
  await expectRefused(t, await mint({ claims: { nbf: now + 3600 } }), 'consent_not_yet_valid')
})

t.test('withdrawn by jti with POST /v1/consents/revoke: consent_revoked', async (t) => {
  const jti = randomUUID()
  const token = await mint({ claims: { jti } })
  t.equal((await query(token)).statusCode, 200)
  const revoke = await w.app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: bearer(w.tokens.portal), payload: { consentId: jti, reason: 'the citizen withdrew it on the portal' } })
  t.equal(revoke.statusCode, 204, revoke.body)
  await expectRefused(t, token, 'consent_revoked')
  // a jti of the longest length the page allows can be withdrawn too
  const longJti = 'k'.repeat(200)
  const long = await mint({ claims: { jti: longJti } })
  t.equal((await query(long)).statusCode, 200)
  await w.app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: bearer(w.tokens.portal), payload: { consentId: longJti } })
  await expectRefused(t, long, 'consent_revoked')
})

t.test('bound to the citizen, the requester, the dossier, the procedure and the types', async (t) => {
  await expectRefused(t, await mint({ claims: { sub: '001099099999' } }), 'consent_wrong_subject')
  await expectRefused(t, await mint({ claims: { azp: CODES.otherRequester } }), 'consent_wrong_requester')
  await expectRefused(t, await mint({ claims: { dossier_code: '000.20.41.H41-260301-0002' } }), 'consent_wrong_dossier')
  await expectRefused(t, await mint({ without: ['dossier_code'] }), 'consent_wrong_dossier')
  await expectRefused(t, await mint({ claims: { procedure_code: '1.000002' } }), 'consent_wrong_procedure')
  await expectRefused(t, await mint({ without: ['procedure_code'] }), 'consent_wrong_procedure')
  await expectRefused(t, await mint({ claims: { document_types: ['giay-khai-sinh'] } }), 'consent_wrong_types')
  await expectRefused(t, await mint({ claims: { document_types: [] } }), 'consent_wrong_types')
})

t.test('a token over 8192 characters is a 400 validation_failed', async (t) => {
  const res = await query(await mint({ claims: { padding: 'x'.repeat(9000) } }))
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'validation_failed')
})
