import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { base64url, decodeJwt, decodeProtectedHeader, SignJWT } from 'jose'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, register, requestToken, tokenFor } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'

/**
 * The whole authentication flow, as an agency integrator meets it: register agencies as admin,
 * get tokens with private_key_jwt, call protected routes — and every way it must refuse.
 * Run on the embedded store and on Redis.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const OTHER = '000.00.15.H41'

interface World {
  app: FastifyInstance
  admin: TestAgency
  issuer: TestAgency
  requester: TestAgency
  other: TestAgency
  adminToken: string
}

// one key pair per agency for the whole file (each world is a fresh gateway and store): RSA key
// generation is what made every world slow
const [admin, issuer, requester, other] = await Promise.all([
  makeAgency(ADMIN_CODE, 'EdDSA'), makeAgency(ISSUER, 'ES256'), makeAgency(REQUESTER, 'RS256'), makeAgency(OTHER, 'PS256')
]) as [TestAgency, TestAgency, TestAgency, TestAgency]

async function world (t: Test, store: Stores): Promise<World> {
  const app = await build(t, { store, env: adminEnv(admin) })
  const adminToken = await tokenFor(app, admin)
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  await register(app, adminToken, requester, ['requester'])
  await register(app, adminToken, other, ['issuer', 'requester'], { issuableTypes: ['giay-khai-sinh'] })
  return { app, admin, issuer, requester, other, adminToken }
}

function oauthError (t: Test, res: { statusCode: number, json: () => any, headers: Record<string, unknown> }, status: number, error: string, code: string): void {
  t.equal(res.statusCode, status, `${code}: status ${status}`)
  t.match(String(res.headers['content-type']), /^application\/json/)
  const body = res.json()
  t.equal(body.error, error, `${code}: error ${error}`)
  t.equal(body.code, code, `code ${code}`)
  t.type(body.error_description, 'string')
  t.notMatch(JSON.stringify(body), /"d":|"x":|"n":|BEGIN/, 'no key material in the answer')
}

const get = async (app: FastifyInstance, url: string, token?: string) =>
  await app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('happy path: token, then a protected call', async (t) => {
      const w = await world(t, await makeStore(t))
      const res = await requestToken(w.app, await assertion(w.app, w.issuer))
      t.equal(res.statusCode, 200)
      t.equal(res.headers['cache-control'], 'no-store')
      const body = res.json()
      t.equal(body.token_type, 'Bearer')
      t.equal(body.scope, 'documents:write')
      t.equal(body.expires_in, 300)
      const header = decodeProtectedHeader(body.access_token)
      t.equal(header.typ, 'at+jwt')
      t.ok(['EdDSA', 'ES256'].includes(String(header.alg)))
      const claims = decodeJwt(body.access_token)
      t.equal(claims.sub, ISSUER)
      t.equal(claims.iss, w.app.config.gatewayIssuer)
      t.equal((claims.exp as number) - (claims.iat as number), 300)

      const list = await get(w.app, '/v1/agencies', w.adminToken)
      t.equal(list.statusCode, 200)
      t.same(list.json().agencies.map((a: { code: string }) => a.code), [ADMIN_CODE, ISSUER, OTHER, REQUESTER])
      const one = await get(w.app, `/v1/agencies/${REQUESTER}`, w.adminToken)
      t.same(one.json().scopes, ['documents:reuse'])
      t.same(one.json().roles, ['requester'])
    })

    t.test('the token endpoint audience may be the issuer id or the endpoint URL', async (t) => {
      const w = await world(t, await makeStore(t))
      const res = await requestToken(w.app, await assertion(w.app, w.issuer, { claims: { aud: `${w.app.config.gatewayIssuer}/v1/oauth/token` } }))
      t.equal(res.statusCode, 200)
    })

    t.test('a scope subset may be asked for; a scope not held is invalid_scope', async (t) => {
      const w = await world(t, await makeStore(t))
      const some = await requestToken(w.app, await assertion(w.app, w.other), { scope: 'documents:reuse' })
      t.equal(some.json().scope, 'documents:reuse')
      oauthError(t, await requestToken(w.app, await assertion(w.app, w.requester), { scope: 'admin' }), 400, 'invalid_scope', 'invalid_scope')
      oauthError(t, await requestToken(w.app, await assertion(w.app, w.requester), { scope: 'documents:reuse audit:read' }), 400, 'invalid_scope', 'invalid_scope')
    })

    t.test('every bad client assertion is refused with the check that failed', async (t) => {
      const w = await world(t, await makeStore(t))
      const now = Math.floor(Date.now() / 1000)
      const cases: Array<[string, () => Promise<string>]> = [
        ['assertion_expired', async () => await assertion(w.app, w.issuer, { iat: now - 400, exp: now - 200 })],
        ['assertion_not_yet_valid', async () => await assertion(w.app, w.issuer, { iat: now + 200, exp: now + 250 })],
        ['assertion_not_yet_valid', async () => await assertion(w.app, w.issuer, { claims: { nbf: now + 200 } })],
        ['assertion_lifetime_too_long', async () => await assertion(w.app, w.issuer, { exp: now + 3600 })],
        ['audience_invalid', async () => await assertion(w.app, w.issuer, { claims: { aud: 'https://another-gateway.example' } })],
        ['issuer_invalid', async () => await assertion(w.app, w.issuer, { claims: { iss: 'not-an-agency', sub: 'not-an-agency' } })],
        ['iss_sub_mismatch', async () => await assertion(w.app, w.issuer, { claims: { sub: REQUESTER } })],
        ['agency_unknown', async () => await assertion(w.app, await makeAgency('000.00.99.H41'))],
        ['kid_missing', async () => await assertion(w.app, w.issuer, { header: { kid: undefined } })],
        ['kid_unknown', async () => await assertion(w.app, w.issuer, { header: { kid: 'no-such-key' } })],
        ['signature_invalid', async () => await assertion(w.app, w.issuer, { signWith: { ...(await makeAgency(ISSUER)).privateKey, kid: w.issuer.privateKey.kid } })],
        ['kid_unknown', async () => await assertion(w.app, w.issuer, { signWith: w.requester.privateKey })],
        ['jti_invalid', async () => await assertion(w.app, w.issuer, { claims: { jti: 'x' } })],
        ['claim_missing', async () => await assertion(w.app, w.issuer, { claims: { jti: undefined } })],
        ['alg_mismatch', async () => await assertion(w.app, w.requester, { header: { alg: 'PS256' }, signWith: { ...w.requester.privateKey, alg: 'PS256' } })]
      ]
      for (const [code, make] of cases) {
        oauthError(t, await requestToken(w.app, await make()), 401, 'invalid_client', code)
      }
    })

    t.test('alg none and HS256 keyed with the public key are refused', async (t) => {
      const w = await world(t, await makeStore(t))
      const now = Math.floor(Date.now() / 1000)
      const payload = base64url.encode(JSON.stringify({ iss: ISSUER, sub: ISSUER, aud: w.app.config.gatewayIssuer, jti: 'none-attack-0001', iat: now, exp: now + 60 }))
      const none = `${base64url.encode(JSON.stringify({ alg: 'none', kid: w.issuer.privateKey.kid }))}.${payload}.`
      oauthError(t, await requestToken(w.app, none), 401, 'invalid_client', 'alg_not_allowed')
      const publicAsSecret = new TextEncoder().encode(JSON.stringify(w.issuer.jwks.keys[0]))
      const hs = await new SignJWT({ iss: ISSUER, sub: ISSUER, aud: w.app.config.gatewayIssuer, jti: 'hmac-attack-0001', iat: now, exp: now + 60 })
        .setProtectedHeader({ alg: 'HS256', kid: w.issuer.privateKey.kid })
        .sign(publicAsSecret)
      oauthError(t, await requestToken(w.app, hs), 401, 'invalid_client', 'alg_not_allowed')
    })

    t.test('a replayed assertion is refused', async (t) => {
      const w = await world(t, await makeStore(t))
      const once = await assertion(w.app, w.issuer)
      t.equal((await requestToken(w.app, once)).statusCode, 200)
      oauthError(t, await requestToken(w.app, once), 401, 'invalid_client', 'assertion_replayed')
    })

    t.test('a suspended agency gets no token, and its tokens fail from the next request on', async (t) => {
      const w = await world(t, await makeStore(t))
      const otherToken = await tokenFor(w.app, w.other)
      t.equal((await get(w.app, '/v1/agencies', otherToken)).statusCode, 403, 'baseline: authenticated, lacks admin')
      await register(w.app, w.adminToken, w.other, ['issuer', 'requester'], { status: 'suspended', issuableTypes: ['giay-khai-sinh'] })
      const after = await get(w.app, '/v1/agencies', otherToken)
      t.equal(after.statusCode, 401)
      t.equal(after.json().code, 'agency_suspended')
      oauthError(t, await requestToken(w.app, await assertion(w.app, w.other)), 401, 'invalid_client', 'agency_suspended')
    })

    t.test('removing the key a token was obtained with revokes the token', async (t) => {
      const w = await world(t, await makeStore(t))
      const adminToken = w.adminToken
      const oldToken = await tokenFor(w.app, w.other)
      // re-register the agency with another key only
      const replacement = await makeAgency(OTHER)
      await register(w.app, adminToken, replacement, ['issuer', 'requester'], { issuableTypes: ['giay-khai-sinh'] })
      const res = await get(w.app, `/v1/agencies/${OTHER}`, oldToken)
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'key_removed')
      oauthError(t, await requestToken(w.app, await assertion(w.app, w.other)), 401, 'invalid_client', 'kid_unknown')
      t.equal((await requestToken(w.app, await assertion(w.app, replacement))).statusCode, 200, 'the new key works')
    })

    t.test('bad access tokens on a protected route: each a 401 problem naming the check', async (t) => {
      const w = await world(t, await makeStore(t))
      const good = await tokenFor(w.app, w.admin)
      const [h, p] = good.split('.')
      const claims = decodeJwt(good)
      const forgedPayload = base64url.encode(JSON.stringify({ ...claims, sub: ISSUER, scope: 'admin' }))
      const foreignKey = await makeAgency(ADMIN_CODE, 'EdDSA')
      const foreign = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'EdDSA', kid: decodeProtectedHeader(good).kid as string, typ: 'at+jwt' })
        .sign(await (await import('jose')).importJWK(foreignKey.privateKey, 'EdDSA'))
      const cases: Array<[string | undefined, string]> = [
        [undefined, 'token_missing'],
        ['', 'token_malformed'],
        ['not-a-jwt', 'token_malformed'],
        [`${h}.${forgedPayload}.${good.split('.')[2]}`, 'signature_invalid'],
        [foreign, 'signature_invalid'],
        [`${h}.${p}.AAAA`, 'signature_invalid'],
        [await assertion(w.app, w.admin), 'token_type_invalid'],
        [await assertion(w.app, w.requester), 'alg_not_allowed']
      ]
      for (const [token, code] of cases) {
        const res = await w.app.inject({ method: 'GET', url: '/v1/agencies', headers: token === undefined ? {} : { authorization: token === '' ? 'Basic abc' : `Bearer ${token}` } })
        t.equal(res.statusCode, 401, code)
        t.equal(res.json().code, code)
        t.match(String(res.headers['www-authenticate']), /^Bearer realm="reuse-gateway"/)
        t.match(String(res.headers['content-type']), /application\/problem\+json/)
      }
    })

    t.test('a gateway-signed JWT that is not an access token is refused', async (t) => {
      const w = await world(t, await makeStore(t))
      const now = Math.floor(Date.now() / 1000)
      const other = await w.app.signingKeys.sign({ iss: w.app.config.gatewayIssuer, aud: w.app.config.gatewayIssuer, sub: ADMIN_CODE, scope: 'admin', jti: 'x', iat: now, exp: now + 60 }, 'reuse-attestation+jwt')
      const res = await get(w.app, '/v1/agencies', other)
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'token_type_invalid')
      const expired = await w.app.signingKeys.sign({ iss: w.app.config.gatewayIssuer, aud: w.app.config.gatewayIssuer, sub: ADMIN_CODE, scope: 'admin', jti: 'y', agency_kid: w.admin.privateKey.kid, iat: now - 900, exp: now - 600 }, 'at+jwt')
      t.equal((await get(w.app, '/v1/agencies', expired)).json().code, 'token_expired')
      const wrongAudience = await w.app.signingKeys.sign({ iss: w.app.config.gatewayIssuer, aud: 'https://elsewhere.example', sub: ADMIN_CODE, scope: 'admin', jti: 'z', agency_kid: w.admin.privateKey.kid, iat: now, exp: now + 60 }, 'at+jwt')
      t.equal((await get(w.app, '/v1/agencies', wrongAudience)).json().code, 'audience_invalid')
      const wrongIssuer = await w.app.signingKeys.sign({ iss: 'https://elsewhere.example', aud: w.app.config.gatewayIssuer, sub: ADMIN_CODE, scope: 'admin', jti: 'w', agency_kid: w.admin.privateKey.kid, iat: now, exp: now + 60 }, 'at+jwt')
      t.equal((await get(w.app, '/v1/agencies', wrongIssuer)).json().code, 'issuer_invalid')
    })

    t.test('role × route: only admin may manage agencies', async (t) => {
      const w = await world(t, await makeStore(t))
      for (const agency of [w.issuer, w.requester, w.other]) {
        const token = await tokenFor(w.app, agency)
        for (const [method, url] of [['GET', '/v1/agencies'], ['GET', `/v1/agencies/${ADMIN_CODE}`], ['PUT', `/v1/agencies/${agency.code}`]] as const) {
          const res = await w.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(method === 'PUT' ? { payload: { name: 'x', roles: ['admin'], jwks: agency.jwks } } : {}) })
          t.equal(res.statusCode, 403, `${agency.code} ${method} ${url}`)
          t.equal(res.json().code, 'insufficient_scope')
        }
      }
      const unchanged = await get(w.app, `/v1/agencies/${REQUESTER}`, w.adminToken)
      t.same(unchanged.json().roles, ['requester'], 'no self-promotion happened')
    })

    t.test('garbage in every field of the token request: 4xx in the OAuth shape, never 5xx', async (t) => {
      const w = await world(t, await makeStore(t))
      const valid = {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(w.app, w.issuer)
      }
      const garbage = ['', ' ', 'null', '\u0000', 'é'.repeat(10), 'a.b.c', '....', 'eyJ.eyJ.eyJ', '%00', 'x'.repeat(9000)]
      for (const field of Object.keys(valid) as Array<keyof typeof valid>) {
        for (const value of garbage) {
          const res = await w.app.inject({
            method: 'POST',
            url: '/v1/oauth/token',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            payload: new URLSearchParams({ ...valid, [field]: value }).toString()
          })
          t.ok(res.statusCode === 400 || res.statusCode === 401, `${field}=${JSON.stringify(value.slice(0, 12))} → ${res.statusCode}`)
          t.type(res.json().error, 'string')
        }
      }
      const json = await w.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: valid })
      t.equal(json.statusCode, 400, 'JSON instead of a form')
      t.equal(json.json().error, 'invalid_request')
      const unknown = await requestToken(w.app, await assertion(w.app, w.issuer), { client_secret: 'x' })
      t.equal(unknown.json().error, 'invalid_request')
      const grant = await w.app.inject({ method: 'POST', url: '/v1/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ ...valid, grant_type: 'password' }).toString() })
      t.equal(grant.json().error, 'unsupported_grant_type')
      const clientId = await requestToken(w.app, await assertion(w.app, w.issuer), { client_id: REQUESTER })
      t.equal(clientId.json().code, 'client_id_mismatch')
    })

    t.test('agency registration refuses bad keys and bad codes', async (t) => {
      const w = await world(t, await makeStore(t))
      const put = async (code: string, body: Record<string, unknown>) => await w.app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: { authorization: `Bearer ${w.adminToken}` }, payload: body })
      const pub = w.issuer.jwks.keys[0] as Record<string, unknown>
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['bad-code', { name: 'x', roles: ['issuer'], jwks: w.issuer.jwks }, 'validation_failed'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: { keys: [{ ...w.issuer.privateKey }] } }, 'private_key_material'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: { keys: [pub, pub] } }, 'key_id_duplicate'],
        // exactly one of jwks and jwksUri: the schema says so (oneOf), so its validation refuses it
        [ISSUER, { name: 'x', roles: ['issuer'] }, 'validation_failed'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: w.issuer.jwks, jwksUri: 'https://agency.example/jwks' }, 'validation_failed'],
        [ISSUER, { name: 'x', roles: ['superuser'], jwks: w.issuer.jwks }, 'validation_failed'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: w.issuer.jwks, createdAt: '2020-01-01T00:00:00Z' }, 'validation_failed'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: { keys: [{ ...pub, kty: 'oct', k: 'c2VjcmV0' }] } }, 'validation_failed'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: { keys: [{ ...pub, crv: 'P-384' }] } }, 'key_type_not_allowed'],
        [ISSUER, { name: 'x', roles: ['issuer'], jwks: { keys: [{ ...pub, alg: 'HS256' }] } }, 'key_alg_not_allowed']
      ]
      for (const [code, body, expected] of cases) {
        const res = await put(code, body)
        t.equal(res.statusCode, 400, expected)
        t.equal(res.json().code, expected)
      }
      const after = await get(w.app, `/v1/agencies/${ISSUER}`, w.adminToken)
      t.same(after.json().jwks, w.issuer.jwks, 'nothing was changed by a refused request')
      const created = await put('000.00.77.H41', { name: 'Sở Y tế', roles: ['requester'], jwks: (await makeAgency('000.00.77.H41')).jwks })
      t.equal(created.statusCode, 201)
      const replaced = await put('000.00.77.H41', { name: 'Sở Y tế tỉnh', roles: ['requester'], jwksUri: 'http://127.0.0.1:9/jwks.json' })
      t.equal(replaced.statusCode, 200)
      t.equal(replaced.json().createdAt, created.json().createdAt)
      t.equal(replaced.json().jwks, undefined)
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))

t.test('two gateways on one Redis: replay and suspension hold across them', async (t) => {
  const storeA = await testRedisStore(t, redis)
  const admin = await makeAgency(ADMIN_CODE, 'EdDSA')
  const a = await build(t, { store: storeA, env: adminEnv(admin) })
  // same key prefix, another connection, another process's caches
  const { RedisStores } = await import('../src/store/index.js')
  const storeB = new RedisStores({ url: redis.url, keyPrefix: (storeA.key('x').split('{')[0]) as string, commandTimeoutMs: 1000, quitTimeoutMs: 500 })
  await storeB.connect()
  t.teardown(async () => await storeB.close())
  const b = await build(t, { store: storeB, env: adminEnv(admin) })

  t.same(b.signingKeys.jwks(), a.signingKeys.jwks(), 'both gateways publish the same keys')
  const adminToken = await tokenFor(a, admin)
  const requester = await makeAgency(REQUESTER)
  await register(a, adminToken, requester, ['requester', 'admin'])

  const once = await assertion(a, requester)
  t.equal((await requestToken(a, once)).statusCode, 200)
  const replay = await requestToken(b, once)
  t.equal(replay.statusCode, 401)
  t.equal(replay.json().code, 'assertion_replayed')

  const token = await tokenFor(b, requester)
  t.equal((await get(a, '/v1/agencies', token)).statusCode, 200, 'a token from B works on A')
  t.equal((await get(b, '/v1/agencies', token)).statusCode, 200)
  await register(a, adminToken, requester, ['requester', 'admin'], { status: 'suspended' })
  const onB = await get(b, '/v1/agencies', token)
  t.equal(onB.statusCode, 401, 'suspended on A, refused by B at the next request')
  t.equal(onB.json().code, 'agency_suspended')
})
