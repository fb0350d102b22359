import { importJWK, SignJWT } from 'jose'
import type { JWK } from 'jose'
import { t } from './i18n.js'

/**
 * Signing in, in the browser: the agency's private key file is read here, imported as a
 * non-extractable WebCrypto key (its JWK text is dropped at once), and signs the RFC 7523 client
 * assertion the token endpoint asks for. Nothing is written anywhere: the key and the access
 * token live in this module's memory, the token is renewed before it expires (with a fresh
 * assertion), and signing out forgets both.
 */

export interface Settings {
  issuer: string
  tokenEndpoint: string
  reuseTargetPercent: number
}

export interface Session {
  agency: string
  scopes: string[]
  token: string
}

const ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256']
export const AGENCY_CODE = /^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$/

/** what a key file gives: the key's name and algorithm, and the agency it says it belongs to */
export interface AgencyKey {
  key: CryptoKey
  kid: string
  alg: string
  agency?: string
}

export class SignInError extends Error {}

/** Reads a private JWK file (as the CLI and the demo write it) into a key that cannot be exported. */
export async function readKeyFile (file: File): Promise<AgencyKey> {
  let jwk: JWK & { agency?: unknown }
  try {
    jwk = JSON.parse(await file.text()) as JWK & { agency?: unknown }
  } catch {
    throw new SignInError(t('keyUnreadable'))
  }
  if (typeof jwk !== 'object' || jwk === null || typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string' || typeof jwk.d !== 'string') throw new SignInError(t('keyUnreadable'))
  if (!ALGORITHMS.includes(jwk.alg)) throw new SignInError(t('keyAlgUnsupported', { alg: jwk.alg }))
  const { kid, alg } = jwk
  const agency = typeof jwk.agency === 'string' ? jwk.agency : undefined
  let key: CryptoKey
  try {
    key = await importJWK({ ...jwk, ext: false }, alg, { extractable: false }) as CryptoKey
  } catch {
    throw new SignInError(t('keyUnreadable'))
  }
  return { key, kid, alg, ...(agency !== undefined ? { agency } : {}) }
}

interface Held {
  key: AgencyKey
  agency: string
  settings: Settings
  session: Session
  timer: ReturnType<typeof setTimeout> | undefined
}

let held: Held | undefined
let onLost: ((reason: string) => void) | undefined

/** called when a renewal fails: the session is over */
export function whenSessionLost (listener: (reason: string) => void): void {
  onLost = listener
}

export function current (): Session | undefined {
  return held?.session
}

async function assertion (key: AgencyKey, agency: string, audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(agency)
    .setSubject(agency)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(key.key)
}

/** One token request; the gateway's own words when it refuses. */
async function requestToken (key: AgencyKey, agency: string, settings: Settings): Promise<{ token: string, scopes: string[], expiresIn: number }> {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await assertion(key, agency, settings.issuer)
  })
  let response: Response
  try {
    response = await fetch(settings.tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form, credentials: 'omit', cache: 'no-store' })
  } catch {
    throw new SignInError(t('networkError'))
  }
  const body = await response.json().catch(() => ({})) as { access_token?: string, scope?: string, expires_in?: number, error_description?: string, detail?: string, code?: string }
  if (!response.ok || typeof body.access_token !== 'string') {
    throw new SignInError(body.detail ?? body.error_description ?? `${response.status}`)
  }
  return { token: body.access_token, scopes: (body.scope ?? '').split(' ').filter((s) => s !== ''), expiresIn: body.expires_in ?? 300 }
}

function schedule (h: Held, expiresIn: number): void {
  // a minute before it expires (at half its life for a token of two minutes or less), with a fresh assertion
  const inMs = (expiresIn > 120 ? expiresIn - 60 : Math.max(5, expiresIn / 2)) * 1000
  h.timer = setTimeout(() => { void renew(h) }, inMs)
}

async function renew (h: Held): Promise<void> {
  if (held !== h) return
  try {
    const next = await requestToken(h.key, h.agency, h.settings)
    if (held !== h) return
    h.session = { agency: h.agency, scopes: next.scopes, token: next.token }
    schedule(h, next.expiresIn)
  } catch (err) {
    if (held !== h) return
    signOut()
    onLost?.((err as Error).message)
  }
}

export async function signIn (key: AgencyKey, agency: string, settings: Settings): Promise<Session> {
  if (!AGENCY_CODE.test(agency)) throw new SignInError(t('codeInvalid'))
  signOut()
  const first = await requestToken(key, agency, settings)
  const h: Held = { key, agency, settings, session: { agency, scopes: first.scopes, token: first.token }, timer: undefined }
  held = h
  schedule(h, first.expiresIn)
  return h.session
}

/** Forgets the key and the token. */
export function signOut (): void {
  if (held?.timer !== undefined) clearTimeout(held.timer)
  held = undefined
}

/** Renews now (the tests' way to see renewal without waiting minutes). */
export async function renewNow (): Promise<void> {
  if (held) {
    if (held.timer !== undefined) clearTimeout(held.timer)
    await renew(held)
  }
}
