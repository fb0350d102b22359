import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { decodeProtectedHeader, createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose'
import type { FastifyInstance } from 'fastify'
import { ATTESTATION_TYP } from '../src/services/reuse.js'
import { MemoryStores } from '../src/store/index.js'
import { generateGatewayKey, parseKeyFile, rotateKeys, rotateStoredKeys, SigningKeys, writeKeyFile } from '../src/services/signing-keys.js'
import type { StoredKey } from '../src/services/signing-keys.js'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, tokenFor } from './lib/agencies.js'

const DAY = 86_400_000

t.test('outside production the first key is generated once and kept in the store', async (t) => {
  const store = new MemoryStores()
  const a = await SigningKeys.load({ kind: 'store', keys: store.signingKeys, alg: 'EdDSA' }, { retentionMs: DAY })
  const b = await SigningKeys.load({ kind: 'store', keys: store.signingKeys, alg: 'EdDSA' }, { retentionMs: DAY })
  t.equal(a.activeKid, b.activeKid, 'a restart (or a second process) finds the same key')
  t.equal(a.activeAlg, 'EdDSA')
  const jwks = a.jwks()
  t.equal(jwks.keys.length, 1)
  t.notOk('d' in (jwks.keys[0] as object), 'the JWKS is public keys only')
  t.equal(jwks.keys[0]?.use, 'sig')
})

t.test('rotation without downtime: the new key signs, the old one still verifies, other processes follow', async (t) => {
  const store = new MemoryStores()
  const admin = await makeAgency(ADMIN_CODE)
  const a = await build(t, { store, env: adminEnv(admin) })
  const b = await build(t, { store, env: adminEnv(admin) })
  const before = await tokenFor(a, admin)
  const oldKid = decodeProtectedHeader(before).kid

  await rotateStoredKeys(store.signingKeys, 'ES256', DAY)
  await a.signingKeys.refresh(false)
  const after = await tokenFor(a, admin)
  const header = decodeProtectedHeader(after)
  t.not(header.kid, oldKid, 'tokens are signed with the new key from now on')
  t.equal(header.alg, 'ES256')

  // B has not refreshed yet: an unknown kid makes it look again instead of refusing
  const onB = await b.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${after}` } })
  t.equal(onB.statusCode, 200)
  const old = await a.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${before}` } })
  t.equal(old.statusCode, 200, 'a token signed by the previous key is still good')

  const published = await a.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(published.statusCode, 200)
  t.same(published.json().keys.map((k: { kid: string }) => k.kid), [header.kid, oldKid])
  t.match(String(published.headers['cache-control']), /public/)
  const verified = await jwtVerify(before, createLocalJWKSet(published.json()))
  t.equal(verified.payload.sub, ADMIN_CODE, 'verifiable by a standard JOSE library with the published JWKS')
})

/** An access token as the gateway makes them, signed with `key`: what whoever holds a key could mint. */
async function mintAccessToken (app: FastifyInstance, key: StoredKey, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const issuer = app.config.gatewayIssuer
  return await new SignJWT({ iss: issuer, sub: ADMIN_CODE, aud: issuer, scope: 'admin', iat: now, exp: now + 300, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .sign(await importJWK(key, key.alg))
}

t.test('a retired key verifies what it signed but makes no access token once the tokens it signed have expired', async (t) => {
  const store = new MemoryStores()
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: adminEnv(admin) })
  const old = (await store.signingKeys.getSigningKeys())?.keys[0] as StoredKey
  const agencyKid = admin.privateKey.kid
  t.equal((await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${await mintAccessToken(app, old, { agency_kid: agencyKid })}` } })).statusCode, 200, 'the current key makes access tokens')
  const attestation = await app.signingKeys.sign({ iss: app.config.gatewayIssuer, aud: ADMIN_CODE, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), document_id: randomUUID(), document_version: 1, status: 'valid' }, ATTESTATION_TYP)

  await rotateStoredKeys(store.signingKeys, 'EdDSA', 400 * DAY)
  await app.signingKeys.refresh(false)
  const call = async (token: string) => await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${token}` } })
  const farExp = await call(await mintAccessToken(app, old, { agency_kid: agencyKid, exp: Math.floor(Date.now() / 1000) + 400 * 86_400 }))
  t.equal(farExp.statusCode, 401, 'a moment after the rotation, no token from the old key may outlive the tokens it really signed')
  t.equal(farExp.json().code, 'key_retired')

  // an hour later (the retirement moved back): the access tokens the old key signed have all expired
  const record = await store.signingKeys.getSigningKeys()
  const keys = (record?.keys as StoredKey[]).map((key) => key.kid === old.kid ? { ...key, retired_at: new Date(Date.now() - 3_600_000).toISOString() } : key)
  t.ok(await store.signingKeys.putSigningKeys(keys, record?.revision ?? 0))
  await app.signingKeys.refresh(false)
  const fresh = await call(await mintAccessToken(app, old, { agency_kid: agencyKid }))
  t.equal(fresh.statusCode, 401, 'an admin token freshly minted with the retired private key is refused')
  t.equal(fresh.json().code, 'key_retired')
  t.match(fresh.json().detail, /retired gateway key/)

  t.ok(app.signingKeys.jwks().keys.some((key) => key.kid === old.kid), 'the retired key is still published')
  const verified = await app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: { authorization: `Bearer ${await tokenFor(app, admin)}` }, payload: { attestation } })
  t.equal(verified.statusCode, 200)
  t.equal(verified.json().valid, true, 'an attestation the retired key signed still verifies')
  t.equal(verified.json().kid, old.kid)
})

t.test('a retired key is dropped after its retention', async (t) => {
  const first = await generateGatewayKey('EdDSA', new Date(Date.now() - 10 * DAY))
  const second = await rotateKeys([first], 'EdDSA', 30 * DAY, new Date(Date.now() - 5 * DAY))
  t.equal(second.length, 2)
  t.ok(second[1]?.retired_at)
  const third = await rotateKeys(second, 'EdDSA', 3 * DAY)
  t.same(third.map((k) => k.kid), [third[0]?.kid, second[0]?.kid], 'the key retired 5 days ago is gone with a 3-day retention')
  const keys = await SigningKeys.load({ kind: 'store', keys: (await storeWith(third)).signingKeys, alg: 'EdDSA' }, { retentionMs: 3 * DAY })
  t.same(keys.jwks().keys.map((k) => k.kid), [third[0]?.kid, second[0]?.kid])
})

async function storeWith (keys: StoredKey[]): Promise<MemoryStores> {
  const store = new MemoryStores()
  await store.signingKeys.putSigningKeys(keys, 0)
  return store
}

t.test('a key file: loaded, rotated, re-read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-keys-'))
  const file = join(dir, 'gateway.jwks.json')
  await writeKeyFile(file, [await generateGatewayKey('ES256')])
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { env: { ...adminEnv(admin), SIGNING_KEYS_FILE: file } })
  const first = app.signingKeys.activeKid
  t.equal(first, parseKeyFile(readFileSync(file, 'utf8'), file)[0]?.kid)
  const token = await tokenFor(app, admin)

  const rotated = await rotateKeys(parseKeyFile(readFileSync(file, 'utf8'), file), 'EdDSA', DAY)
  await new Promise((resolve) => setTimeout(resolve, 20))
  await writeKeyFile(file, rotated)
  await app.signingKeys.refresh(false)
  t.not(app.signingKeys.activeKid, first)
  t.equal(app.signingKeys.activeKid, rotated[0]?.kid)
  t.equal((await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${token}` } })).statusCode, 200)
})

t.test('a bad key file is refused with a message naming it', async (t) => {
  t.throws(() => parseKeyFile('nope', 'k.json'), /k.json is not JSON/)
  t.throws(() => parseKeyFile('{"keys":[]}', 'k.json'), /must be a JWKS/)
  t.throws(() => parseKeyFile('{"keys":[{"kty":"OKP","kid":"a","alg":"EdDSA"}]}', 'k.json'), /private part/)
  t.throws(() => parseKeyFile('{"keys":[{"kty":"oct","kid":"a","alg":"HS256","d":"x"}]}', 'k.json'), /EdDSA or ES256/)
})
