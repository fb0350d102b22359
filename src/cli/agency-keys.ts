import { randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose'
import type { JWK } from 'jose'
import { StatedError } from '../lib/error-description.js'
import { fetchFrom } from './gateway-fetch.js'

/**
 * What an agency needs to talk to the gateway: a key pair (the private JWK stays with the
 * agency, the public JWKS is registered with the gateway), client assertions signed with it,
 * and access tokens obtained with those.
 */
/** `Ed25519` is RFC 9864's fully-specified name; `EdDSA` the older one, for clients that know only it */
export type AgencyAlg = 'ES256' | 'Ed25519' | 'EdDSA' | 'RS256' | 'PS256'

/** a private JWK as the CLI writes it: with kid, alg, and the agency it belongs to */
export type AgencyPrivateKey = JWK & { kid: string, alg: AgencyAlg, agency?: string }

export async function generateAgencyKeyPair (alg: AgencyAlg, agency?: string): Promise<{ privateKey: AgencyPrivateKey, jwks: { keys: JWK[] } }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}), ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) })
  const publicJwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(publicJwk)
  return {
    privateKey: { ...(await exportJWK(privateKey)), kid, alg, ...(agency ? { agency } : {}) },
    jwks: { keys: [{ ...publicJwk, kid, alg, use: 'sig' }] }
  }
}

export interface AssertionOptions {
  privateKey: AgencyPrivateKey
  agency: string
  /** the gateway's issuer id (GATEWAY_ISSUER) or its token endpoint URL */
  audience: string
  lifetimeSeconds?: number
}

/** An RFC 7523 client assertion: iss = sub = agency code, a fresh jti, short-lived. */
export async function signClientAssertion (options: AssertionOptions): Promise<string> {
  const { privateKey } = options
  const key = await importJWK(privateKey, privateKey.alg)
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: privateKey.alg, kid: privateKey.kid, typ: 'JWT' })
    .setIssuer(options.agency)
    .setSubject(options.agency)
    .setAudience(options.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? 60))
    .sign(key)
}

export interface TokenResponse {
  access_token: string
  token_type: string
  expires_in: number
  scope: string
}

/** The gateway's issuer id (the audience of assertions), from its RFC 8414 metadata. */
export async function gatewayIssuer (gateway: string): Promise<string> {
  const response = await fetchFrom(`${gateway}/.well-known/oauth-authorization-server`)
  if (!response.ok) throw new StatedError(`${gateway} did not serve its OAuth metadata (${response.status})`)
  return (await response.json() as { issuer: string }).issuer
}

/** Asks a running gateway for an access token; throws with the gateway's own words on refusal. */
export async function fetchAccessToken (options: { gateway: string, privateKey: AgencyPrivateKey, agency: string, scope?: string, audience?: string }): Promise<TokenResponse> {
  const gateway = options.gateway.replace(/\/+$/, '')
  const assertion = await signClientAssertion({
    privateKey: options.privateKey,
    agency: options.agency,
    audience: options.audience ?? await gatewayIssuer(gateway)
  })
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion
  })
  if (options.scope) form.set('scope', options.scope)
  const response = await fetchFrom(`${gateway}/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form
  })
  const body = await response.json() as TokenResponse & { error?: string, error_description?: string }
  if (!response.ok) throw new StatedError(`token request refused (${response.status} ${body.error ?? ''}): ${body.error_description ?? JSON.stringify(body)}`)
  return body
}
