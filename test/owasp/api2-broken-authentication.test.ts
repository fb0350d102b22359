// OWASP API Security Top 10 (2023) — API2: Broken Authentication.
// The two ways in — a client assertion at the token endpoint and an access token on every other
// route — against each forgery and misuse: a replayed assertion, expired or not yet valid, for
// another audience, alg none, HS256 keyed with the public key, an unknown kid, another agency's
// key, a suspended agency, a key rotated out, an access token past its expiry, a token from
// another gateway, missing and garbled Authorization headers. Each is a 401 with WWW-Authenticate
// naming the failed check, leaking no key material, and on record.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { base64url, decodeJwt, decodeProtectedHeader, importJWK, SignJWT } from 'jose'
import { build } from '../helper.js'
import { assertion, makeAgency, register, requestToken, tokenFor } from '../lib/agencies.js'
import { refusalsOnRecord } from '../lib/refusals.js'
import { CODES, bearer, buildWorld, consentToken } from '../lib/world.js'

const w = await buildWorld(t)
const { app } = w
const now = (): number => Math.floor(Date.now() / 1000)

/** What no refusal may carry: private or public key members, a stack, the token it was sent. */
function noLeak (t: Test, res: LightMyRequestResponse, sent?: string): void {
  t.notMatch(res.body, /"(d|x|y|n|e|k|p|q)":|BEGIN |at .*\.ts:\d+/, 'no key material or stack in the answer')
  if (sent) t.notOk(res.body.includes(sent), 'the credential is not echoed')
}

function refusedAssertion (t: Test, res: LightMyRequestResponse, code: string, sent?: string): void {
  t.equal(res.statusCode, 401, `${code}: 401`)
  t.equal(res.json().error, 'invalid_client')
  t.equal(res.json().code, code)
  // the token endpoint is not a resource server: no Bearer challenge (RFC 6749 §5.2)
  t.equal(res.headers['www-authenticate'], undefined, `${code}: no Bearer challenge`)
  noLeak(t, res, sent)
}

async function call (authorization: string | undefined): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url: '/v1/discovery', headers: authorization === undefined ? {} : { authorization } })
}

function refusedToken (t: Test, res: LightMyRequestResponse, code: string, sent?: string): void {
  t.equal(res.statusCode, 401, `${code}: 401`)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/)
  t.equal(res.json().code, code)
  t.match(String(res.headers['www-authenticate']), /^Bearer realm="reuse-gateway"/)
  noLeak(t, res, sent)
}

t.test('client assertions: each forgery and misuse refused with the check that failed', async (t) => {
  const issuer = w.agencies.issuer
  const once = await assertion(app, issuer)
  t.equal((await requestToken(app, once)).statusCode, 200, 'baseline: a fresh assertion')
  refusedAssertion(t, await requestToken(app, once), 'assertion_replayed', once)

  const payload = (claims: Record<string, unknown> = {}): Record<string, unknown> => ({ iss: issuer.code, sub: issuer.code, aud: app.config.gatewayIssuer, jti: randomUUID(), iat: now(), exp: now() + 60, ...claims })
  const none = `${base64url.encode(JSON.stringify({ alg: 'none', kid: issuer.privateKey.kid }))}.${base64url.encode(JSON.stringify(payload()))}.`
  const hs256 = await new SignJWT(payload()).setProtectedHeader({ alg: 'HS256', kid: issuer.privateKey.kid }).sign(new TextEncoder().encode(JSON.stringify(issuer.jwks.keys[0])))
  const otherKey = w.agencies.requester.privateKey
  const cases: Array<[string, string]> = [
    ['assertion_expired', await assertion(app, issuer, { iat: now() - 600, exp: now() - 300 })],
    ['assertion_not_yet_valid', await assertion(app, issuer, { iat: now() + 300, exp: now() + 360 })],
    ['assertion_not_yet_valid', await assertion(app, issuer, { claims: { nbf: now() + 300 } })],
    ['audience_invalid', await assertion(app, issuer, { claims: { aud: 'https://another-gateway.example.gov.vn' } })],
    ['alg_not_allowed', none],
    ['alg_not_allowed', hs256],
    ['kid_unknown', await assertion(app, issuer, { header: { kid: 'retired-or-invented' } })],
    // another agency's key, named by its own kid, or passed off under this agency's kid
    ['kid_unknown', await assertion(app, issuer, { signWith: otherKey })],
    ['signature_invalid', await assertion(app, issuer, { signWith: { ...otherKey, kid: issuer.privateKey.kid } })],
    ['iss_sub_mismatch', await assertion(app, issuer, { claims: { sub: CODES.admin } })],
    ['assertion_malformed', 'not.a.jwt'],
    ['assertion_malformed', `${once}.extra`]
  ]
  for (const [code, sent] of cases) refusedAssertion(t, await requestToken(app, sent), code, sent)

  // a gateway access token is not a client assertion
  const accessToken = w.tokens.issuer
  refusedAssertion(t, await requestToken(app, accessToken), 'issuer_invalid', accessToken)
  // repeated refusals (same address and check) are summarized per interval
  await app.refusals.flush()
  const refusals = await app.audit.search({ action: 'token.refused', limit: 100 })
  t.ok(refusalsOnRecord(refusals.events) >= cases.length + 2, 'every refusal on record')
  t.ok(refusals.events.every((e) => typeof e.detail?.code === 'string'), 'with the check that failed')
})

t.test('suspended agencies and rotated-out keys: no new token, and the old ones stop working', async (t) => {
  const agency = await makeAgency('000.00.41.H41')
  await register(app, w.tokens.admin, agency, ['requester'])
  const token = await tokenFor(app, agency)
  t.equal((await call(`Bearer ${token}`)).statusCode, 200)

  // the key is rotated: the new key is registered, the old one removed
  const rotated = await makeAgency(agency.code)
  await register(app, w.tokens.admin, rotated, ['requester'])
  refusedToken(t, await call(`Bearer ${token}`), 'key_removed', token)
  refusedAssertion(t, await requestToken(app, await assertion(app, agency)), 'kid_unknown')
  const fresh = await tokenFor(app, rotated)
  t.equal((await call(`Bearer ${fresh}`)).statusCode, 200, 'the new key works')

  await register(app, w.tokens.admin, rotated, ['requester'], { status: 'suspended' })
  refusedToken(t, await call(`Bearer ${fresh}`), 'agency_suspended', fresh)
  refusedAssertion(t, await requestToken(app, await assertion(app, rotated)), 'agency_suspended')
  await register(app, w.tokens.admin, rotated, ['requester'])
  t.equal((await call(`Bearer ${fresh}`)).statusCode, 200, 'reactivated, its token works again within its lifetime')
})

t.test('access tokens: expired, for another audience, from another gateway, forged or of the wrong kind', async (t) => {
  const claims = decodeJwt(w.tokens.requester)
  const kid = decodeProtectedHeader(w.tokens.requester).kid as string
  const expired = await app.signingKeys.sign({ ...claims, jti: randomUUID(), iat: now() - 3600, exp: now() - 600 }, 'at+jwt')
  refusedToken(t, await call(`Bearer ${expired}`), 'token_expired', expired)
  const withinSkew = await app.signingKeys.sign({ ...claims, jti: randomUUID(), iat: now() - 300, exp: now() - 30 }, 'at+jwt')
  t.equal((await call(`Bearer ${withinSkew}`)).statusCode, 200, 'within the 60 s clock tolerance')
  const audience = await app.signingKeys.sign({ ...claims, jti: randomUUID(), aud: 'https://another-gateway.example.gov.vn' }, 'at+jwt')
  refusedToken(t, await call(`Bearer ${audience}`), 'audience_invalid', audience)
  const issuerClaim = await app.signingKeys.sign({ ...claims, jti: randomUUID(), iss: 'https://another-gateway.example.gov.vn' }, 'at+jwt')
  refusedToken(t, await call(`Bearer ${issuerClaim}`), 'issuer_invalid', issuerClaim)

  // another gateway, with its own keys, issues a token for the same agency code
  const elsewhere = await build(t, { env: { GATEWAY_ISSUER: 'https://gateway.other-province.gov.vn', OUTBOX_WORKER: 'false' } })
  const foreign = await elsewhere.signingKeys.sign({ ...claims, iss: 'https://gateway.other-province.gov.vn', aud: 'https://gateway.other-province.gov.vn', jti: randomUUID() }, 'at+jwt')
  refusedToken(t, await call(`Bearer ${foreign}`), 'kid_unknown', foreign)
  const foreignSameKid = await new SignJWT({ ...claims, jti: randomUUID() }).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
    .sign(await importJWK((await makeAgency(CODES.requester, 'EdDSA')).privateKey, 'EdDSA'))
  refusedToken(t, await call(`Bearer ${foreignSameKid}`), 'signature_invalid', foreignSameKid)

  const [h, , s] = w.tokens.requester.split('.')
  const elevated = `${h}.${base64url.encode(JSON.stringify({ ...claims, scope: 'admin documents:reuse' }))}.${s}`
  refusedToken(t, await call(`Bearer ${elevated}`), 'signature_invalid', elevated)
  const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid }))}.${base64url.encode(JSON.stringify(claims))}.`
  refusedToken(t, await call(`Bearer ${none}`), 'alg_not_allowed', none)
  const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(new TextEncoder().encode(JSON.stringify(app.signingKeys.jwks().keys[0])))
  refusedToken(t, await call(`Bearer ${hs}`), 'alg_not_allowed', hs)
  const consent = await consentToken(w)
  t.equal((await call(`Bearer ${consent}`)).statusCode, 401, 'a consent token is not an access token')
  const clientAssertion = await assertion(app, w.agencies.requester)
  t.equal((await call(`Bearer ${clientAssertion}`)).statusCode, 401, 'nor is a client assertion')
})

t.test('missing and garbled Authorization headers', async (t) => {
  const token = w.tokens.requester
  refusedToken(t, await call(undefined), 'token_missing')
  t.notMatch(String((await call(undefined)).headers['www-authenticate']), /error=/, 'no error attribute when no credentials were sent (RFC 6750 §3.1)')
  const garbled: Array<[string, string]> = [
    ['', 'token_missing'],
    ['Bearer', 'token_malformed'],
    ['Bearer ', 'token_malformed'],
    [`Basic ${Buffer.from(`${CODES.requester}:secret`).toString('base64')}`, 'token_malformed'],
    [`Token ${token}`, 'token_malformed'],
    [`Bearer  ${token}`, 'token_malformed'],
    [`Bearer ${token} extra`, 'token_malformed'],
    [`Bearer ${token},Bearer ${token}`, 'token_malformed'],
    [`Bearer ${token.slice(0, -12)}`, 'signature_invalid'],
    [`Bearer ${token.split('.').slice(0, 2).join('.')}`, 'token_malformed'],
    [`Bearer ${'A'.repeat(9000)}.${'B'.repeat(10)}.${'C'.repeat(10)}`, 'token_malformed'],
    ['Bearer ....', 'token_malformed'],
    [`Bearer ${base64url.encode('{"alg":')}.e30.AAAA`, 'token_malformed']
  ]
  for (const [authorization, code] of garbled) refusedToken(t, await call(authorization), code, authorization.length > 8 ? authorization.slice(7) : undefined)
  // the scheme name is case-insensitive (RFC 9110 §11.1)
  t.equal((await call(`bearer ${token}`)).statusCode, 200)
  t.equal((await call(`BEARER ${token}`)).statusCode, 200)
})
