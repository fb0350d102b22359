import { createHash } from 'node:crypto'
import { monotonicFactory } from 'ulid'
import { canonicalDigest } from '../lib/digest.js'
import { isSealed, open, seal, sealedKeyId } from '../lib/encryption.js'
import type { Keyring } from '../lib/encryption.js'
import { ProblemError, validationErrors } from '../lib/problem.js'
import type { AjvLikeError, ProblemFieldError } from '../lib/problem.js'
import type { DocumentKeys, RegisterOutcome, Store, StoredDocument, StoredDocumentVersion } from '../store/index.js'
import { addDuration } from './catalogue.js'
import type { Catalogue } from './catalogue.js'
import { checkedSubjectHash, subjectHash } from './identifiers.js'
import type { Subject } from './identifiers.js'
import { StatedError } from '../lib/error-description.js'

/** The media types a digitized file may have: what an issuer uploads, and so what a requester downloads. */
export const FILE_MEDIA_TYPES = ['application/pdf', 'image/jpeg', 'image/png', 'image/tiff']

const newId = monotonicFactory()

/**
 * The index of digitized results, issuer side. An issuer only ever sees and changes its own
 * results: another issuer's document is "not found", never "forbidden", so its existence is
 * not revealed. Nothing is overwritten: amending adds a version, revoking marks the document,
 * and every version stays readable.
 */
export interface DocumentInput {
  type: string
  subject: Subject
  documentNumber: string
  procedureCode: string
  dossierCode: string
  issuedAt: string
  validFrom?: string
  validUntil?: string
  data: Record<string, unknown>
}

export interface AmendInput {
  procedureCode: string
  dossierCode: string
  issuedAt?: string
  validFrom?: string
  validUntil?: string
  data: Record<string, unknown>
  reason: string
  /**
   * The amendment comes with a new paper: the new version does not take over the file of the
   * one before, and its scan is uploaded to it. Otherwise the file (the scan of the same paper)
   * is carried forward, so the new version is released with it.
   */
  replacesFile?: boolean
}

/** `pending`: not valid yet (validFrom is still to come, Vietnam time) — never released or attested as valid */
export type DocumentStatus = 'valid' | 'pending' | 'expired' | 'revoked' | 'superseded'

/** A version as an issuer reads it: its content, plus what is derived when it is read. */
export type DocumentView = Omit<StoredDocumentVersion, 'contentHash'> & {
  latestVersion: number
  file?: { mediaType: string, size: number, sha256: string, carriedFrom?: number }
  status: DocumentStatus
  revokedAt?: string
  revocationReason?: string
}

/** Today in Vietnam (UTC+7): validity dates are calendar dates there. */
export function today (now = new Date()): string {
  return new Date(now.getTime() + 7 * 3_600_000).toISOString().slice(0, 10)
}

/**
 * A version's status now. Revocation wins: it withdraws the result, every version of it, so a
 * relying party that checks an older version for `revoked` sees it (not `superseded`).
 */
export function statusOf (document: StoredDocument, version: StoredDocumentVersion, now = new Date()): DocumentStatus {
  if (document.revoked) return 'revoked'
  const latest = document.versions[document.versions.length - 1] as StoredDocumentVersion
  if (version.version < latest.version) return 'superseded'
  const day = today(now)
  if (version.validUntil !== undefined && version.validUntil < day) return 'expired'
  if (version.validFrom > day) return 'pending'
  return 'valid'
}

export function view (document: StoredDocument, version: StoredDocumentVersion, now = new Date()): DocumentView {
  const latest = document.versions[document.versions.length - 1] as StoredDocumentVersion
  const status = statusOf(document, version, now)
  const file = document.files[version.version]
  const { contentHash: _hash, ...content } = version
  return {
    ...content,
    latestVersion: latest.version,
    status,
    ...(file ? { file: { mediaType: file.mediaType, size: file.size, sha256: file.sha256, ...(file.carriedFrom !== undefined ? { carriedFrom: file.carriedFrom } : {}) } } : {}),
    ...(status === 'revoked' && document.revoked ? { revokedAt: document.revoked.at, revocationReason: document.revoked.reason } : {})
  }
}

// Encryption at rest of the structured data: a version's `data` is stored as
// `{ "$sealed": "enc:v1:…" }` when ENCRYPTION_KEYS is set, and opened as it is read back here,
// so the stores, the routes and every reader after this service only ever see it in clear.
// Data stored before encryption was turned on reads as it is.
const SEALED = '$sealed'

function sealedEnvelope (data: Record<string, unknown>): string | undefined {
  const envelope = data[SEALED]
  return isSealed(envelope) && Object.keys(data).length === 1 ? envelope : undefined
}

/**
 * Where a version's data belongs, authenticated with it: this version of the result with this
 * natural key (issuer, type, number), so sealed data copied to another document or version does
 * not open there. Not the document id: a registration retried after a crash is completed under
 * the id reserved first, which need not be the id its data was sealed with.
 */
function dataPlace (version: StoredDocumentVersion): string {
  return JSON.stringify(['document-data', version.issuer, version.type, version.documentNumber, version.version])
}

const dataName = (version: StoredDocumentVersion): string => `the data of document ${version.id} version ${version.version}`

/** the key a version's data is sealed with; undefined when it is stored in clear */
export function dataKeyId (version: StoredDocumentVersion): string | undefined {
  const envelope = sealedEnvelope(version.data)
  return envelope === undefined ? undefined : sealedKeyId(envelope) ?? 'unreadable'
}

/** the version as stored: its data sealed with the active key (unchanged without a keyring) */
export function sealVersion (keyring: Keyring | undefined, version: StoredDocumentVersion): StoredDocumentVersion {
  if (!keyring) return version
  return { ...version, data: { [SEALED]: seal(keyring, JSON.stringify(version.data), dataPlace(version)) } }
}

/**
 * The version as read: its data in clear. Data sealed with a key that is not configured
 * (UnknownKeyError) or that does not authenticate (DecryptionError) is never passed on: both
 * are operator errors, answered as a 500 and logged with the document id and key id only.
 */
export function openVersion (keyring: Keyring | undefined, version: StoredDocumentVersion): StoredDocumentVersion {
  const envelope = sealedEnvelope(version.data)
  if (envelope === undefined) return version
  return { ...version, data: JSON.parse(open(keyring, envelope, dataPlace(version), dataName(version))) }
}

export function openDocument (keyring: Keyring | undefined, document: StoredDocument): StoredDocument {
  return { ...document, versions: document.versions.map((version) => openVersion(keyring, version)) }
}

export type ReencryptOutcome = 'reencrypted' | 'current' | 'missing' | 'changed'

const unprocessable = (code: string, detail: string, errors?: ProblemFieldError[]): ProblemError =>
  new ProblemError(422, code, detail, errors ? { errors } : {})

/** The issuing agency as the index sees it: its code and the document types it is competent for. */
export interface Issuer {
  code: string
  issuableTypes: readonly string[]
}

/**
 * 403: the issuer is not competent for this document type (an admin lists an issuer's types on
 * its agency record). It carries what the refusal's audit event records: whose result and which.
 */
export class TypeNotIssuableError extends ProblemError {
  constructor (readonly issuer: string, readonly type: string, readonly subjectHash: string, readonly document?: { id: string, version: number }) {
    super(403, 'type_not_issuable', `agency ${issuer} may not issue ${type}: it is not among the document types an admin lists for it (issuableTypes, see GET /v1/discovery)`)
    this.name = 'TypeNotIssuableError'
  }
}

function checkCompetence (issuer: Issuer, type: string, subjectHash: string, document?: { id: string, version: number }): void {
  if (!issuer.issuableTypes.includes(type)) throw new TypeNotIssuableError(issuer.code, type, subjectHash, document)
}

export interface PreparedAmendment {
  subjectHash: string
  next: StoredDocumentVersion
  expected: number
  document: StoredDocument
  /** whether the new version takes over the file of the one before */
  carryFile: boolean
}

export interface PreparedRegistration {
  keys: DocumentKeys
  first: StoredDocumentVersion
}

export class DocumentService {
  constructor (private readonly store: Store, private readonly catalogue: Catalogue, private readonly pepper: string, private readonly keyring?: Keyring) {}

  subjectHash (subject: Subject): string {
    return subjectHash(this.pepper, subject)
  }

  /** the subject's keyed hash, once its identifier is checked (422 otherwise) */
  checkedSubjectHash (subject: Subject): string {
    return checkedSubjectHash(this.pepper, subject)
  }

  /** Everything a registration needs checked and computed, before anything is written or audited. */
  async prepareRegistration (issuer: Issuer, input: DocumentInput, now = new Date(), catalogue: Pick<Catalogue, 'validator'> = this.catalogue): Promise<PreparedRegistration> {
    const hash = this.checkedSubjectHash(input.subject)
    const found = await catalogue.validator(input.type)
    if (!found) throw unprocessable('unknown_document_type', `no document type "${input.type}" in the catalogue (GET /v1/document-types)`, [{ in: 'body', pointer: '/type', detail: 'is not a known document type' }])
    checkCompetence(issuer, input.type, hash)
    const { validate, type } = found
    if (!type.subjectKinds.includes(input.subject.kind)) {
      throw unprocessable('subject_kind_not_allowed', `a ${type.code} is about a ${type.subjectKinds.join(' or ')}, not a ${input.subject.kind}`, [{ in: 'body', pointer: '/subject/kind', detail: `must be ${type.subjectKinds.join(' or ')}` }])
    }
    this.checkData(validate, input.data)
    const validFrom = input.validFrom ?? input.issuedAt
    const validUntil = input.validUntil ?? (type.defaultValidity ? addDuration(validFrom, type.defaultValidity) : undefined)
    this.checkPeriod(input.issuedAt, validFrom, validUntil)
    const content = {
      type: input.type,
      subject: input.subject,
      documentNumber: input.documentNumber,
      procedureCode: input.procedureCode,
      dossierCode: input.dossierCode,
      issuedAt: input.issuedAt,
      validFrom,
      ...(validUntil ? { validUntil } : {}),
      data: input.data
    }
    const first: StoredDocumentVersion = {
      id: newId(),
      version: 1,
      typeSchemaVersion: type.schemaVersion,
      issuer: issuer.code,
      ...content,
      createdAt: now.toISOString(),
      contentHash: canonicalDigest(content)
    }
    return {
      keys: {
        subjectHash: hash,
        naturalKey: `${issuer.code}:${input.type}:${createHash('sha256').update(input.documentNumber).digest('base64url').slice(0, 32)}`
      },
      first
    }
  }

  async register (prepared: PreparedRegistration): Promise<RegisterOutcome> {
    const outcome = await this.store.registerDocument(prepared.keys, sealVersion(this.keyring, prepared.first))
    return { ...outcome, document: openDocument(this.keyring, outcome.document) }
  }

  /** One of the issuer's own documents; another issuer's is not found. */
  async own (issuer: string, id: string): Promise<{ document: StoredDocument, subjectHash: string }> {
    const found = /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id) ? await this.store.getDocument(id) : undefined
    if (!found || found.document.versions[0]?.issuer !== issuer) throw new ProblemError(404, 'document_not_found', `no document ${id} of this issuer`)
    return { ...found, document: openDocument(this.keyring, found.document) }
  }

  /** One of the issuer's own documents, to change: only of a type it is still competent for (403 otherwise). */
  async ownToChange (issuer: Issuer, id: string): Promise<{ document: StoredDocument, subjectHash: string }> {
    const found = await this.own(issuer.code, id)
    const latest = found.document.versions[found.document.versions.length - 1] as StoredDocumentVersion
    checkCompetence(issuer, latest.type, found.subjectHash, { id, version: latest.version })
    return found
  }

  /** Every document of a subject (of these types), their data in clear: what reuse and the portal read. */
  async documentsOfSubject (subjectHash: string, types?: string[]): Promise<StoredDocument[]> {
    return (await this.store.documentsOfSubject(subjectHash, types)).map((document) => openDocument(this.keyring, document))
  }

  /**
   * Re-encrypts a document's data with the active key (key rotation), version by version, each
   * only if it is still as read. Data already under the active key is left alone, so a rotation
   * run again, or resumed after an interruption, redoes nothing.
   */
  async reencrypt (id: string): Promise<ReencryptOutcome> {
    const keyring = this.keyring
    if (!keyring) throw new StatedError('no encryption key is configured (ENCRYPTION_KEYS or ENCRYPTION_KEYS_FILE)')
    const found = await this.store.getDocument(id)
    if (!found) return 'missing'
    let outcome: ReencryptOutcome = 'current'
    for (const stored of found.document.versions) {
      if (dataKeyId(stored) === keyring.activeId) continue
      const next = sealVersion(keyring, openVersion(keyring, stored))
      if (!await this.store.rewriteDocumentVersion(found.subjectHash, stored, next)) return 'changed'
      outcome = 'reencrypted'
    }
    return outcome
  }

  async read (issuer: string, id: string, version?: number): Promise<DocumentView> {
    const { document } = await this.own(issuer, id)
    const wanted = version === undefined ? document.versions[document.versions.length - 1] : document.versions.find((v) => v.version === version)
    if (!wanted) throw new ProblemError(404, 'version_not_found', `document ${id} has no version ${version}`)
    return view(document, wanted)
  }

  async prepareAmendment (issuer: Issuer, id: string, input: AmendInput, now = new Date()): Promise<PreparedAmendment> {
    const { document, subjectHash } = await this.ownToChange(issuer, id)
    if (document.revoked) throw new ProblemError(409, 'document_revoked', `document ${id} is revoked and cannot be amended`)
    const latest = document.versions[document.versions.length - 1] as StoredDocumentVersion
    const found = await this.catalogue.validator(latest.type)
    if (!found) throw unprocessable('unknown_document_type', `document type ${latest.type} is no longer in the catalogue`)
    this.checkData(found.validate, input.data)
    const issuedAt = input.issuedAt ?? latest.issuedAt
    const validFrom = input.validFrom ?? latest.validFrom
    const validUntil = input.validUntil ?? latest.validUntil
    this.checkPeriod(issuedAt, validFrom, validUntil)
    const content = {
      type: latest.type,
      subject: latest.subject,
      documentNumber: latest.documentNumber,
      procedureCode: input.procedureCode,
      dossierCode: input.dossierCode,
      issuedAt,
      validFrom,
      ...(validUntil ? { validUntil } : {}),
      data: input.data
    }
    const next: StoredDocumentVersion = {
      id,
      version: latest.version + 1,
      typeSchemaVersion: found.type.schemaVersion,
      issuer: issuer.code,
      ...content,
      createdAt: now.toISOString(),
      contentHash: canonicalDigest(content),
      amendmentReason: input.reason
    }
    return { subjectHash, next, expected: latest.version, document, carryFile: input.replacesFile !== true }
  }

  /**
   * Appends the prepared version. Its file is the one the version before has when the store
   * appends it (carried forward unless the amendment replaces the file): the bytes stay where
   * they are, kept once by content (and encrypted, if they were), so a download of the new
   * version serves the same file under the same digest.
   */
  async amend (prepared: PreparedAmendment): Promise<DocumentView> {
    const appended = await this.store.amendDocument(prepared.subjectHash, sealVersion(this.keyring, prepared.next), prepared.expected, { carryFile: prepared.carryFile })
    if (!appended) {
      throw new ProblemError(409, 'concurrent_change', `document ${prepared.next.id} changed meanwhile (amended or revoked); read it again`)
    }
    const files = { ...prepared.document.files, ...(appended.file ? { [prepared.next.version]: appended.file } : {}) }
    return view({ ...prepared.document, versions: [...prepared.document.versions, prepared.next], files }, prepared.next)
  }

  async revoke (issuer: string, id: string, subjectHashValue: string, reason: string, now = new Date()): Promise<boolean> {
    return await this.store.revokeDocument(subjectHashValue, id, { at: now.toISOString(), reason, by: issuer })
  }

  private checkData (validate: (data: unknown) => boolean, data: Record<string, unknown>): void {
    // data shaped like sealed data would be taken for it when read (only a permissive type's schema lets it through)
    if (sealedEnvelope(data) !== undefined) throw unprocessable('data_invalid', `the structured data may not be a single ${SEALED} field`, [{ in: 'body', pointer: `/data/${SEALED}`, detail: 'is reserved' }])
    if (validate(data)) return
    const errors = validationErrors((validate as unknown as { errors?: AjvLikeError[] }).errors ?? [], 'body', { prefix: '/data', unknownField: 'is not a field of this document type' })
    throw unprocessable('data_invalid', `the structured data does not match the document type's schema: ${errors[0]?.pointer ?? '/data'} ${errors[0]?.detail ?? ''}`.trim(), errors)
  }

  private checkPeriod (issuedAt: string, validFrom: string, validUntil: string | undefined): void {
    if (validUntil !== undefined && validUntil < validFrom) {
      throw unprocessable('invalid_validity_period', `validUntil (${validUntil}) is before validFrom (${validFrom})`, [{ in: 'body', pointer: '/validUntil', detail: 'must not be before validFrom' }])
    }
    if (validFrom < issuedAt) {
      throw unprocessable('invalid_validity_period', `validFrom (${validFrom}) is before issuedAt (${issuedAt})`, [{ in: 'body', pointer: '/validFrom', detail: 'must not be before issuedAt' }])
    }
  }
}
