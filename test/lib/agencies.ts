import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type {} from '../../src/app.js'
import { importJWK, SignJWT } from 'jose'
import type { JWK } from 'jose'
import { generateAgencyKeyPair } from '../../src/cli/agency-keys.js'
import type { AgencyAlg, AgencyPrivateKey } from '../../src/cli/agency-keys.js'
import type { AgencyRole } from '../../src/services/agencies.js'

/** Agencies for tests: key pairs made as the command-line tool makes them, tokens got as an agency would. */
export interface TestAgency {
  code: string
  privateKey: AgencyPrivateKey
  jwks: { keys: JWK[] }
}

export const ADMIN_CODE = '000.00.00.A01'

export async function makeAgency (code: string, alg: AgencyAlg = 'ES256'): Promise<TestAgency> {
  const { privateKey, jwks } = await generateAgencyKeyPair(alg, code)
  return { code, privateKey, jwks }
}

/** Environment that makes `agency` the configured first admin. */
export function adminEnv (admin: TestAgency): Record<string, string> {
  return { ADMIN_AGENCY_CODE: admin.code, ADMIN_AGENCY_JWKS: JSON.stringify(admin.jwks) }
}

export interface AssertionTweaks {
  claims?: Record<string, unknown>
  header?: Record<string, unknown>
  /** sign with this key instead of the agency's */
  signWith?: AgencyPrivateKey
  iat?: number
  exp?: number
}

export async function assertion (app: FastifyInstance, agency: TestAgency, tweaks: AssertionTweaks = {}): Promise<string> {
  const signer = tweaks.signWith ?? agency.privateKey
  const now = Math.floor(Date.now() / 1000)
  const claims = {
    iss: agency.code,
    sub: agency.code,
    aud: app.config.gatewayIssuer,
    jti: randomUUID(),
    iat: tweaks.iat ?? now,
    exp: tweaks.exp ?? now + 60,
    ...tweaks.claims
  }
  const header = { alg: signer.alg, kid: signer.kid, typ: 'JWT', ...tweaks.header }
  return await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(await importJWK(signer, signer.alg))
}

export async function requestToken (app: FastifyInstance, clientAssertion: string, extra: Record<string, string> = {}) {
  return await app.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
      ...extra
    }).toString()
  })
}

export async function tokenFor (app: FastifyInstance, agency: TestAgency, scope?: string): Promise<string> {
  const res = await requestToken(app, await assertion(app, agency), scope ? { scope } : {})
  if (res.statusCode !== 200) throw new Error(`token for ${agency.code} refused: ${res.body}`)
  return res.json().access_token as string
}

export async function register (app: FastifyInstance, adminToken: string, agency: TestAgency, roles: AgencyRole[], extra: Record<string, unknown> = {}) {
  const res = await app.inject({
    method: 'PUT',
    url: `/v1/agencies/${agency.code}`,
    headers: { authorization: `Bearer ${adminToken}` },
    payload: { name: `Agency ${agency.code}`, roles, jwks: agency.jwks, ...extra }
  })
  if (res.statusCode >= 300) throw new Error(`registering ${agency.code} failed: ${res.body}`)
  return res
}
