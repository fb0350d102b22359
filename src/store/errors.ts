import { StatedError } from '../lib/error-description.js'

/**
 * The store could not be reached or did not answer in time. Callers must treat the operation
 * as not done (and not known to be done): the HTTP layer turns it into a 503 with Retry-After.
 */
export class StoreUnavailableError extends StatedError {
  constructor (message = 'the store is unavailable', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}

/**
 * The audit archive (PostgreSQL, AUDIT_ARCHIVE_URL) could not be reached or did not answer in
 * time: archiving pauses (events stay in the store) and a read that needs archived events is
 * answered 503 `archive_unavailable` with Retry-After, while reads of the hot tier go on.
 */
export class ArchiveUnavailableError extends StatedError {
  constructor (message = 'the audit archive is unavailable', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ArchiveUnavailableError'
  }
}
