import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { decodeProtectedHeader, createLocalJWKSet, jwtVerify } from 'jose'
import { MemoryStore } from '../src/store/index.js'
import { generateGatewayKey, parseKeyFile, rotateKeys, rotateStoredKeys, SigningKeys, writeKeyFile } from '../src/services/signing-keys.js'
import type { StoredKey } from '../src/services/signing-keys.js'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, tokenFor } from './lib/agencies.js'

const DAY = 86_400_000

t.test('outside production the first key is generated once and kept in the store', async (t) => {
  const store = new MemoryStore()
  const a = await SigningKeys.load({ kind: 'store', store, alg: 'EdDSA' }, { retentionMs: DAY })
  const b = await SigningKeys.load({ kind: 'store', store, alg: 'EdDSA' }, { retentionMs: DAY })
  t.equal(a.activeKid, b.activeKid, 'a restart (or a second process) finds the same key')
  t.equal(a.activeAlg, 'EdDSA')
  const jwks = a.jwks()
  t.equal(jwks.keys.length, 1)
  t.notOk('d' in (jwks.keys[0] as object), 'the JWKS is public keys only')
  t.equal(jwks.keys[0]?.use, 'sig')
})

t.test('rotation without downtime: the new key signs, the old one still verifies, other processes follow', async (t) => {
  const store = new MemoryStore()
  const admin = await makeAgency(ADMIN_CODE)
  const a = await build(t, { store, env: adminEnv(admin) })
  const b = await build(t, { store, env: adminEnv(admin) })
  const before = await tokenFor(a, admin)
  const oldKid = decodeProtectedHeader(before).kid

  await rotateStoredKeys(store, 'ES256', DAY)
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

t.test('a retired key is dropped after its retention', async (t) => {
  const first = await generateGatewayKey('EdDSA', new Date(Date.now() - 10 * DAY))
  const second = await rotateKeys([first], 'EdDSA', 30 * DAY, new Date(Date.now() - 5 * DAY))
  t.equal(second.length, 2)
  t.ok(second[1]?.retired_at)
  const third = await rotateKeys(second, 'EdDSA', 3 * DAY)
  t.same(third.map((k) => k.kid), [third[0]?.kid, second[0]?.kid], 'the key retired 5 days ago is gone with a 3-day retention')
  const keys = await SigningKeys.load({ kind: 'store', store: await storeWith(third), alg: 'EdDSA' }, { retentionMs: 3 * DAY })
  t.same(keys.jwks().keys.map((k) => k.kid), [third[0]?.kid, second[0]?.kid])
})

async function storeWith (keys: StoredKey[]): Promise<MemoryStore> {
  const store = new MemoryStore()
  await store.putSigningKeys(keys, 0)
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
