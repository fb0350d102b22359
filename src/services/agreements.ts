import { ProblemError } from '../lib/problem.js'
import type { AgreementRecord, AgencyStore, AgreementStore } from '../store/index.js'
import { scopesOf } from './agencies.js'
import type { Call } from './call.js'
import type { Catalogue } from './catalogue.js'
import { today } from './document-status.js'
import { inForce, releasedFields } from './reuse.js'

/**
 * Data-sharing agreements: what an admin grants a requester (checked against the catalogue,
 * audited before it is stored), and what a caller is told it may do (discovery).
 */

/** PUT /v1/agreements/{id}: the body, with the members that have a default optional. */
export type AgreementInput = Omit<AgreementRecord, 'id' | 'createdAt' | 'updatedAt' | 'status' | 'fileDownload' | 'hiddenAllowed'> & Partial<Pick<AgreementRecord, 'status' | 'fileDownload' | 'hiddenAllowed'>>

/** One document type an agreement grants the caller today, as GET /v1/discovery lists it. */
export interface DiscoveryGrant {
  documentType: string
  procedureCodes: string[]
  fields: string[]
  fileDownload: boolean
  hiddenAllowed: boolean
  consentRequired: boolean
  agreement: string
  validUntil?: string
}

/** GET /v1/discovery (schemas/discovery.json). */
export interface Discovery {
  agency: string
  roles: string[]
  scopes: string[]
  issuableTypes?: string[]
  grants: DiscoveryGrant[]
}

export interface AgreementServiceDeps {
  agencies: Pick<AgencyStore, 'getAgency'>
  agreements: AgreementStore
  catalogue: Pick<Catalogue, 'get'>
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

export class AgreementService {
  constructor (private readonly deps: AgreementServiceDeps) {}

  /**
   * Creates or replaces an agreement: checked, then audited (fail closed), then stored, so it
   * takes effect on the next query of every process. `created` is false for a replacement.
   */
  async put (call: Pick<Call, 'audit'>, id: string, body: AgreementInput, now = new Date()): Promise<{ agreement: AgreementRecord, created: boolean }> {
    const { agreement, previous } = await this.prepare(id, body, now)
    await call.audit({
      action: previous ? 'agreement.updated' : 'agreement.created',
      outcome: 'granted',
      detail: { agreement: agreement.id, requester: agreement.requester, documentTypes: agreement.documentTypes, status: agreement.status }
    })
    await this.deps.agreements.putAgreement(agreement)
    return { agreement, created: previous === undefined }
  }

  /** Every agreement, active or not. */
  async list (): Promise<{ agreements: AgreementRecord[] }> {
    return { agreements: await this.deps.agreements.listAgreements() }
  }

  /**
   * What the caller may do: its roles and scopes, the types it may issue, and for a requester
   * each type its agreements in force grant, with the fields the release path will give it.
   */
  async discovery (call: Pick<Call, 'caller'>): Promise<Discovery> {
    const caller = call.caller
    const day = today()
    const agreements = caller.roles.includes('requester')
      ? (await this.deps.agreements.listAgreements()).filter((a) => a.requester === caller.code && inForce(a, day))
      : []
    const grants: DiscoveryGrant[] = []
    for (const agreement of agreements) {
      for (const type of agreement.documentTypes) {
        grants.push({
          documentType: type,
          procedureCodes: agreement.procedureCodes,
          fields: releasedFields(agreement, type),
          fileDownload: agreement.fileDownload,
          hiddenAllowed: agreement.hiddenAllowed,
          consentRequired: (await this.deps.catalogue.get(type))?.consentRequired ?? false,
          agreement: agreement.id,
          ...(agreement.validUntil ? { validUntil: agreement.validUntil } : {})
        })
      }
    }
    return {
      agency: caller.code,
      roles: caller.roles,
      scopes: scopesOf(caller.roles).filter((s) => caller.scopes.includes(s)),
      ...(caller.roles.includes('issuer') ? { issuableTypes: caller.issuableTypes } : {}),
      grants
    }
  }

  /**
   * Checks an agreement and works out the record to store, without writing it (so that it is
   * audited first): the requester must be one, each type must exist and name the fields it
   * releases, which that type's data can hold.
   */
  private async prepare (id: string, body: AgreementInput, now: Date): Promise<{ agreement: AgreementRecord, previous?: AgreementRecord }> {
    const requester = await this.deps.agencies.getAgency(body.requester)
    if (!requester || !requester.roles.includes('requester')) throw new ProblemError(422, 'not_a_requester', `${body.requester} is not a registered agency with the requester role`)
    for (const type of body.documentTypes) {
      const definition = await this.deps.catalogue.get(type)
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
    const previous = await this.deps.agreements.getAgreement(id)
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
}
