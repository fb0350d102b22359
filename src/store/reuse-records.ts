/**
 * What reuse leaves behind: who received which document version, withdrawn consents,
 * single-use download grants and the per-day counters statistics are read from.
 */

/** A short-lived, single-use right to download one file version. */
export interface DownloadGrant {
  requester: string
  documentId: string
  version: number
  sha256: string
  mediaType: string
  size: number
  dossierCode: string
  procedureCode: string
}

/** That a requester received a document version, for one dossier of one procedure. */
export interface ReuseRecord {
  requester: string
  version: number
  dossierCode: string
  procedureCode: string
  at: string
}

export interface ReuseRecordStore {
  /** remembers that `requester` received this document version for this dossier */
  recordReuse(subjectHash: string, documentId: string, reuse: ReuseRecord): Promise<void>
  reusesOf(subjectHash: string, documentId: string): Promise<Array<ReuseRecord>>
  /**
   * Adds to one day's reuse counters (statistics kept as events happen, never computed by a
   * scan). Fields are opaque to the store; each day is one record.
   */
  addReuseCounts(day: string, increments: Record<string, number>): Promise<void>
  /** the counters of each of these days, summed field by field */
  reuseCounts(days: string[]): Promise<Record<string, number>>
  /** the portal withdrew a consent: its token is refused from now until `ttlMs` (past its expiry) */
  revokeConsent(jti: string, ttlMs: number): Promise<void>
  consentRevoked(jti: string): Promise<boolean>
  putDownloadGrant(token: string, grant: DownloadGrant, ttlMs: number): Promise<void>
  /** reads a grant without using it up */
  peekDownloadGrant(token: string): Promise<DownloadGrant | undefined>
  /** uses a grant up, atomically: only the first caller gets it */
  takeDownloadGrant(token: string): Promise<DownloadGrant | undefined>
}
