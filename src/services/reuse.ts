import { randomBytes, randomUUID } from 'node:crypto'
import { canonicalDigest, sha256Hex } from '../lib/digest.js'
import { ProblemError } from '../lib/problem.js'
import type { AgreementRecord, StoredDocument, StoredDocumentVersion, AgencyStore, AgreementStore, ReuseRecordStore } from '../store/index.js'
import type { AgencyKeys } from './agency-keys.js'
import type { Call, WarnLogger } from './call.js'
import type { Catalogue, DocumentTypeDefinition } from './catalogue.js'
import { CONSENT_REVOCATION_TTL_MS, verifyConsent } from './consent.js'
import { statusOf, today } from './document-status.js'
import type { DocumentService } from './documents.js'
import type { DocumentStatus } from './document-status.js'
import type { Subject } from './identifiers.js'
import type { SigningKeys } from './signing-keys.js'
import type { ReuseStats } from './stats.js'

/**
 * Reuse: what a requester may receive (agreements), with whose consent, minimized to the
 * granted fields, and proven by a signed attestation per released document. ReuseService is the
 * reuse query as a use case; the functions before it are the rules it applies.
 */
export const ATTESTATION_TYP = 'reuse-attestation+jwt'
export const RECEIPT_TYP = 'reuse-receipt+jwt'
export const DOWNLOAD_TTL_MS = 5 * 60_000

/** Whether an agreement grants anything on `day`: active, and inside its validity period. */
export function inForce (agreement: AgreementRecord, day = today()): boolean {
  return agreement.status === 'active' && agreement.validFrom <= day && (agreement.validUntil === undefined || agreement.validUntil >= day)
}

/** The active agreement letting `requester` reuse `type` for `procedureCode` today, if any. */
export function grantFor (agreements: AgreementRecord[], requester: string, type: string, procedureCode: string, day = today()): AgreementRecord | undefined {
  return agreements.find((a) => a.requester === requester && a.documentTypes.includes(type) && a.procedureCodes.includes(procedureCode) && inForce(a, day))
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

/** Data minimization: only the granted top-level fields leave the gateway; `["*"]` grants all. */
export function minimize (data: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  if (fields.includes('*')) return data
  const out: Record<string, unknown> = {}
  for (const field of fields) if (Object.hasOwn(data, field)) out[field] = data[field]
  return out
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


/** POST /v1/reuse-queries (schemas/reuse-query.json). */
export interface ReuseQuery {
  subject: Subject
  documentTypes: string[]
  purpose: { procedureCode: string, dossierCode: string }
  reason?: string
  consentToken?: string
  hidden?: boolean
  hiddenUntil?: string
  mode?: 'full' | 'status'
}

/**
 * What a reuse query answers: the body to send as it is (the receipt signs these bytes) and its
 * receipt; or, refused after it was examined, the problem to send and the audit event of the
 * refusal, which its receipt names (refusalReceipt, once the problem body is written).
 */
export type ReuseAnswer = { body: string, receipt: string } | { refusal: ProblemError, queryId: string }

/**
 * Told what each query came to, per document type asked for (a type the catalogue does not hold
 * as `unknown`): what metrics count. Never the subject, the requester or the dossier.
 */
export type ReuseObserver = (mode: 'full' | 'status', outcomes: Array<{ documentType: string, outcome: 'found' | 'not_found' | 'denied' }>) => void

export interface ReuseServiceDeps {
  agencies: Pick<AgencyStore, 'getAgency'>
  agreements: Pick<AgreementStore, 'listAgreements'>
  reuseRecords: Pick<ReuseRecordStore, 'consentRevoked' | 'revokeConsent' | 'putDownloadGrant' | 'recordReuse'>
  catalogue: Pick<Catalogue, 'get'>
  index: Pick<DocumentService, 'checkedSubjectHash' | 'documentsOfSubject'>
  agencyKeys: Pick<AgencyKeys, 'key'>
  signer: Pick<SigningKeys, 'sign'>
  stats: Pick<ReuseStats, 'countQuery' | 'countDenial'>
  /** the gateway's issuer name, in every attestation and receipt */
  issuer: string
  onQueried?: ReuseObserver
}

/** A query being answered: who asks what, and what the grants were read as. */
interface Asked {
  call: Call
  query: ReuseQuery
  subjectHash: string
  agreements: AgreementRecord[]
  types: Array<DocumentTypeDefinition | undefined>
}

interface Denial { code: string, detail: string, extra?: Record<string, unknown> }

export class ReuseService {
  constructor (private readonly deps: ReuseServiceDeps) {}

  /**
   * A reuse query: grants and consent checked, then the subject's valid results read, audited
   * (fail closed: nothing is released unless it is on record), minimized, attested, and the
   * answer signed. A refusal is audited as denied before it is answered.
   */
  async query (call: Call, query: ReuseQuery, rawBody: Buffer): Promise<ReuseAnswer> {
    const subjectHash = this.deps.index.checkedSubjectHash(query.subject)
    // the grants first, the subject's documents only once they are granted: a refusal reads
    // nothing of the citizen's, so it costs (and takes) the same whatever the citizen holds
    const [agreements, types] = await Promise.all([
      this.deps.agreements.listAgreements(),
      Promise.all(query.documentTypes.map(async (type) => await this.deps.catalogue.get(type)))
    ])
    const asked: Asked = { call, query, subjectHash, agreements, types }
    const allowed = await this.authorize(asked)
    if ('code' in allowed) return await this.deny(asked, allowed)
    return await this.release(asked, rawBody, allowed)
  }

  /**
   * The receipt of a refusal, over the problem body's bytes exactly as sent; undefined (and
   * logged) when it cannot be signed: the refusal still goes out. `queryId` is the refusal's
   * audit event; a request refused before it was examined gets an id of its own.
   */
  async refusalReceipt (refused: { requester: string, rawBody: Buffer, body: string, queryId?: string | undefined }, log: WarnLogger): Promise<string | undefined> {
    try {
      return await this.receipt(refused.requester, refused.rawBody, refused.queryId ?? randomUUID(), refused.body)
    } catch (err) {
      log.warn({ err }, 'reuse refusal sent without a receipt: it could not be signed')
      return undefined
    }
  }

  /** The citizen withdraws a consent: audited, then refused on every process from the next query on. */
  async revokeConsent (call: Pick<Call, 'audit'>, withdrawal: { consentId: string, reason?: string }): Promise<void> {
    await call.audit({ action: 'consent.revoked', outcome: 'granted', detail: { consentId: withdrawal.consentId, ...(withdrawal.reason ? { reason: withdrawal.reason } : {}) } })
    // kept past the longest a consent token can live
    await this.deps.reuseRecords.revokeConsent(withdrawal.consentId, CONSENT_REVOCATION_TTL_MS)
  }

  /** The agreement granting each type, and the consent that was needed; or why the query is refused. */
  private async authorize ({ call, query, agreements, types }: Asked): Promise<{ grants: Map<string, AgreementRecord>, consentId?: string } | Denial> {
    const { caller } = call
    const { procedureCode, dossierCode } = query.purpose
    const grants = new Map<string, AgreementRecord>()
    for (const type of query.documentTypes) {
      const grant = grantFor(agreements, caller.code, type, procedureCode)
      if (!grant) {
        // an agreement outside its validity grants nothing: no_agreement, not a procedure problem
        const anyForType = agreements.some((a) => a.requester === caller.code && a.documentTypes.includes(type) && inForce(a))
        return anyForType
          ? { code: 'procedure_not_granted', detail: `the agreement for ${type} does not cover procedure ${procedureCode}`, extra: { documentType: type } }
          : { code: 'no_agreement', detail: `agency ${caller.code} has no active agreement to reuse ${type}`, extra: { documentType: type } }
      }
      grants.set(type, grant)
    }
    if (query.hidden) {
      if (![...grants.values()].every((g) => g.hiddenAllowed)) return { code: 'hidden_not_allowed', detail: 'this agency\'s agreement does not allow hidden queries' }
      if (!query.hiddenUntil) throw new ProblemError(400, 'hidden_until_required', 'a hidden query needs hiddenUntil: the date from which the citizen sees it')
    }
    const needConsent = query.documentTypes.filter((_type, i) => types[i]?.consentRequired)
    if (needConsent.length === 0) return { grants }
    if (!query.consentToken) return { code: 'consent_required', detail: `${needConsent.join(', ')} needs the citizen's consent token from the national portal` }
    try {
      const consent = await verifyConsent(query.consentToken, { subject: query.subject, requester: caller.code, types: needConsent, procedureCode, dossierCode }, this.deps)
      return { grants, consentId: consent.jti }
    } catch (err) {
      if (err instanceof ProblemError) return { code: err.code, detail: err.message }
      throw err
    }
  }

  /** A refused query: audited as denied (fail closed), counted, then answered with a 403. */
  private async deny ({ call, query, subjectHash, agreements, types }: Asked, denial: Denial): Promise<ReuseAnswer> {
    const purpose = query.purpose
    const event = await call.audit({ action: 'reuse.queried', outcome: 'denied', subject: subjectHash, purpose, detail: { code: denial.code, documentTypes: query.documentTypes, ...denial.extra } })
    // counters only for what exists: a type code the catalogue does not hold, or a procedure
    // no agreement names, would otherwise make a counter per code a caller invents
    const knownTypes = query.documentTypes.filter((_type, i) => types[i] !== undefined)
    const knownProcedure = agreements.some((a) => a.procedureCodes.includes(purpose.procedureCode))
    await this.deps.stats.countDenial(call.log, { requester: call.caller.code, ...(knownProcedure ? { procedureCode: purpose.procedureCode } : {}), documentTypes: knownTypes })
    this.deps.onQueried?.(query.mode ?? 'full', query.documentTypes.map((type, i) => ({ documentType: types[i] ? type : 'unknown', outcome: 'denied' })))
    return { refusal: new ProblemError(403, denial.code, denial.detail), queryId: event.id }
  }

  /** A granted query: the valid results, on record before anything of them is released. */
  private async release ({ call, query, subjectHash }: Asked, rawBody: Buffer, { grants, consentId }: { grants: Map<string, AgreementRecord>, consentId?: string }): Promise<ReuseAnswer> {
    const { caller } = call
    const purpose = query.purpose
    const documents = await this.deps.index.documentsOfSubject(subjectHash, query.documentTypes)
    const statusOnly = query.mode === 'status'
    const picked = query.documentTypes.map((type) => ({ type, ...pick(documents, type) }))
    const event = await call.audit({
      action: 'reuse.queried',
      outcome: picked.some((p) => p.valid.length > 0) ? 'granted' : 'empty',
      subject: subjectHash,
      documents: picked.flatMap((p) => p.valid.map((c) => ({ id: c.version.id, version: c.version.version }))),
      purpose,
      detail: {
        documentTypes: query.documentTypes,
        mode: statusOnly ? 'status' : 'full',
        ...(query.reason ? { reason: query.reason } : {}),
        ...(query.hidden ? { hidden: true, hiddenUntil: query.hiddenUntil } : {}),
        ...(consentId ? { consentId } : {})
      }
    })

    const iat = Math.floor(Date.now() / 1000)
    let n = 0
    const results = []
    // the writes a release makes (download grants, reuse records) go out together, and are all
    // in the store before the answer is sent
    const writes: Array<Promise<unknown>> = []
    for (const p of picked) {
      const grant = grants.get(p.type) as AgreementRecord
      const out = []
      for (const c of p.valid) {
        n++
        const v = c.version
        const base = { id: v.id, version: v.version, status: c.status, issuer: v.issuer, validFrom: v.validFrom, ...(v.validUntil ? { validUntil: v.validUntil } : {}) }
        // Status mode signs no attestation: an attestation vouches for the data and file digest
        // released, and this mode releases neither. The Reuse-Receipt, signed over the whole
        // answer, already proves to a relying party which results were said valid, until when.
        if (statusOnly) { out.push(base); continue }
        const data = minimize(v.data, releasedFields(grant, p.type))
        const file = c.document.files[v.version]
        const attestation = await this.deps.signer.sign({
          iss: this.deps.issuer,
          aud: caller.code,
          iat,
          jti: `${event.id}.${n}`,
          audit_event: event.id,
          document_id: v.id,
          document_version: v.version,
          document_type: p.type,
          issuer: v.issuer,
          status: c.status,
          valid_until: v.validUntil ?? null,
          // data_sha256: SHA-256 of the released data in RFC 8785 canonical JSON
          data_sha256: canonicalDigest(data),
          file_sha256: file?.sha256 ?? null,
          procedure_code: purpose.procedureCode,
          dossier_code: purpose.dossierCode
        }, ATTESTATION_TYP)
        let download: string | undefined
        if (file && grant.fileDownload) {
          const token = newDownloadToken()
          writes.push(this.deps.reuseRecords.putDownloadGrant(token, { requester: caller.code, documentId: v.id, version: v.version, sha256: file.sha256, mediaType: file.mediaType, size: file.size, dossierCode: purpose.dossierCode, procedureCode: purpose.procedureCode }, DOWNLOAD_TTL_MS))
          download = `/v1/files/${token}`
        }
        writes.push(this.deps.reuseRecords.recordReuse(subjectHash, v.id, { requester: caller.code, version: v.version, dossierCode: purpose.dossierCode, procedureCode: purpose.procedureCode, at: new Date().toISOString() }))
        out.push({
          ...base,
          documentNumber: v.documentNumber,
          issuedAt: v.issuedAt,
          data,
          ...(file ? { file: { mediaType: file.mediaType, size: file.size, sha256: file.sha256 } } : {}),
          ...(download ? { download } : {}),
          attestation
        })
      }
      results.push({ documentType: p.type, found: out.length > 0, ...(p.why ? { why: p.why } : {}), documents: out })
    }

    // counted while the receipt is signed; never fails the query
    const counted = this.deps.stats.countQuery(call.log, { requester: caller.code, procedureCode: purpose.procedureCode, documentTypes: query.documentTypes, foundTypes: picked.filter((p) => p.valid.length > 0).map((p) => p.type) })
    const body = JSON.stringify({ queryId: event.id, results })
    const receipt = await this.receipt(caller.code, rawBody, event.id, body, iat)
    await Promise.all([...writes, counted])
    this.deps.onQueried?.(statusOnly ? 'status' : 'full', picked.map((p) => ({ documentType: p.type, outcome: p.valid.length > 0 ? 'found' : 'not_found' })))
    return { body, receipt }
  }

  /** The Reuse-Receipt over a request's body and the answer's bytes as sent, for its requester. */
  private async receipt (requester: string, rawBody: Buffer, jti: string, body: string, iat = Math.floor(Date.now() / 1000)): Promise<string> {
    return await this.deps.signer.sign({
      iss: this.deps.issuer,
      aud: requester,
      iat,
      jti,
      request_sha256: sha256Hex(rawBody),
      response_sha256: sha256Hex(body)
    }, RECEIPT_TYP)
  }
}
