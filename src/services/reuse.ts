import { randomBytes } from 'node:crypto'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import { ProblemError } from '../lib/problem.js'
import type { AgreementRecord, Store, StoredDocument, StoredDocumentVersion } from '../store/index.js'
import { AGENCY_ALGORITHMS } from './agencies.js'
import type { AgencyKeys } from './agency-keys.js'
import type { AuditInput } from './audit.js'
import type { Catalogue } from './catalogue.js'
import { statusOf, today } from './documents.js'
import type { DocumentStatus } from './documents.js'
import type { Subject } from './identifiers.js'
import { CLOCK_TOLERANCE_S } from './tokens.js'

/**
 * Reuse: what a requester may receive (agreements), with whose consent, minimized to the
 * granted fields, and proven by a signed attestation per released document.
 */
export const ATTESTATION_TYP = 'reuse-attestation+jwt'
export const RECEIPT_TYP = 'reuse-receipt+jwt'
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
export const DOWNLOAD_TTL_MS = 5 * 60_000


/** PUT /v1/agreements/{id}: the body, with the members that have a default optional. */
export type AgreementInput = Omit<AgreementRecord, 'id' | 'createdAt' | 'updatedAt' | 'status' | 'fileDownload' | 'hiddenAllowed'> & Partial<Pick<AgreementRecord, 'status' | 'fileDownload' | 'hiddenAllowed'>>

/**
 * Checks an agreement and works out the record to store, without writing it (so that it is
 * audited first): the requester must be one, each type must exist and name the fields it
 * releases, which that type's data can hold.
 */
export async function prepareAgreement (deps: { store: Store, catalogue: Catalogue }, id: string, body: AgreementInput, now = new Date()): Promise<{ agreement: AgreementRecord, previous?: AgreementRecord }> {
  const requester = await deps.store.getAgency(body.requester)
  if (!requester || !requester.roles.includes('requester')) throw new ProblemError(422, 'not_a_requester', `${body.requester} is not a registered agency with the requester role`)
  for (const type of body.documentTypes) {
    const definition = await deps.catalogue.get(type)
    if (!definition) throw new ProblemError(422, 'unknown_document_type', `no document type ${type}`)
    // minimization is never implied: a type granted without its fields would release either
    // everything or nothing, and neither is what an admin who forgot them meant
    const fields = Object.hasOwn(body.fields, type) ? body.fields[type] : undefined
    if (fields === undefined) throw new ProblemError(422, 'fields_missing', `fields has no entry for ${type}: list the fields released (["*"] for all, [] for none)`)
    const known = typeFields(definition.schema)
    const unknown = fields.filter((field) => field !== '*' && known !== undefined && !known.has(field))
    if (unknown.length > 0) throw new ProblemError(422, 'unknown_field', `${type} has no field ${unknown.join(', ')} (fields: ${[...known ?? []].join(', ')})`)
  }
  const extra = Object.keys(body.fields).filter((type) => !body.documentTypes.includes(type))
  if (extra.length > 0) throw new ProblemError(422, 'fields_for_ungranted_type', `fields names ${extra.join(', ')}, which documentTypes does not grant`)
  if (body.validUntil && body.validUntil < body.validFrom) throw new ProblemError(422, 'invalid_validity_period', 'validUntil is before validFrom')
  const previous = await deps.store.getAgreement(id)
  const at = now.toISOString()
  const agreement: AgreementRecord = {
    ...body,
    id,
    fileDownload: body.fileDownload ?? false,
    hiddenAllowed: body.hiddenAllowed ?? false,
    status: body.status ?? 'active',
    createdAt: previous?.createdAt ?? at,
    updatedAt: at
  }
  return { agreement, ...(previous ? { previous } : {}) }
}

/** The audit event of an agreement change, as every writer of agreements records it. */
export function agreementChange (agreement: AgreementRecord, previous: AgreementRecord | undefined): Pick<AuditInput, 'action' | 'outcome' | 'detail'> {
  return { action: previous ? 'agreement.updated' : 'agreement.created', outcome: 'granted', detail: { agreement: agreement.id, requester: agreement.requester, documentTypes: agreement.documentTypes, status: agreement.status } }
}

/** The active agreement letting `requester` reuse `type` for `procedureCode` today, if any. */
export function grantFor (agreements: AgreementRecord[], requester: string, type: string, procedureCode: string, day = today()): AgreementRecord | undefined {
  return agreements.find((a) => a.requester === requester && a.status === 'active' &&
    a.documentTypes.includes(type) && a.procedureCodes.includes(procedureCode) &&
    a.validFrom <= day && (a.validUntil === undefined || a.validUntil >= day))
}

/**
 * The structured-data fields an agreement releases of a type: what it lists, and nothing when it
 * lists nothing (an agreement stored before every type had to name its fields). The release path
 * and discovery both read this, so what a requester is told is what it receives.
 */
export function releasedFields (agreement: Pick<AgreementRecord, 'fields'>, type: string): string[] {
  const fields = Object.hasOwn(agreement.fields, type) ? agreement.fields[type] : undefined
  return Array.isArray(fields) ? fields : []
}

/**
 * The top-level fields a type's data can hold, when its schema says so exhaustively
 * (`additionalProperties: false`); undefined when any field could appear.
 */
export function typeFields (schema: Record<string, unknown>): Set<string> | undefined {
  const properties = schema.properties
  if (schema.additionalProperties !== false || typeof properties !== 'object' || properties === null) return undefined
  return new Set(Object.keys(properties))
}

/** Data minimization: only the granted top-level fields leave the gateway; `["*"]` grants all. */
export function minimize (data: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  if (fields.includes('*')) return data
  const out: Record<string, unknown> = {}
  for (const field of fields) if (Object.hasOwn(data, field)) out[field] = data[field]
  return out
}

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
  deps: { store: Store, agencyKeys: AgencyKeys }
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
  const portal = typeof iss === 'string' ? await deps.store.getAgency(iss) : undefined
  if (!portal || portal.status !== 'active' || !portal.roles.includes('portal')) throw refuse('consent_issuer_not_portal', 'the consent token is not signed by an active agency with the portal role')
  let claims: ConsentClaims
  try {
    const key = await deps.agencyKeys.key(portal, header.kid, header.alg)
    claims = (await jwtVerify(token, key, { algorithms: [header.alg], clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['sub', 'azp', 'exp', 'jti', 'iat'] })).payload as unknown as ConsentClaims
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
  if (await deps.store.consentRevoked(claims.jti)) throw refuse('consent_revoked', 'the citizen has withdrawn this consent')
  if (claims.sub !== expected.subject.id) throw refuse('consent_wrong_subject', 'the consent token is for another citizen')
  if (claims.azp !== expected.requester) throw refuse('consent_wrong_requester', 'the consent token is for another requesting agency')
  if (claims.dossier_code !== expected.dossierCode) throw refuse('consent_wrong_dossier', 'the consent token is for another dossier')
  if (claims.procedure_code !== expected.procedureCode) throw refuse('consent_wrong_procedure', 'the consent token is for another procedure')
  const missing = expected.types.filter((type) => !claims.document_types.includes(type))
  if (missing.length) throw refuse('consent_wrong_types', `the consent token does not cover ${missing.join(', ')}`)
  return claims
}

export interface Candidate {
  document: StoredDocument
  version: StoredDocumentVersion
  status: DocumentStatus
}

/** The current valid documents of a type, or why there is none (one not valid yet first: a valid one is on its way). */
export function pick (documents: StoredDocument[], type: string, now = new Date()): { valid: Candidate[], why?: 'none' | 'pending' | 'expired' | 'revoked' } {
  const candidates = documents
    .filter((d) => d.versions[0]?.type === type)
    .map((document) => {
      const version = document.versions[document.versions.length - 1] as StoredDocumentVersion
      return { document, version, status: statusOf(document, version, now) }
    })
  const valid = candidates.filter((c) => c.status === 'valid').sort((a, b) => b.version.issuedAt.localeCompare(a.version.issuedAt))
  if (valid.length) return { valid }
  if (candidates.length === 0) return { valid, why: 'none' }
  const why = (['pending', 'expired'] as const).find((status) => candidates.some((c) => c.status === status)) ?? 'revoked'
  return { valid, why }
}

export function newDownloadToken (): string {
  return randomBytes(32).toString('base64url')
}

