/** The document types the gateway knows, each with every schema version it ever had. */

/** A document type with every schema version it ever had (documents keep the one they were indexed under). */
export interface DocumentTypeRecord {
  code: string
  schemaVersion: number
  definition: Record<string, unknown>
  schemas: Record<number, Record<string, unknown>>
  updatedAt: string
}

export interface CatalogueStore {
  getDocumentType(code: string): Promise<DocumentTypeRecord | undefined>
  listDocumentTypes(): Promise<DocumentTypeRecord[]>
  /** stores a type if its schemaVersion is still `expectedVersion` (0: new); false otherwise */
  putDocumentType(record: DocumentTypeRecord, expectedVersion: number): Promise<boolean>
}
