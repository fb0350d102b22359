/**
 * The agencies registered in the gateway, and the generation of each one's keys (which every
 * process compares with the one its cached copy of a jwks_uri was fetched at).
 */

export type AgencyRole = 'issuer' | 'requester' | 'portal' | 'auditor' | 'admin'

/** An agency registered in the gateway (its public keys inline or behind a jwks_uri). */
export interface AgencyRecord {
  code: string
  name: string
  roles: AgencyRole[]
  /** the document types it may index, amend and revoke as issuer; absent (a record from before competences) is none */
  issuableTypes?: string[]
  jwks?: { keys: Array<Record<string, unknown>> }
  jwksUri?: string
  /** where its notices go (documents it reused changed) */
  webhookUrl?: string
  status: 'active' | 'suspended'
  createdAt: string
  updatedAt: string
}

export interface AgencyStore {
  getAgency(code: string): Promise<AgencyRecord | undefined>
  listAgencies(): Promise<AgencyRecord[]>
  /** creates or replaces; says which; moves agenciesRevision on in the same atomic write */
  putAgency(agency: AgencyRecord): Promise<{ created: boolean }>
  /**
   * A counter that every putAgency moves on (0 before the first): a process that keeps agency
   * records between requests reads this, a small read, and reads the records again when it
   * moved, so a change made by any process holds on every process from its next request on.
   */
  agenciesRevision(): Promise<number>
  /**
   * How many times an admin changed or refreshed the agency's keys (0: never). Every process
   * compares it with the one its cached copy of the agency's jwks_uri was fetched at.
   */
  agencyKeysGeneration(code: string): Promise<number>
  /** moves the agency's keys generation on, atomically across processes; returns the new one */
  bumpAgencyKeysGeneration(code: string): Promise<number>
}
