import { KeyObject, verify as cryptoVerify } from 'node:crypto'
import type { webcrypto } from 'node:crypto'
import { jwtVerify, UnsecuredJWT, errors as joseErrors } from 'jose'
import type { JWTPayload, JWTVerifyOptions } from 'jose'

/**
 * jose's jwtVerify, faster for the tokens the gateway sees all day (an EdDSA or ES256 JWT with a
 * plain header): the signature is checked with Node's own crypto.verify on a KeyObject made once
 * per key, synchronously, instead of WebCrypto's asynchronous round trip (most of the token
 * endpoint's time); the claims are then checked by jose itself (UnsecuredJWT.decode over the same
 * payload, with the same options), so every claim rule and every error stays jose's. Anything
 * else (another algorithm, a `crit` or `b64` header, a part that is not plain base64url, a key of
 * another kind) goes through jwtVerify as before: the answer is the same either way.
 */

type JoseKey = Parameters<typeof jwtVerify>[1]

/** the KeyObject of each jose key (a CryptoKey), made at its first use */
const nodeKeys = new WeakMap<object, KeyObject | null>()

const BASE64URL = /^[A-Za-z0-9_-]+$/
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Node's verify for each algorithm of the fast path, given the key fits it */
const VERIFIERS: Record<string, { fits: (key: KeyObject) => boolean, verify: (input: Buffer, key: KeyObject, signature: Buffer) => boolean }> = {
  EdDSA: { fits: (key) => key.asymmetricKeyType === 'ed25519', verify: (input, key, signature) => cryptoVerify(null, input, key, signature) },
  Ed25519: { fits: (key) => key.asymmetricKeyType === 'ed25519', verify: (input, key, signature) => cryptoVerify(null, input, key, signature) },
  ES256: {
    fits: (key) => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1',
    verify: (input, key, signature) => cryptoVerify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature)
  }
}

function nodeKey (key: JoseKey): KeyObject | undefined {
  if (typeof key !== 'object' || key === null) return undefined
  let found = nodeKeys.get(key)
  if (found === undefined) {
    try {
      found = key instanceof KeyObject ? key : (key as webcrypto.CryptoKey).usages?.includes('verify') ? KeyObject.from(key as webcrypto.CryptoKey) : null
    } catch {
      found = null
    }
    nodeKeys.set(key, found)
  }
  return found ?? undefined
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** the protected header of a compact JWS whose parts are plain base64url, or undefined */
function plainHeader (part: string): Record<string, unknown> | undefined {
  try {
    const header: unknown = JSON.parse(strictUtf8.decode(Buffer.from(part, 'base64url')))
    return isPlainObject(header) ? header : undefined
  } catch {
    return undefined
  }
}

const plainPart = (part: string | undefined): part is string => part !== undefined && BASE64URL.test(part) && part.length % 4 !== 1

/** the `{"alg":"none"}` header (with the token's typ, which jose's typ check reads) of the unsecured twin */
function unsecuredHeader (header: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify('typ' in header ? { alg: 'none', typ: header.typ } : { alg: 'none' })).toString('base64url')
}

/** jwtVerify(token, key, options), with the same answers and errors; see above. `algorithms` is required. */
export async function verifyJwt (token: string, key: JoseKey, options: JWTVerifyOptions & { algorithms: string[] }): Promise<{ payload: JWTPayload, protectedHeader: Record<string, unknown> }> {
  const parts = token.split('.')
  const [headerPart, payloadPart, signaturePart] = parts
  const header = parts.length === 3 && plainPart(headerPart) && plainPart(payloadPart) && plainPart(signaturePart) ? plainHeader(headerPart) : undefined
  const alg = header?.alg
  const verifier = typeof alg === 'string' && options.algorithms.includes(alg) ? VERIFIERS[alg] : undefined
  const publicKey = verifier ? nodeKey(key) : undefined
  if (!header || !verifier || !publicKey || !verifier.fits(publicKey) || 'crit' in header || 'b64' in header) {
    return await jwtVerify(token, key, options)
  }
  let valid: boolean
  try {
    valid = verifier.verify(Buffer.from(`${headerPart}.${payloadPart}`), publicKey, Buffer.from(signaturePart as string, 'base64url'))
  } catch {
    valid = false
  }
  if (!valid) throw new joseErrors.JWSSignatureVerificationFailed()
  const { algorithms: _algorithms, ...claimOptions } = options
  const { payload } = UnsecuredJWT.decode(`${unsecuredHeader(header)}.${payloadPart}.`, claimOptions)
  return { payload, protectedHeader: header }
}
