import type { StoredDocument, StoredDocumentVersion } from '../store/index.js'

/**
 * What a stored result is now (valid, pending, expired, revoked, superseded) and how it reads,
 * derived at read time from its versions and the date in Vietnam: nothing about status is stored.
 */

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
