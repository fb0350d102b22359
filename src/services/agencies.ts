import { isDeepStrictEqual } from 'node:util'
import { StatedError } from '../lib/error-description.js'
import { OutboundRefusedError, checkOutboundTarget } from '../lib/outbound.js'
import type { OutboundPolicy } from '../lib/outbound.js'
import { ProblemError } from '../lib/problem.js'
import type { AgencyRecord, AgencyRole, AgencyStore, CatalogueStore } from '../store/index.js'
import type { AuditInput } from './audit.js'
import type { Call } from './call.js'

export type { AgencyRecord, AgencyRole }

/** Electronic agency code (Decision 20/2020/QĐ-TTg), e.g. 000.00.00.H41 */
export const AGENCY_CODE = /^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$/

export const ROLES: readonly AgencyRole[] = ['issuer', 'requester', 'portal', 'auditor', 'admin']

/** What each role may do, as OAuth scopes (SPEC §2). */
export const ROLE_SCOPES: Record<AgencyRole, string> = {
  issuer: 'documents:write',
  requester: 'documents:reuse',
  portal: 'portal',
  auditor: 'audit:read',
  admin: 'admin'
}

export const ALL_SCOPES = Object.values(ROLE_SCOPES)

export function scopesOf (roles: readonly AgencyRole[]): string[] {
  return ALL_SCOPES.filter((scope) => roles.some((role) => ROLE_SCOPES[role] === scope))
}

/**
 * Algorithms an agency key may sign with (SPEC §6); never `none`, never HMAC. `Ed25519` is RFC
 * 9864's fully-specified name for what `EdDSA` means with an Ed25519 key, and what current
 * clients (openid-client v6) sign with by default: both are accepted, for the same keys.
 */
export const AGENCY_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256'] as const

/** Names of one signature algorithm: a key registered for either may sign under both. */
const SAME_ALGORITHM: Record<string, string> = { EdDSA: 'Ed25519', Ed25519: 'EdDSA' }

/** Does a key registered for `registered` sign `used`? (the same algorithm, under either name) */
export function algorithmMatches (registered: string, used: string): boolean {
  return registered === used || SAME_ALGORITHM[registered] === used
}

/** The other name of `alg`, if it has one (EdDSA ↔ Ed25519). */
export function otherAlgorithmName (alg: string): string | undefined {
  return SAME_ALGORITHM[alg]
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

/**
 * An agency's keys must be usable, public, and told apart by `kid`: a private member in a
 * registration means the private key has leaked into the request, so it is refused outright.
 */
export function checkAgencyJwks (jwks: { keys: Array<Record<string, unknown>> }): void {
  const seen = new Set<string>()
  jwks.keys.forEach((key, i) => {
    const at = `/jwks/keys/${i}`
    for (const member of PRIVATE_MEMBERS) {
      if (member in key) {
        throw new ProblemError(400, 'private_key_material', `${at} contains private key material ("${member}"); register the public key only and keep the private key with the agency`)
      }
    }
    const kid = key.kid
    if (typeof kid !== 'string' || kid === '') throw new ProblemError(400, 'key_id_missing', `${at} has no kid; every key needs one so that tokens can name it`)
    if (seen.has(kid)) throw new ProblemError(400, 'key_id_duplicate', `${at}: kid "${kid}" appears twice`)
    seen.add(kid)
    const kty = key.kty
    const ok = (kty === 'EC' && key.crv === 'P-256') || (kty === 'OKP' && key.crv === 'Ed25519') || kty === 'RSA'
    if (!ok) throw new ProblemError(400, 'key_type_not_allowed', `${at}: only EC P-256, OKP Ed25519 and RSA keys are accepted`)
    if (key.alg !== undefined && !(AGENCY_ALGORITHMS as readonly unknown[]).includes(key.alg)) {
      throw new ProblemError(400, 'key_alg_not_allowed', `${at}: alg must be one of ${AGENCY_ALGORITHMS.join(', ')}`)
    }
    if (kty === 'RSA' && typeof key.n === 'string' && Buffer.from(key.n, 'base64url').length < 256) {
      throw new ProblemError(400, 'key_too_weak', `${at}: RSA keys must be at least 2048 bits`)
    }
  })
}

/** an agency's keys as the audit trail names them: where they are published, or their kids */
export function keysOnRecord (agency: AgencyRecord): { jwksUri: string } | { kids: string[] } {
  return agency.jwksUri ? { jwksUri: agency.jwksUri } : { kids: (agency.jwks?.keys ?? []).map((key) => String(key.kid)) }
}

/** A registration as AgencyService.prepare works it out. */
export interface AgencyChange { agency: AgencyRecord, created: boolean, previous?: AgencyRecord }

/**
 * The audit event of an agency registered or replaced, as every writer of agencies (the API,
 * the configured admin, the demo) records it before saving.
 */
export function agencyChange ({ agency, created, previous }: AgencyChange): Pick<AuditInput, 'action' | 'outcome' | 'detail'> {
  return {
    action: created ? 'agency.created' : 'agency.updated',
    outcome: 'granted',
    detail: {
      agency: agency.code,
      roles: agency.roles,
      ...(agency.issuableTypes ? { issuableTypes: agency.issuableTypes } : {}),
      status: agency.status,
      ...(agency.webhookUrl ? { webhookUrl: agency.webhookUrl } : {}),
      keys: keysOnRecord(agency),
      ...(previous ? { previous: { roles: previous.roles, ...(previous.issuableTypes ? { issuableTypes: previous.issuableTypes } : {}), status: previous.status, keys: keysOnRecord(previous) } } : {})
    }
  }
}

/** Whether a registration would leave the agency as it is (its times aside). */
export function agencyUnchanged ({ agency, previous }: AgencyChange): boolean {
  if (!previous) return false
  const { createdAt: _c, updatedAt: _u, ...next } = agency
  const { createdAt: _pc, updatedAt: _pu, ...before } = previous
  return isDeepStrictEqual(next, before)
}

/**
 * Registers an agency outside the API (the admin from configuration, the demo), audited as
 * the API audits it, the event saying where it came from; an agency already registered as it
 * would be is left alone: nothing written, nothing audited.
 */
export async function registerAgency (deps: { agencies: AgencyService, audit: { record(input: AuditInput): Promise<unknown> } }, code: string, input: AgencyInput, origin: 'configuration' | 'demo'): Promise<AgencyChange & { unchanged: boolean }> {
  const plan = await deps.agencies.prepare(code, input)
  if (agencyUnchanged(plan)) return { ...plan, unchanged: true }
  const event = agencyChange(plan)
  await deps.audit.record({ actor: null, ...event, detail: { ...event.detail, origin } })
  await deps.agencies.save(plan.agency)
  return { ...plan, unchanged: false }
}

/** PUT /v1/agencies/{code}: the record an admin sends, with the status defaulting to active. */
export type AgencyInput = Omit<AgencyRecord, 'code' | 'status' | 'createdAt' | 'updatedAt'> & Partial<Pick<AgencyRecord, 'status'>>

/** the API view of an agency: its record plus the scopes its roles grant (an issuer recorded before competences shows it may issue nothing) */
export type AgencyView = AgencyRecord & { scopes: string[] }

function view (agency: AgencyRecord): AgencyView {
  return { ...agency, ...(agency.roles.includes('issuer') ? { issuableTypes: agency.issuableTypes ?? [] } : {}), scopes: scopesOf(agency.roles) }
}

/** The gateway will call these URLs: each must be one OUTBOUND_ALLOWED_HOSTS allows, now (it is checked again on every call). */
async function checkOutboundUrls (policy: OutboundPolicy, input: AgencyInput): Promise<void> {
  for (const field of ['jwksUri', 'webhookUrl'] as const) {
    const url = input[field]
    if (url === undefined) continue
    try {
      await checkOutboundTarget(policy, url)
    } catch (err) {
      if (!(err instanceof OutboundRefusedError)) throw err
      throw new ProblemError(422, 'outbound_url_refused', `${field} ${err.message}`, { errors: [{ in: 'body', pointer: `/${field}`, detail: err.message }] })
    }
  }
}

const notFound = (code: string): ProblemError => new ProblemError(404, 'agency_not_found', `no agency ${code} is registered`)

export interface AgencyServiceDeps {
  agencies: Pick<AgencyStore, 'getAgency' | 'listAgencies' | 'putAgency' | 'bumpAgencyKeysGeneration'>
  /** where issuable document types are looked up */
  catalogue: Pick<CatalogueStore, 'getDocumentType'>
  /** where the gateway may call (an agency's jwksUri and webhookUrl); needed to register through the API */
  outbound?: OutboundPolicy
}

export class AgencyService {
  private readonly store: AgencyServiceDeps['agencies']

  constructor (private readonly deps: AgencyServiceDeps) {
    this.store = deps.agencies
  }

  /** Registers or replaces an agency for an admin: checked, on record, then written. */
  async register (call: Call, code: string, input: AgencyInput): Promise<{ agency: AgencyView, created: boolean }> {
    const outbound = this.deps.outbound
    if (!outbound) throw new StatedError('registering an agency needs the outbound policy (OUTBOUND_ALLOWED_HOSTS)')
    const plan = await this.prepare(code, input)
    const { agency, created } = plan
    // after the body's own checks (a request refused for its keys is told that first), before anything is written
    await checkOutboundUrls(outbound, input)
    // on record first: if the audit trail cannot take it, nothing changes
    await call.audit(agencyChange(plan))
    await this.save(agency)
    return { agency: view(agency), created }
  }

  /** Makes every process re-read the agency's keys, once that is on record (404 for no such agency). */
  async refreshKeysFor (call: Call, code: string): Promise<{ code: string, keysGeneration: number }> {
    const agency = await this.get(code)
    if (!agency) throw notFound(code)
    await call.audit({ action: 'agency.keys_refreshed', outcome: 'granted', detail: { agency: code, keys: keysOnRecord(agency) } })
    const { keysGeneration } = await this.refreshKeys(code)
    return { code, keysGeneration }
  }

  /** Every agency as the API shows it. */
  async views (): Promise<AgencyView[]> {
    return (await this.list()).map(view)
  }

  /** One agency as the API shows it (404 for no such agency). */
  async viewOf (code: string): Promise<AgencyView> {
    const agency = await this.get(code)
    if (!agency) throw notFound(code)
    return view(agency)
  }

  async get (code: string): Promise<AgencyRecord | undefined> {
    return await this.store.getAgency(code)
  }

  async list (): Promise<AgencyRecord[]> {
    return await this.store.listAgencies()
  }

  /** Creates or replaces an agency: the body is the whole new state (PUT semantics). */
  async put (code: string, input: AgencyInput, now = new Date()): Promise<AgencyChange> {
    const plan = await this.prepare(code, input, now)
    await this.save(plan.agency)
    return plan
  }

  /** Checks a change and works out the new record without writing it (so it can be audited first). */
  async prepare (code: string, input: AgencyInput, now = new Date()): Promise<AgencyChange> {
    if (!AGENCY_CODE.test(code)) throw new ProblemError(400, 'invalid_agency_code', `"${code}" is not an electronic agency code (e.g. 000.00.00.H41)`)
    if (input.jwks && input.jwksUri) throw new ProblemError(400, 'keys_ambiguous', 'give either jwks or jwksUri, not both')
    if (!input.jwks && !input.jwksUri) throw new ProblemError(400, 'keys_missing', 'an agency needs public keys: jwks (inline) or jwksUri')
    if (input.jwks) checkAgencyJwks(input.jwks)
    const roles = ROLES.filter((role) => input.roles.includes(role))
    const issuableTypes = await this.checkIssuableTypes(roles, input.issuableTypes ?? [])
    const previous = await this.store.getAgency(code)
    const agency: AgencyRecord = {
      code,
      name: input.name,
      roles,
      ...(roles.includes('issuer') ? { issuableTypes } : {}),
      ...(input.jwks ? { jwks: { keys: input.jwks.keys } } : {}),
      ...(input.jwksUri ? { jwksUri: input.jwksUri } : {}),
      ...(input.webhookUrl ? { webhookUrl: input.webhookUrl } : {}),
      status: input.status ?? 'active',
      createdAt: previous?.createdAt ?? now.toISOString(),
      updatedAt: now.toISOString()
    }
    return { agency, created: previous === undefined, ...(previous ? { previous } : {}) }
  }

  /**
   * An issuer is competent for the document types an admin lists, and only those: without the
   * list nothing ties it to what it indexes, and any issuer could plant any citizen's result of
   * any type (a commune's criminal-record extract). A list that names nothing is refused rather
   * than read as "everything".
   */
  private async checkIssuableTypes (roles: AgencyRole[], types: string[]): Promise<string[]> {
    if (!roles.includes('issuer')) {
      if (types.length > 0) throw new ProblemError(422, 'issuer_role_missing', 'issuableTypes is for an agency with the issuer role', { errors: [{ in: 'body', pointer: '/issuableTypes', detail: 'needs the issuer role' }] })
      return []
    }
    if (types.length === 0) {
      throw new ProblemError(422, 'issuable_types_missing', 'an issuer needs issuableTypes: the document types it is competent to issue (GET /v1/document-types)', { errors: [{ in: 'body', pointer: '/issuableTypes', detail: 'must list at least one document type' }] })
    }
    const known = await Promise.all(types.map(async (type) => await this.deps.catalogue.getDocumentType(type) !== undefined))
    const unknown = types.flatMap((type, i) => known[i] ? [] : [{ in: 'body', pointer: `/issuableTypes/${i}`, detail: `no document type "${type}" in the catalogue` }])
    if (unknown.length > 0) throw new ProblemError(422, 'unknown_document_type', `${unknown[0]?.pointer}: ${unknown[0]?.detail} (GET /v1/document-types)`, { errors: unknown })
    return types
  }

  /**
   * Writes the agency, then moves its keys generation on: every process then drops its copy of
   * the agency's jwks_uri at its next request, so keys the admin changed or re-registered hold
   * everywhere at once (agency-keys.ts), not when each process's copy expires.
   */
  async save (agency: AgencyRecord): Promise<void> {
    await this.store.putAgency(agency)
    await this.store.bumpAgencyKeysGeneration(agency.code)
  }

  /**
   * Makes every process fetch the agency's jwks_uri again at its next request: a key the agency
   * removed there stops working at once instead of when each process's copy expires.
   */
  async refreshKeys (code: string): Promise<{ keysGeneration: number }> {
    return { keysGeneration: await this.store.bumpAgencyKeysGeneration(code) }
  }
}
