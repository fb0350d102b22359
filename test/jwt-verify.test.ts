import t from 'tap'
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose'
import type { JWTVerifyOptions, CryptoKey } from 'jose'
import { verifyJwt } from '../src/lib/jwt-verify.js'

/**
 * The token endpoint and the access-token check verify with Node's crypto.verify instead of
 * jose's WebCrypto path: for every token a client could send — well made, forged, altered,
 * oddly encoded, with claims missing, late or early — the answer must be jose's own, to the
 * error class, claim, reason and message.
 */

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

async function outcome (verify: () => Promise<{ payload: unknown }>): Promise<unknown> {
  try {
    return { payload: (await verify()).payload }
  } catch (err) {
    const e = err as { constructor: { name: string }, code?: string, claim?: string, reason?: string, message: string }
    return { error: e.constructor.name, code: e.code, claim: e.claim, reason: e.reason, message: e.message }
  }
}

t.test('verifyJwt answers every token as jwtVerify does', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const ed = await generateKeyPair('EdDSA', { extractable: true })
  const ec = await generateKeyPair('ES256', { extractable: true })
  const rsa = await generateKeyPair('RS256', { extractable: true })
  const otherEd = await generateKeyPair('EdDSA')
  // the keys as the gateway holds them: imported from the registered JWK for the alg the token names
  const edAs = async (alg: string): Promise<CryptoKey> => await importJWK(await exportJWK(ed.publicKey), alg) as CryptoKey
  const claims = { iss: 'A', sub: 'A', aud: 'G', jti: 'j-0123456789', iat: now, exp: now + 120 }
  const sign = async (key: CryptoKey, header: Record<string, unknown>, payload: Record<string, unknown> = claims): Promise<string> =>
    await new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key)

  const good = await sign(ed.privateKey, { alg: 'EdDSA', kid: 'k', typ: 'JWT' })
  const [h, p, s] = good.split('.') as [string, string, string]
  // a signature made over arbitrary header and payload parts, as a forger with the key could
  const { sign: rawSign, createPrivateKey } = await import('node:crypto')
  const edPrivate = createPrivateKey({ key: await exportJWK(ed.privateKey) as never, format: 'jwk' })
  const signedParts = (header: string, payload: string): string => `${header}.${payload}.${rawSign(null, Buffer.from(`${header}.${payload}`), edPrivate).toString('base64url')}`
  const edHeader = b64({ alg: 'EdDSA', kid: 'k' })

  const cases: Array<[string, string, CryptoKey, JWTVerifyOptions & { algorithms: string[] }]> = []
  const assertionOptions: JWTVerifyOptions & { algorithms: string[] } = { algorithms: ['EdDSA'], audience: ['G', 'G/token'], clockTolerance: 60, requiredClaims: ['exp', 'iat', 'jti', 'aud'] }
  const edKey = await edAs('EdDSA')
  const add = (name: string, token: string, key: CryptoKey = edKey, options: JWTVerifyOptions & { algorithms: string[] } = assertionOptions): void => { cases.push([name, token, key, options]) }

  add('well made', good)
  add('Ed25519 as the alg name', await sign(ed.privateKey, { alg: 'Ed25519', kid: 'k' }), await edAs('Ed25519'), { ...assertionOptions, algorithms: ['Ed25519'] })
  add('ES256', await sign(ec.privateKey, { alg: 'ES256', kid: 'k' }), ec.publicKey, { ...assertionOptions, algorithms: ['ES256'] })
  add('ES256 with a bad signature', `${(await sign(ec.privateKey, { alg: 'ES256' })).split('.').slice(0, 2).join('.')}.${'A'.repeat(86)}`, ec.publicKey, { ...assertionOptions, algorithms: ['ES256'] })
  add('ES256 with a short signature', `${(await sign(ec.privateKey, { alg: 'ES256' })).split('.').slice(0, 2).join('.')}.AAAA`, ec.publicKey, { ...assertionOptions, algorithms: ['ES256'] })
  add('RS256 (jose\'s own path)', await sign(rsa.privateKey, { alg: 'RS256' }), rsa.publicKey, { ...assertionOptions, algorithms: ['RS256'] })
  add('signed by another key', await sign(otherEd.privateKey, { alg: 'EdDSA', kid: 'k' }))
  add('payload altered', `${h}.${b64({ ...claims, sub: 'B' })}.${s}`)
  add('header altered', `${b64({ alg: 'EdDSA', kid: 'other' })}.${p}.${s}`)
  add('signature altered', `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BA' : 'AA'}`)
  add('signature empty', `${h}.${p}.`)
  add('signature padded', `${h}.${p}.${s}==`)
  add('signature in base64', `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}`)
  add('payload padded', `${h}.${p}=.${s}`)
  add('one character too many', `${h}.${p}.${s}A`)
  add('two parts', `${h}.${p}`)
  add('four parts', `${good}.x`)
  add('alg not allowed', await sign(ed.privateKey, { alg: 'EdDSA' }), edKey, { ...assertionOptions, algorithms: ['ES256'] })
  add('alg none', `${b64({ alg: 'none' })}.${p}.`)
  add('header not JSON', signedParts(b64('{"alg":'), p))
  add('header an array', signedParts(b64(['EdDSA']), p))
  add('header not UTF-8', signedParts(Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url'), p))
  add('crit header', signedParts(b64({ alg: 'EdDSA', crit: ['exp'], exp: 1 }), p))
  add('crit b64', signedParts(b64({ alg: 'EdDSA', crit: ['b64'], b64: true }), p))
  add('b64 false', signedParts(b64({ alg: 'EdDSA', crit: ['b64'], b64: false }), p))
  add('b64 without crit', signedParts(b64({ alg: 'EdDSA', b64: false }), p))
  add('payload not JSON', signedParts(edHeader, b64('not json')))
  add('payload an array', signedParts(edHeader, b64([1, 2])))
  add('payload null', signedParts(edHeader, b64('null')))
  add('payload not UTF-8', signedParts(edHeader, Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')))
  for (const claim of ['exp', 'iat', 'jti', 'aud']) {
    const { [claim as keyof typeof claims]: _gone, ...rest } = claims
    add(`${claim} missing`, signedParts(edHeader, b64(rest)))
  }
  add('everything missing', signedParts(edHeader, b64({})))
  add('aud another', signedParts(edHeader, b64({ ...claims, aud: 'X' })))
  add('aud a list', signedParts(edHeader, b64({ ...claims, aud: ['X', 'G/token'] })))
  add('aud a number', signedParts(edHeader, b64({ ...claims, aud: 7 })))
  add('expired', signedParts(edHeader, b64({ ...claims, exp: now - 61 })))
  add('expired within the tolerance', signedParts(edHeader, b64({ ...claims, exp: now - 30 })))
  add('exp a string', signedParts(edHeader, b64({ ...claims, exp: String(now + 100) })))
  add('iat a string', signedParts(edHeader, b64({ ...claims, iat: 'now' })))
  add('nbf ahead', signedParts(edHeader, b64({ ...claims, nbf: now + 120 })))
  add('nbf within the tolerance', signedParts(edHeader, b64({ ...claims, nbf: now + 30 })))
  add('nbf null', signedParts(edHeader, b64({ ...claims, nbf: null })))
  add('__proto__ claim', signedParts(edHeader, b64('{"__proto__":{"x":1},"exp":' + String(now + 60) + ',"iat":' + String(now) + ',"jti":"j-0123456789","aud":"G"}')))
  const tokenOptions = { algorithms: ['EdDSA', 'ES256'], issuer: 'G', audience: 'G', typ: 'at+jwt', clockTolerance: 60, requiredClaims: ['exp', 'sub', 'jti', 'scope'] }
  const access = { ...claims, iss: 'G', scope: 'admin' }
  add('access token', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'k', typ: 'at+jwt' }, access), edKey, tokenOptions)
  add('access token typ application/at+jwt', await sign(ed.privateKey, { alg: 'EdDSA', typ: 'application/at+JWT' }, access), edKey, tokenOptions)
  add('access token without typ', await sign(ed.privateKey, { alg: 'EdDSA' }, access), edKey, tokenOptions)
  add('access token typ JWT', await sign(ed.privateKey, { alg: 'EdDSA', typ: 'JWT' }, access), edKey, tokenOptions)
  add('access token typ a number', signedParts(b64({ alg: 'EdDSA', typ: 1 }), b64(access)), edKey, tokenOptions)
  add('access token wrong issuer', await sign(ed.privateKey, { alg: 'EdDSA', typ: 'at+jwt' }, { ...access, iss: 'X' }), edKey, tokenOptions)
  add('access token without scope', await sign(ed.privateKey, { alg: 'EdDSA', typ: 'at+jwt' }, claims), edKey, tokenOptions)
  add('ES256 named, Ed25519 key', signedParts(b64({ alg: 'ES256' }), p), edKey, { ...assertionOptions, algorithms: ['ES256'] })

  for (const [name, token, key, options] of cases) {
    t.same(await outcome(async () => await verifyJwt(token, key, options)), await outcome(async () => await jwtVerify(token, key, options)), name)
  }
})
