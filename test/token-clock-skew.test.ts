import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { importJWK, SignJWT } from 'jose'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../src/config.js'
import { MemoryStores } from '../src/store/index.js'
import { rotateStoredKeys } from '../src/services/signing-keys.js'
import type { StoredKey } from '../src/services/signing-keys.js'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'

/**
 * How long past its exp an access token is still accepted is a setting
 * (ACCESS_TOKEN_CLOCK_SKEW_SECONDS, 60 s by default, at most the 60 s the tokens' rules allow),
 * and the bound on tokens signed by a retired gateway key leaves the same room for clocks.
 */

/** An access token as the gateway makes them, signed with `key`, for the admin. */
async function mint (app: FastifyInstance, key: StoredKey, admin: TestAgency, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const issuer = app.config.gatewayIssuer
  return await new SignJWT({ iss: issuer, sub: ADMIN_CODE, client_id: ADMIN_CODE, aud: issuer, scope: 'admin', iat: now - 300, exp: now + 300, jti: randomUUID(), agency_kid: admin.privateKey.kid, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .sign(await importJWK(key, key.alg))
}

async function gateway (t: Test, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, store: MemoryStores, admin: TestAgency, key: () => Promise<StoredKey> }> {
  const store = new MemoryStores()
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: { ...adminEnv(admin), ...env } })
  return { app, store, admin, key: async () => (await store.signingKeys.getSigningKeys())?.keys[0] as StoredKey }
}

const call = async (app: FastifyInstance, token: string): Promise<{ status: number, code?: string }> => {
  const res = await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : res.json().code }
}

t.test('a token 30 s past its exp is accepted with the default leeway, refused with none', async (t) => {
  const late = { exp: Math.floor(Date.now() / 1000) - 30 }

  const lenient = await gateway(t)
  t.equal(lenient.app.config.accessTokenClockSkewSeconds, 60, 'the default is 60 s')
  t.same(await call(lenient.app, await mint(lenient.app, await lenient.key(), lenient.admin, late)), { status: 200, code: undefined })

  const strict = await gateway(t, { ACCESS_TOKEN_CLOCK_SKEW_SECONDS: '0' })
  const token = await mint(strict.app, await strict.key(), strict.admin, late)
  t.same(await call(strict.app, token), { status: 401, code: 'token_expired' })
  const res = await strict.app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${token}` } })
  t.match(res.json().detail, /beyond 0 s of tolerance/, 'the refusal says the leeway it applied')
  t.same(await call(strict.app, await mint(strict.app, await strict.key(), strict.admin, {})), { status: 200, code: undefined }, 'a token before its exp is accepted')
})

t.test('the setting is bounded: 0 to 60 seconds', async (t) => {
  const env = { NODE_ENV: 'test' }
  t.equal(loadConfig({ ...env, ACCESS_TOKEN_CLOCK_SKEW_SECONDS: '0' }).accessTokenClockSkewSeconds, 0)
  t.equal(loadConfig({ ...env, ACCESS_TOKEN_CLOCK_SKEW_SECONDS: '60' }).accessTokenClockSkewSeconds, 60)
  for (const value of ['61', '300', '-1', '1.5', 'soon']) {
    t.throws(() => loadConfig({ ...env, ACCESS_TOKEN_CLOCK_SKEW_SECONDS: value }), { name: 'ConfigError', message: /ACCESS_TOKEN_CLOCK_SKEW_SECONDS/ }, value)
  }
})

t.test('a retired key\'s tokens may end up to the leeway later than the token lifetime allows, no more', async (t) => {
  for (const [skew, accepted] of [['60', true], ['0', false]] as const) {
    const { app, store, admin, key } = await gateway(t, { ACCESS_TOKEN_CLOCK_SKEW_SECONDS: skew })
    const old = await key()
    await rotateStoredKeys(store.signingKeys, 'EdDSA', 400 * 86_400_000)
    await app.signingKeys.refresh(false)
    const retiredAt = Date.parse(((await store.signingKeys.getSigningKeys())?.keys as StoredKey[]).find((k) => k.kid === old.kid)?.retired_at as string)
    // signed the moment before a process whose clock is 30 s ahead saw the rotation (10 s)
    const exp = Math.floor((retiredAt + 10_000) / 1000) + app.config.accessTokenTtlSeconds + 30
    const result = await call(app, await mint(app, old, admin, { exp }))
    t.same(result, accepted ? { status: 200, code: undefined } : { status: 401, code: 'key_retired' }, `with ACCESS_TOKEN_CLOCK_SKEW_SECONDS=${skew}`)
    const later = await call(app, await mint(app, old, admin, { exp: exp + Number(skew) }))
    t.same(later, { status: 401, code: 'key_retired' }, 'a token that would end later still was not signed by the gateway')
  }
})
