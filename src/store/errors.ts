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
