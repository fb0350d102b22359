/** Indexed results: their versions, files and revocation, partitioned by subject. */

/** One version of an indexed result, as stored (content; status is derived at read time). */
export interface StoredDocumentVersion {
  id: string
  version: number
  type: string
  typeSchemaVersion: number
  subject: { kind: 'citizen' | 'organization', id: string }
  issuer: string
  procedureCode: string
  dossierCode: string
  documentNumber: string
  issuedAt: string
  validFrom: string
  validUntil?: string
  data: Record<string, unknown>
  createdAt: string
  /** SHA-256 of the canonical content: what "the same content again" is compared by */
  contentHash: string
  amendmentReason?: string
}

/** A document: its versions and what happened to it since. */
export interface StoredDocument {
  versions: StoredDocumentVersion[]
  revoked?: { at: string, reason: string, by: string }
  /** digitized files by version */
  files: Record<number, StoredDocumentFile>
}

/** A version's digitized file: its bytes are in the blob store, under their SHA-256. */
export interface StoredDocumentFile {
  mediaType: string
  size: number
  sha256: string
  uploadedAt: string
  /** the version it was uploaded to, when an amendment carried it forward to this one */
  carriedFrom?: number
}

export interface DocumentKeys {
  /** keyed hash of the subject: the partition all of a subject's results live in */
  subjectHash: string
  /** issuer, type and a hash of the document number: the uniqueness key */
  naturalKey: string
}

export type RegisterOutcome =
  | { outcome: 'created', document: StoredDocument }
  | { outcome: 'existing', document: StoredDocument }
  | { outcome: 'conflict', document: StoredDocument }


export interface DocumentStore {
  /**
   * Indexes version 1 of a result, exactly once per natural key: the same content again is
   * `existing`, different content `conflict`. A retry after a crash completes what was begun.
   */
  registerDocument(keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome>
  /**
   * Registers many documents, each as `registerDocument` does, outcomes in order (a natural key
   * twice in one batch: the second is `existing` or `conflict`). A store writes them in as few
   * round trips as it can; interrupted, each document is either registered or not, never half.
   */
  registerDocuments(batch: ReadonlyArray<{ keys: DocumentKeys, first: StoredDocumentVersion }>): Promise<RegisterOutcome[]>
  /** the document registered under a natural key, if any (id and content hash of its version 1) */
  findRegistration(naturalKey: string): Promise<{ id: string, contentHash: string } | undefined>
  /** `findRegistration` of many natural keys, in order, in as few round trips as the store can */
  findRegistrations(naturalKeys: readonly string[]): Promise<Array<{ id: string, contentHash: string } | undefined>>
  /** a document by id, with the subject partition it lives in */
  getDocument(id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined>
  /**
   * Appends version n+1 if the current version is still `expectedVersion` (else false). With
   * `carryFile`, version n's file (as it is at that moment, if it has one) becomes version n+1's
   * too, in the same atomic write, marked with the version it was uploaded to (`carriedFrom`).
   * Says which file version n+1 got.
   */
  amendDocument(subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options?: { carryFile?: boolean }): Promise<false | { file?: StoredDocumentFile }>
  /** marks a document revoked (once; false if it already was) */
  revokeDocument(subjectHash: string, id: string, revoked: NonNullable<StoredDocument['revoked']>): Promise<boolean>
  /** records the file of a version (once; false if it already has one) */
  attachDocumentFile(subjectHash: string, id: string, version: number, file: StoredDocumentFile): Promise<boolean>
  /** every document of a subject of the given types, in one round trip */
  documentsOfSubject(subjectHash: string, types?: string[]): Promise<StoredDocument[]>
  /** every document id, a page of about `pageSize` at a time, in no set order (maintenance: re-encryption walks them all; an id may come twice) */
  documentIdPages(pageSize: number): AsyncIterable<string[]>
  /**
   * Replaces a stored version with the same content in another form (re-encryption of its data):
   * `next` has the id and version of `previous`, and is written only if the stored version is
   * still exactly `previous` (false otherwise, or when there is no such version).
   */
  rewriteDocumentVersion(subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean>
}
