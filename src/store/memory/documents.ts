/** Documents in memory (the embedded store), by subject as Redis partitions them. */
import type { DocumentKeys, DocumentStore, RegisterOutcome, StoredDocument, StoredDocumentFile, StoredDocumentVersion } from '../documents.js'

export class MemoryDocumentStore implements DocumentStore {
  /** subject hash → document id → the document's JSON (versions, files and revocation together, so an amendment carries a file in the same step) */
  private readonly documents = new Map<string, Map<string, string>>()
  private readonly documentSubject = new Map<string, string>()
  private readonly naturalKeys = new Map<string, { id: string, contentHash: string }>()

  private readDocument (subjectHash: string, id: string): StoredDocument | undefined {
    const json = this.documents.get(subjectHash)?.get(id)
    return json === undefined ? undefined : JSON.parse(json)
  }

  private writeDocument (subjectHash: string, id: string, document: StoredDocument): void {
    let bySubject = this.documents.get(subjectHash)
    if (!bySubject) this.documents.set(subjectHash, bySubject = new Map())
    bySubject.set(id, JSON.stringify(document))
  }

  async registerDocument (keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome> {
    const known = this.naturalKeys.get(keys.naturalKey)
    if (known) {
      const document = (await this.getDocument(known.id))?.document as StoredDocument
      return { outcome: known.contentHash === first.contentHash ? 'existing' : 'conflict', document }
    }
    const document: StoredDocument = { versions: [first], files: {} }
    this.naturalKeys.set(keys.naturalKey, { id: first.id, contentHash: first.contentHash })
    this.writeDocument(keys.subjectHash, first.id, document)
    this.documentSubject.set(first.id, keys.subjectHash)
    return { outcome: 'created', document: structuredClone(document) }
  }

  async registerDocuments (batch: ReadonlyArray<{ keys: DocumentKeys, first: StoredDocumentVersion }>): Promise<RegisterOutcome[]> {
    const outcomes: RegisterOutcome[] = []
    for (const { keys, first } of batch) outcomes.push(await this.registerDocument(keys, first))
    return outcomes
  }

  async findRegistrations (naturalKeys: readonly string[]): Promise<Array<{ id: string, contentHash: string } | undefined>> {
    return await Promise.all(naturalKeys.map(async (key) => await this.findRegistration(key)))
  }

  async findRegistration (naturalKey: string): Promise<{ id: string, contentHash: string } | undefined> {
    const known = this.naturalKeys.get(naturalKey)
    return known ? { ...known } : undefined
  }

  async getDocument (id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined> {
    const subjectHash = this.documentSubject.get(id)
    const document = subjectHash === undefined ? undefined : this.readDocument(subjectHash, id)
    return document && subjectHash ? { document, subjectHash } : undefined
  }

  async amendDocument (subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options: { carryFile?: boolean } = {}): Promise<false | { file?: StoredDocumentFile }> {
    const document = this.readDocument(subjectHash, next.id)
    if (!document || document.versions.length !== expectedVersion || document.revoked) return false
    document.versions.push(next)
    const file = options.carryFile ? document.files[expectedVersion] : undefined
    if (file) document.files[next.version] = { ...file, carriedFrom: file.carriedFrom ?? expectedVersion }
    this.writeDocument(subjectHash, next.id, document)
    const carried = document.files[next.version]
    return carried ? { file: carried } : {}
  }

  async revokeDocument (subjectHash: string, id: string, revoked: NonNullable<StoredDocument['revoked']>): Promise<boolean> {
    const document = this.readDocument(subjectHash, id)
    if (!document || document.revoked) return false
    document.revoked = revoked
    this.writeDocument(subjectHash, id, document)
    return true
  }

  async attachDocumentFile (subjectHash: string, id: string, version: number, file: StoredDocumentFile): Promise<boolean> {
    const document = this.readDocument(subjectHash, id)
    if (!document || document.files[version]) return false
    document.files[version] = file
    this.writeDocument(subjectHash, id, document)
    return true
  }

  async documentsOfSubject (subjectHash: string, types?: string[]): Promise<StoredDocument[]> {
    const out: StoredDocument[] = []
    for (const json of this.documents.get(subjectHash)?.values() ?? []) {
      const document = JSON.parse(json) as StoredDocument
      if (!types || types.includes(document.versions[0]?.type as string)) out.push(document)
    }
    return out
  }

  async * documentIdPages (pageSize: number): AsyncIterable<string[]> {
    const ids = [...this.documentSubject.keys()]
    for (let i = 0; i < ids.length; i += pageSize) yield ids.slice(i, i + pageSize)
  }

  async rewriteDocumentVersion (subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean> {
    const document = this.readDocument(subjectHash, previous.id)
    const at = document ? document.versions.findIndex((v) => v.version === previous.version) : -1
    if (!document || at < 0 || JSON.stringify(document.versions[at]) !== JSON.stringify(previous)) return false
    document.versions[at] = next
    this.writeDocument(subjectHash, previous.id, document)
    return true
  }
}
