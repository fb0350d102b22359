import { decodeProtectedHeader } from 'jose'
import { verifyJwt } from '../lib/jwt-verify.js'
import { ProblemError } from '../lib/problem.js'
import type { AgencyStore, ReuseRecordStore } from '../store/index.js'
import { AGENCY_ALGORITHMS } from './agencies.js'
import type { AgencyKeys } from './agency-keys.js'
import type { Subject } from './identifiers.js'
import { CLOCK_TOLERANCE_S } from './tokens.js'

/**
 * The citizen's consent to a reuse: the token a portal signs, how the gateway checks it, and how
 * long a withdrawal is kept.
 */
export const CONSENT_MAX_LIFETIME_S = 30 * 86_400
/**
 * The `typ` a consent token should carry (RFC 8725 §3.11 explicit typing). Tokens without a
 * `typ`, or with the generic `JWT`, are still accepted: portals minted them before it was named,
 * and their required claims already set them apart from every other JWT the gateway sees.
 */
export const CONSENT_TYP = 'consent+jwt'
const CONSENT_TYPS = new Set([CONSENT_TYP, 'jwt'])
/** a withdrawal names the jti (POST /v1/consents/revoke takes at most 200 characters) */
const CONSENT_JTI_MAX = 200
/**
 * How long a withdrawn consent stays refused: past the last moment any consent token accepted
 * now can still be accepted (issued at most CLOCK_TOLERANCE_S ahead of our clock, expiring at
 * most 30 days later, accepted CLOCK_TOLERANCE_S past that).
 */
export const CONSENT_REVOCATION_TTL_MS = (CONSENT_MAX_LIFETIME_S + 2 * CLOCK_TOLERANCE_S + 1) * 1000

export interface ConsentClaims {
  iss: string
  sub: string
  azp: string
  document_types: string[]
  procedure_code: string
  dossier_code: string
  exp: number
  jti: string
}

/**
 * A consent token: signed by an active agency with the portal role, naming this citizen, this
 * requester, these types, this procedure and this dossier, issued by now, unexpired, at most 30 days long.
 */
export async function verifyConsent (
  token: string,
  expected: { subject: Subject, requester: string, types: string[], procedureCode: string, dossierCode: string },
  deps: { agencies: Pick<AgencyStore, 'getAgency'>, reuseRecords: Pick<ReuseRecordStore, 'consentRevoked'>, agencyKeys: Pick<AgencyKeys, 'key'> }
): Promise<ConsentClaims> {
  const refuse = (code: string, detail: string): ProblemError => new ProblemError(403, code, detail)
  let header: { alg?: string, kid?: string, typ?: unknown }
  try {
    header = decodeProtectedHeader(token)
  } catch {
    throw refuse('consent_invalid', 'the consent token is not a signed JWT')
  }
  if (!header.alg || !(AGENCY_ALGORITHMS as readonly string[]).includes(header.alg) || typeof header.kid !== 'string' || !header.kid) throw refuse('consent_invalid', `the consent token must be signed with ${AGENCY_ALGORITHMS.join(', ')} and name its key (kid)`)
  // another kind of JWT the portal signs (RFC 8725 §3.11): never taken for a consent
  if (header.typ !== undefined && (typeof header.typ !== 'string' || !CONSENT_TYPS.has(header.typ.toLowerCase().replace(/^application\//, '')))) {
    throw refuse('consent_invalid', `the consent token's typ must be ${CONSENT_TYP} (or absent)`)
  }
  let iss: unknown
  try {
    iss = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).iss
  } catch {
    throw refuse('consent_invalid', 'the consent token payload is not JSON')
  }
  const portal = typeof iss === 'string' ? await deps.agencies.getAgency(iss) : undefined
  if (!portal || portal.status !== 'active' || !portal.roles.includes('portal')) throw refuse('consent_issuer_not_portal', 'the consent token is not signed by an active agency with the portal role')
  let claims: ConsentClaims
  try {
    const key = await deps.agencyKeys.key(portal, header.kid, header.alg)
    claims = (await verifyJwt(token, key, { algorithms: [header.alg], clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['sub', 'azp', 'exp', 'jti', 'iat'] })).payload as unknown as ConsentClaims
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_JWT_EXPIRED') throw refuse('consent_expired', 'the consent token has expired')
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && (err as { claim?: string }).claim === 'nbf' && (err as { reason?: string }).reason === 'check_failed') {
      throw refuse('consent_not_yet_valid', 'the consent token is not valid yet (nbf is ahead of the gateway\'s clock)')
    }
    throw refuse('consent_invalid', 'the consent token does not verify against the portal\'s keys')
  }
  // iat is bounded by our clock, so `exp - iat` bounds how long the token lives from now, and a
  // withdrawal (kept CONSENT_REVOCATION_TTL_MS) outlives every token that can still be accepted
  const now = Math.floor(Date.now() / 1000)
  const iat = (claims as unknown as { iat: number }).iat
  if (iat > now + CLOCK_TOLERANCE_S) throw refuse('consent_not_yet_valid', 'the consent token was issued in the future (iat is ahead of the gateway\'s clock)')
  if (claims.exp - iat > CONSENT_MAX_LIFETIME_S) throw refuse('consent_invalid', 'a consent token may last at most 30 days')
  if (typeof claims.jti !== 'string' || claims.jti.length < 1 || claims.jti.length > CONSENT_JTI_MAX) throw refuse('consent_invalid', `the consent token's jti must be a string of 1 to ${CONSENT_JTI_MAX} characters`)
  // signed by the portal, yet checked: a list of another shape is a refusal, not a crash
  if (!Array.isArray(claims.document_types) || !claims.document_types.every((type) => typeof type === 'string')) throw refuse('consent_invalid', 'the consent token\'s document_types must be an array of document type codes')
  if (await deps.reuseRecords.consentRevoked(claims.jti)) throw refuse('consent_revoked', 'the citizen has withdrawn this consent')
  if (claims.sub !== expected.subject.id) throw refuse('consent_wrong_subject', 'the consent token is for another citizen')
  if (claims.azp !== expected.requester) throw refuse('consent_wrong_requester', 'the consent token is for another requesting agency')
  if (claims.dossier_code !== expected.dossierCode) throw refuse('consent_wrong_dossier', 'the consent token is for another dossier')
  if (claims.procedure_code !== expected.procedureCode) throw refuse('consent_wrong_procedure', 'the consent token is for another procedure')
  const missing = expected.types.filter((type) => !claims.document_types.includes(type))
  if (missing.length) throw refuse('consent_wrong_types', `the consent token does not cover ${missing.join(', ')}`)
  return claims
}
