import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify } from 'jose'
import * as client from 'openid-client'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'
import { startGateway } from './lib/gateway-process.js'
import type { AgencyPrivateKey } from '../src/cli/agency-keys.js'

/**
 * The gateway as an integrator meets it with an off-the-shelf OAuth client (openid-client v6,
 * which follows RFC 8414, 7523 and 9864 strictly), over real HTTP on a loopback port: discovery,
 * client credentials with private_key_jwt for every key type an agency may register, a call with
 * the token, and every refusal surfacing as an OAuth error the library understands.
 */

interface Gateway {
  app: FastifyInstance
  issuer: string
  admin: TestAgency
  adminToken: string
}

/** The app on a random loopback port, its issuer being the URL a client is given. */
async function gateway (t: Test): Promise<Gateway> {
  // the port is taken first so that GATEWAY_ISSUER can name it; requests are handed to the app
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const admin = await makeAgency(ADMIN_CODE, 'EdDSA')
  const app = await build(t, { env: { ...adminEnv(admin), GATEWAY_ISSUER: issuer } })
  server.on('request', (request, response) => app.server.emit('request', request, response))
  return { app, issuer, admin, adminToken: await tokenFor(app, admin) }
}

async function signingKey (privateKey: AgencyPrivateKey): Promise<client.CryptoKey> {
  return await importJWK(privateKey, privateKey.alg) as client.CryptoKey
}

/** What an integrator writes: discovery from the issuer URL, authenticating with private_key_jwt. */
async function configure (issuer: string, agency: TestAgency, options: { kid?: string, modify?: client.ModifyAssertionFunction } = {}): Promise<client.Configuration> {
  const key = { key: await signingKey(agency.privateKey), kid: options.kid ?? agency.privateKey.kid }
  const auth = client.PrivateKeyJwt(key, options.modify ? { [client.modifyAssertion]: options.modify } : {})
  return await client.discovery(new URL(issuer), agency.code, undefined, auth, { algorithm: 'oauth2', execute: [client.allowInsecureRequests] })
}

/** The grant must fail as an RFC 6749 §5.2 error: no challenge, `error` and the gateway's `code`. */
async function refused (t: Test, grant: Promise<unknown>, status: number, error: string, code: string): Promise<void> {
  const err = await grant.then(() => undefined, (err: unknown) => err)
  t.type(err, client.ResponseBodyError, `${code}: an OAuth error, not ${(err as Error | undefined)?.constructor.name ?? 'a success'}`)
  if (!(err instanceof client.ResponseBodyError)) return
  t.equal(err.status, status, `${code}: status ${status}`)
  t.equal(err.error, error, `${code}: error ${error}`)
  t.equal(err.cause.code, code, `${code}: the check that failed`)
  t.type(err.error_description, 'string')
  t.equal(err.response.headers.get('www-authenticate'), null, `${code}: no WWW-Authenticate challenge from the token endpoint`)
}

const REQUESTERS: Array<{ code: string, alg: 'ES256' | 'EdDSA' | 'RS256' | 'PS256', declared?: string, label: string }> = [
  { code: '000.20.41.H41', alg: 'ES256', label: 'ES256' },
  { code: '000.20.42.H41', alg: 'EdDSA', label: 'Ed25519 key registered as EdDSA' },
  { code: '000.20.43.H41', alg: 'EdDSA', declared: 'Ed25519', label: 'Ed25519 key registered as Ed25519' },
  { code: '000.20.44.H41', alg: 'RS256', label: 'RS256' },
  { code: '000.20.45.H41', alg: 'PS256', label: 'PS256' }
]

t.test('discovery, client credentials with private_key_jwt for each key type, a protected call', async (t) => {
  const gw = await gateway(t)
  for (const requester of REQUESTERS) {
    const agency = await makeAgency(requester.code, requester.alg)
    if (requester.declared) agency.jwks.keys = agency.jwks.keys.map((key) => ({ ...key, alg: requester.declared }))
    await register(gw.app, gw.adminToken, agency, ['requester'])

    const config = await configure(gw.issuer, agency)
    const metadata = config.serverMetadata()
    t.equal(metadata.issuer, gw.issuer)
    t.same(metadata.token_endpoint_auth_signing_alg_values_supported?.filter((alg) => alg === 'EdDSA' || alg === 'Ed25519').sort(), ['Ed25519', 'EdDSA'], 'both names of Ed25519 signatures are listed')

    const tokens = await client.clientCredentialsGrant(config, { scope: 'documents:reuse' })
    t.equal(tokens.token_type, 'bearer', requester.label)
    t.equal(tokens.scope, 'documents:reuse')
    t.ok((tokens.expiresIn() ?? 0) > 0)

    const call = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${gw.issuer}/v1/discovery`), 'GET')
    t.equal(call.status, 200, `${requester.label}: the token opens a protected route`)
    t.equal((await call.json() as { agency: string }).agency, agency.code)

    // RFC 9068: what a resource server checks, with the published keys and nothing else
    t.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt')
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(metadata.jwks_uri as string)), { issuer: gw.issuer, audience: gw.issuer, typ: 'at+jwt' })
    for (const claim of ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti', 'scope']) t.ok(payload[claim] !== undefined, `access token claim ${claim}`)
    t.equal(payload.client_id, agency.code, 'client_id is the agency that obtained the token')
    t.equal(payload.sub, agency.code)
  }
})

t.test('every refused assertion is an OAuth error with its code, never a challenge', async (t) => {
  const gw = await gateway(t)
  const es = await makeAgency('000.20.41.H41', 'ES256')
  const rs = await makeAgency('000.20.44.H41', 'RS256')
  const ed = await makeAgency('000.20.42.H41', 'EdDSA')
  for (const agency of [es, rs, ed]) await register(gw.app, gw.adminToken, agency, ['requester'])

  // openid-client makes a fresh jti for each request; a fixed one is what a replay looks like
  const jti = `replayed-${Date.now()}`
  const replaying = await configure(gw.issuer, es, { modify: (_header, payload) => { payload.jti = jti } })
  t.ok((await client.clientCredentialsGrant(replaying)).access_token, 'the first use of the assertion id works')
  await refused(t, client.clientCredentialsGrant(replaying), 401, 'invalid_client', 'assertion_replayed')

  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, es, { modify: (_header, payload) => { payload.aud = 'https://another-gateway.example' } })), 401, 'invalid_client', 'audience_invalid')
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, es, { modify: (_header, payload) => { payload.exp = (payload.iat as number) + 3600 } })), 401, 'invalid_client', 'assertion_lifetime_too_long')
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, es, {
    modify: (_header, payload) => {
      const past = (payload.iat as number) - 600
      Object.assign(payload, { iat: past, nbf: past, exp: past + 60 })
    }
  })), 401, 'invalid_client', 'assertion_expired')
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, es, { modify: (header) => { header.alg = 'HS256' } })), 401, 'invalid_client', 'alg_not_allowed')
  // an RS256 key used under PS256: the key is registered for RS256
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, rs, { modify: (header) => { header.alg = 'PS256' } })), 401, 'invalid_client', 'alg_mismatch')
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, es, { kid: 'no-such-key' })), 401, 'invalid_client', 'kid_unknown')
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, es), { scope: 'admin' }), 400, 'invalid_scope', 'invalid_scope')

  // the same Ed25519 key is accepted under both names, and refused once its agency is suspended
  t.ok((await client.clientCredentialsGrant(await configure(gw.issuer, ed, { modify: (header) => { header.alg = 'EdDSA' } }))).access_token, 'alg EdDSA')
  t.ok((await client.clientCredentialsGrant(await configure(gw.issuer, ed))).access_token, 'alg Ed25519, openid-client\'s default')
  await register(gw.app, gw.adminToken, ed, ['requester'], { status: 'suspended' })
  await refused(t, client.clientCredentialsGrant(await configure(gw.issuer, ed)), 401, 'invalid_client', 'agency_suspended')
})

t.test('a client that authenticates with the Authorization header is challenged in its own scheme (RFC 6749 §5.2)', async (t) => {
  const gw = await gateway(t)
  const res = await fetch(`${gw.issuer}/v1/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('000.20.41.H41:secret').toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials' })
  })
  t.equal(res.status, 401)
  t.equal(res.headers.get('www-authenticate'), 'Basic realm="reuse-gateway"')
  const body = await res.json() as { error: string, code: string }
  t.equal(body.error, 'invalid_client')
  t.equal(body.code, 'client_auth_method_unsupported')
})

t.test('an Ed25519 key signs under either name, registered inline or published at a jwksUri', async (t) => {
  const gw = await gateway(t)
  const declared = await makeAgency('000.20.43.H41', 'EdDSA')
  declared.jwks.keys = declared.jwks.keys.map((key) => ({ ...key, alg: 'Ed25519' }))
  await register(gw.app, gw.adminToken, declared, ['requester'])
  t.ok((await client.clientCredentialsGrant(await configure(gw.issuer, declared, { modify: (header) => { header.alg = 'EdDSA' } }))).access_token, 'declared Ed25519, signed EdDSA')

  // keys at a jwks_uri, one declared under each name
  const published = await makeAgency('000.20.46.H41', 'EdDSA')
  const second = await makeAgency('000.20.46.H41', 'EdDSA')
  const keys = [published.jwks.keys[0], { ...second.jwks.keys[0], alg: 'Ed25519' }]
  const jwksServer = createServer((_request, response) => { response.setHeader('content-type', 'application/json'); response.end(JSON.stringify({ keys })) })
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { jwksServer.closeAllConnections(); jwksServer.close() })
  await register(gw.app, gw.adminToken, published, ['requester'], { jwks: undefined, jwksUri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json` })
  t.ok((await client.clientCredentialsGrant(await configure(gw.issuer, published))).access_token, 'published EdDSA, signed Ed25519')
  t.ok((await client.clientCredentialsGrant(await configure(gw.issuer, second, { modify: (header) => { header.alg = 'EdDSA' } }))).access_token, 'published Ed25519, signed EdDSA')
})

t.test('discovery from the URL the first start prints passes the issuer check', async (t) => {
  // a free port, named in advance: with PORT=0 no default issuer can name the port
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))

  const demoDir = mkdtempSync(join(tmpdir(), 'rg-demo-'))
  const started = await startGateway({ PORT: String(port), DEMO_DIR: demoDir })
  t.teardown(async () => { await started.stop() })
  for (let i = 0; i < 1200 && !started.stderr().includes('API reference'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const printed = /API reference: (\S+)\/docs/.exec(started.stderr())?.[1]
  t.ok(printed, 'the banner prints the gateway URL')

  const admin = JSON.parse(readFileSync(join(demoDir, `${ADMIN_CODE}.private.jwk.json`), 'utf8')) as AgencyPrivateKey
  const config = await client.discovery(new URL(printed as string), ADMIN_CODE, undefined, client.PrivateKeyJwt({ key: await signingKey(admin), kid: admin.kid }), { algorithm: 'oauth2', execute: [client.allowInsecureRequests] })
  t.equal(config.serverMetadata().issuer, printed)
  const tokens = await client.clientCredentialsGrant(config)
  const call = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${printed as string}/v1/agencies`), 'GET')
  t.equal(call.status, 200)
})
