/** Data-sharing agreements between requesters and the gateway. */

/** A data-sharing agreement: what a requester may reuse, for which procedures, which fields. */
export interface AgreementRecord {
  id: string
  requester: string
  documentTypes: string[]
  procedureCodes: string[]
  /** per document type, the structured-data fields released (data minimization) */
  fields: Record<string, string[]>
  fileDownload: boolean
  hiddenAllowed: boolean
  validFrom: string
  validUntil?: string
  status: 'active' | 'suspended'
  legalBasis?: string
  createdAt: string
  updatedAt: string
}

export interface AgreementStore {
  getAgreement(id: string): Promise<AgreementRecord | undefined>
  /** creates or replaces; says which; moves agreementsRevision on in the same atomic write */
  putAgreement(agreement: AgreementRecord): Promise<{ created: boolean }>
  listAgreements(): Promise<AgreementRecord[]>
  /** a counter that every putAgreement moves on (0 before the first), as agenciesRevision */
  agreementsRevision(): Promise<number>
}
