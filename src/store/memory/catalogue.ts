/** Document types in memory (the embedded store). */
import type { CatalogueStore, DocumentTypeRecord } from '../catalogue.js'
import { RecordTable } from './records.js'

export class MemoryCatalogueStore implements CatalogueStore {
  private readonly documentTypes = new RecordTable<DocumentTypeRecord>()

  async getDocumentType (code: string): Promise<DocumentTypeRecord | undefined> {
    return this.documentTypes.get(code)
  }

  async listDocumentTypes (): Promise<DocumentTypeRecord[]> {
    return this.documentTypes.list()
  }

  async putDocumentType (record: DocumentTypeRecord, expectedVersion: number): Promise<boolean> {
    const current = this.documentTypes.get(record.code)
    if ((current?.schemaVersion ?? 0) !== expectedVersion) return false
    this.documentTypes.put(record.code, record)
    return true
  }
}
