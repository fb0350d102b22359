import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { ulidFactory } from '../lib/ulid.js'
import { canonicalDigest } from '../lib/digest.js'
import type { Keyring } from '../lib/encryption.js'
import { ProblemError, validationErrors } from '../lib/problem.js'
import type { AjvLikeError, ProblemFieldError } from '../lib/problem.js'
import type { DocumentKeys, RegisterOutcome, StoredDocument, StoredDocumentVersion, DocumentStore } from '../store/index.js'
import { addDuration } from './catalogue.js'
import { view } from './document-status.js'
import type { DocumentStatus, DocumentView } from './document-status.js'
import { SEALED, dataKeyId, openDocument, openVersion, sealVersion, sealedEnvelope } from './document-sealing.js'
import type { Catalogue } from './catalogue.js'
import { checkedSubjectHash, subjectHash } from './identifiers.js'
import type { Subject } from './identifiers.js'
import { StatedError } from '../lib/error-description.js'
import { BlobDigestMismatchError, BlobTooLargeError } from '../store/blob-store.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Call } from './call.js'

/** The media types a digitized file may have: what an issuer uploads, and so what a requester downloads. */
export const FILE_MEDIA_TYPES = ['application/pdf', 'image/jpeg', 'image/png', 'image/tiff']

const newId = ulidFactory()

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

/** A change to the index asked for by an issuer: who it is, and its audit trail. */
export type IssuerCall = Omit<Call, 'caller'> & { caller: Issuer }

export type RegistrationResult =
  | { outcome: 'created' | 'existing', document: DocumentView }
  | { outcome: 'conflict', problem: ProblemError }

/** One line of a batch's answer, in the order of the input lines. */
export type BatchLineResult =
  | { line: number, outcome: 'created' | 'existing', id: string, version: number, status: DocumentStatus }
  | { line: number, outcome: 'conflict' | 'rejected', problem: Record<string, unknown> }

/** A digitized file as it arrives: its bytes, streamed, and what the sender announced of them. */
export interface FileUpload {
  bytes: Readable
  mediaType: string
  /** the version it is for (default: the latest) */
  version?: number | undefined
  /** the size announced before the bytes (Content-Length), refused early when over the limit */
  announcedSize?: number | undefined
  /** the RFC 9530 digest dictionary announced (Repr-Digest), checked against the bytes */
  digest?: string | string[] | undefined
}

export interface DocumentServiceDeps {
  documents: Pick<DocumentStore, 'registerDocuments' | 'findRegistrations' | 'getDocument' | 'amendDocument' | 'revokeDocument' | 'attachDocumentFile' | 'documentsOfSubject' | 'rewriteDocumentVersion'>
  catalogue: Catalogue
  /** the key of the subjects' keyed hashes */
  pepper: string
  keyring?: Keyring | undefined
  /** withdraws the announcement of a change that was not made after all; absent where nothing announces */
  announcements?: { discard: (auditEventId: string) => Promise<void> }
  /** where digitized files are kept, and how large one may be; absent where no file is attached */
  files?: { blobs: BlobStore, maxBytes: number }
}

/** batch lines indexed together: one lookup, one audit append and one store write for them all */
const BATCH_CHUNK = 500

/**
 * Runs a change the calling issuer asked for; refused because the caller may not issue that
 * type, it is on record as denied under the change's own action before the 403 is answered.
 */
async function competent<T> (call: IssuerCall, action: string, change: () => Promise<T>): Promise<T> {
  try {
    return await change()
  } catch (err) {
    if (err instanceof TypeNotIssuableError) {
      await call.audit({ action, outcome: 'denied', subject: err.subjectHash, ...(err.document ? { documents: [err.document] } : {}), detail: { code: err.code, type: err.type } })
    }
    throw err
  }
}

/** `sha-256=:<base64>:` from Repr-Digest / Content-Digest (RFC 9530), as hex; 400 when malformed. */
function expectedDigest (header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  const value = Array.isArray(header) ? header.join(',') : header
  const match = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/]+=*):/.exec(value)
  if (!match?.[1]) throw new ProblemError(400, 'invalid_digest_header', 'Repr-Digest must carry sha-256=:<base64 of the SHA-256>: (RFC 9530)')
  const bytes = Buffer.from(match[1], 'base64')
  if (bytes.length !== 32) throw new ProblemError(400, 'invalid_digest_header', 'the sha-256 digest must be 32 bytes')
  return bytes.toString('hex')
}

export class DocumentService {
  private readonly store: DocumentServiceDeps['documents']
  private readonly catalogue: Catalogue
  private readonly pepper: string
  private readonly keyring: Keyring | undefined

  constructor (private readonly deps: DocumentServiceDeps) {
    this.store = deps.documents
    this.catalogue = deps.catalogue
    this.pepper = deps.pepper
    this.keyring = deps.keyring
  }

  subjectHash (subject: Subject): string {
    return subjectHash(this.pepper, subject)
  }

  /** the subject's keyed hash, once its identifier is checked (422 otherwise) */
  checkedSubjectHash (subject: Subject): string {
    return checkedSubjectHash(this.pepper, subject)
  }

  /** Indexes one result on behalf of the calling issuer: checked, audited, then written. */
  async index (call: IssuerCall, input: DocumentInput): Promise<RegistrationResult> {
    const [result] = await this.indexMany(call, [() => input], this.catalogue)
    if (result instanceof ProblemError) throw result
    return result as RegistrationResult
  }

  /**
   * Indexes a batch, each line on its own as `index` does, against one snapshot of the
   * catalogue. `read` turns a line into its input, throwing a ProblemError when it cannot (that
   * line is rejected). Refused as a whole (400) when there is no line, before anything is indexed.
   */
  indexBatch (call: IssuerCall, lines: readonly string[], read: (line: string) => DocumentInput): AsyncGenerator<BatchLineResult> {
    if (lines.length === 0) throw new ProblemError(400, 'empty_batch', 'the batch has no lines')
    const catalogue = this.catalogue.snapshot()
    const indexMany = this.indexMany.bind(this)
    // Lines are indexed BATCH_CHUNK at a time (their store round trips and audit appends made
    // once for the chunk), and answered in input order. A failure that is not a line's own (the
    // store went away) ends the answer there; lines already answered were indexed.
    return (async function * results (): AsyncGenerator<BatchLineResult> {
      for (let start = 0; start < lines.length; start += BATCH_CHUNK) {
        const chunk = lines.slice(start, start + BATCH_CHUNK)
        const outcomes = await indexMany(call, chunk.map((line) => () => read(line)), catalogue)
        for (const [i, outcome] of outcomes.entries()) {
          const line = start + i + 1
          if (outcome instanceof ProblemError) yield { line, outcome: 'rejected', problem: outcome.toBody() }
          else if (outcome.outcome === 'conflict') yield { line, outcome: 'conflict', problem: outcome.problem.toBody() }
          else yield { line, outcome: outcome.outcome, id: outcome.document.id, version: outcome.document.version, status: outcome.document.status }
        }
      }
    })()
  }

  /**
   * Indexes many results, each on its own (a line's own problem is its result, in its place),
   * with one round trip to the store for what is registered already, one audit append for the
   * new ones (on record before they are written: fail closed) and one write of them all.
   * Already registered (a retried request or batch): nothing new is written, so nothing new is
   * audited; the store still completes a registration a crash interrupted.
   */
  private async indexMany (call: IssuerCall, inputs: ReadonlyArray<() => DocumentInput>, catalogue: Pick<Catalogue, 'validator'>): Promise<Array<RegistrationResult | ProblemError>> {
    const now = new Date()
    const results: Array<RegistrationResult | ProblemError | undefined> = new Array(inputs.length)
    const prepared: Array<{ at: number, input: DocumentInput, registration: PreparedRegistration }> = []
    for (const [at, input] of inputs.entries()) {
      try {
        const read = input()
        prepared.push({ at, input: read, registration: await competent(call, 'document.indexed', async () => await this.prepareRegistration(call.caller, read, now, catalogue)) })
      } catch (err) {
        if (!(err instanceof ProblemError)) throw err
        results[at] = err
      }
    }
    const known = await this.store.findRegistrations(prepared.map(({ registration }) => registration.keys.naturalKey))
    const record = async ({ input, registration }: typeof prepared[number], outcome: 'granted' | 'error', action: string, id: string, detail?: Record<string, unknown>): Promise<string> => {
      // a new document is announced (outbox) by the event that records it
      const event = await call.audit({
        action,
        outcome,
        subject: registration.keys.subjectHash,
        documents: [{ id, version: 1 }],
        purpose: { procedureCode: input.procedureCode, dossierCode: input.dossierCode },
        detail: { type: input.type, ...detail }
      }, { announce: action === 'document.indexed' })
      return event.id
    }
    // on record before they are written: one audit append for the chunk
    const indexedEvents = await Promise.all(prepared.map(async (one, i) => known[i] ? undefined : await record(one, 'granted', 'document.indexed', one.registration.first.id)))
    let outcomes: RegisterOutcome[]
    try {
      outcomes = await this.store.registerDocuments(prepared.map(({ registration }) => ({ keys: registration.keys, first: sealVersion(this.keyring, registration.first) })))
    } catch (err) {
      await Promise.all(prepared.map(async (one, i) => {
        const event = indexedEvents[i]
        if (!event) return
        await record(one, 'error', 'document.index_failed', one.registration.first.id).catch(() => {})
        await this.discard(event).catch(() => {})
      }))
      throw err
    }
    await Promise.all(prepared.map(async (one, i) => {
      const outcome = outcomes[i] as RegisterOutcome
      const document = openDocument(this.keyring, outcome.document)
      const first = document.versions[0] as StoredDocumentVersion
      if (outcome.outcome === 'conflict') {
        results[one.at] = {
          outcome: 'conflict',
          problem: new ProblemError(409, 'document_exists', `a ${one.input.type} numbered ${JSON.stringify(one.input.documentNumber)} is already indexed by this issuer with other content; send the change as an amendment: POST /v1/documents/${first.id}/amend`, {
            extensions: { documentId: first.id, amend: `/v1/documents/${first.id}/amend` }
          })
        }
        return
      }
      const indexedEvent = indexedEvents[i]
      if (!known[i] && outcome.outcome !== 'created' && first.id !== one.registration.first.id) {
        // the retry of an earlier registration (or another line of this batch): the id reserved here was never used
        await record(one, 'granted', 'document.index_repeated', first.id, { unusedId: one.registration.first.id })
        if (indexedEvent) await this.discard(indexedEvent)
      }
      const latest = document.versions[document.versions.length - 1] as StoredDocumentVersion
      results[one.at] = { outcome: outcome.outcome, document: view(document, outcome.outcome === 'existing' ? first : latest) }
    }))
    return results as Array<RegistrationResult | ProblemError>
  }

  /** Amends one of the caller's results: a new version, on record (and announced) before it is written. */
  async amend (call: IssuerCall, id: string, input: AmendInput): Promise<DocumentView> {
    const prepared = await competent(call, 'document.amended', async () => await this.prepareAmendment(call.caller, id, input))
    await call.audit({
      action: 'document.amended',
      outcome: 'granted',
      subject: prepared.subjectHash,
      documents: [{ id, version: prepared.next.version }],
      purpose: { procedureCode: input.procedureCode, dossierCode: input.dossierCode },
      detail: { reason: input.reason, supersedes: prepared.expected, ...(prepared.carryFile ? {} : { replacesFile: true }) }
    }, { announce: true })
    return await this.appendAmendment(prepared)
  }

  /** Revokes one of the caller's results; revoking twice is a 409. */
  async revoke (call: IssuerCall, id: string, reason: string, now = new Date()): Promise<DocumentView> {
    const issuer = call.caller.code
    const { document, subjectHash } = await competent(call, 'document.revoked', async () => await this.ownToChange(call.caller, id))
    if (document.revoked) throw new ProblemError(409, 'already_revoked', `document ${id} was revoked at ${document.revoked.at}`)
    const latest = document.versions[document.versions.length - 1]
    await call.audit({ action: 'document.revoked', outcome: 'granted', subject: subjectHash, documents: [{ id, version: latest?.version as number }], detail: { reason } }, { announce: true })
    if (!await this.store.revokeDocument(subjectHash, id, { at: now.toISOString(), reason, by: issuer })) {
      throw new ProblemError(409, 'already_revoked', `document ${id} was revoked meanwhile`)
    }
    return await this.read(issuer, id)
  }

  /**
   * Attaches the digitized file to a version of one of the caller's results (the latest by
   * default). A version has one file for good, one carried forward by an amendment included;
   * the bytes are kept once by content, and nothing is attached unless they are whole, within
   * the limit and of the announced digest.
   */
  async attachFile (call: IssuerCall, id: string, file: FileUpload): Promise<DocumentView> {
    const files = this.deps.files
    if (!files) throw new StatedError('no file store is configured for the index')
    const { document, subjectHash } = await competent(call, 'document.file_uploaded', async () => await this.ownToChange(call.caller, id))
    const version = file.version ?? document.versions.length
    if (!document.versions.some((v) => v.version === version)) throw new ProblemError(404, 'version_not_found', `document ${id} has no version ${version}`)
    const existing = document.files[version]
    if (existing) {
      throw new ProblemError(409, 'file_exists', existing.carriedFrom === undefined
        ? `version ${version} already has its file; amend the document to change it`
        : `version ${version} has the file of version ${existing.carriedFrom}, carried forward when it was amended; to give it another file, amend the document with replacesFile: true and upload to that version`)
    }
    const limit = files.maxBytes
    if ((file.announcedSize ?? 0) > limit) throw new ProblemError(413, 'file_too_large', `the file is larger than ${limit} bytes (FILE_SIZE_LIMIT_BYTES)`)
    const expected = expectedDigest(file.digest)
    let stored
    try {
      stored = await files.blobs.put(file.bytes, { maxBytes: limit, ...(expected ? { expectedSha256: expected } : {}) })
    } catch (err) {
      if (err instanceof BlobTooLargeError) throw new ProblemError(413, 'file_too_large', `the file is larger than ${limit} bytes (FILE_SIZE_LIMIT_BYTES); nothing was stored`)
      if (err instanceof BlobDigestMismatchError) throw new ProblemError(422, 'digest_mismatch', `the file's SHA-256 is ${err.actual}, not the announced ${err.expected}; nothing was stored`)
      throw err
    }
    // a version has one file for good: an empty body must not take its place
    if (stored.size === 0) throw new ProblemError(400, 'empty_body', 'the request body is empty; the file was expected')
    const { mediaType } = file
    await call.audit({ action: 'document.file_uploaded', outcome: 'granted', subject: subjectHash, documents: [{ id, version }], detail: { mediaType, size: stored.size, sha256: stored.sha256 } })
    if (!await this.store.attachDocumentFile(subjectHash, id, version, { mediaType, size: stored.size, sha256: stored.sha256, uploadedAt: new Date().toISOString() })) {
      throw new ProblemError(409, 'file_exists', `version ${version} got its file meanwhile`)
    }
    return await this.read(call.caller.code, id, version)
  }

  private async discard (auditEventId: string): Promise<void> {
    await this.deps.announcements?.discard(auditEventId)
  }

  /** Everything a registration needs checked and computed, before anything is written or audited. */
  private async prepareRegistration (issuer: Issuer, input: DocumentInput, now = new Date(), catalogue: Pick<Catalogue, 'validator'> = this.catalogue): Promise<PreparedRegistration> {
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

  private async prepareAmendment (issuer: Issuer, id: string, input: AmendInput, now = new Date()): Promise<PreparedAmendment> {
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
  private async appendAmendment (prepared: PreparedAmendment): Promise<DocumentView> {
    const appended = await this.store.amendDocument(prepared.subjectHash, sealVersion(this.keyring, prepared.next), prepared.expected, { carryFile: prepared.carryFile })
    if (!appended) {
      throw new ProblemError(409, 'concurrent_change', `document ${prepared.next.id} changed meanwhile (amended or revoked); read it again`)
    }
    const files = { ...prepared.document.files, ...(appended.file ? { [prepared.next.version]: appended.file } : {}) }
    return view({ ...prepared.document, versions: [...prepared.document.versions, prepared.next], files }, prepared.next)
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
