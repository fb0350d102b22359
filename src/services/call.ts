import type { AppendOptions, AuditEvent, AuditInput } from './audit.js'
import type { AgencyRecord } from '../store/index.js'

/**
 * What a use case knows of the request it serves, without HTTP: who calls, how to put an event
 * on the audit trail on its behalf (actor, request id and client address filled in by whoever
 * built the call), and where to say what went wrong without failing it.
 */
export interface Call {
  caller: Caller
  audit: RecordAudit
  log: WarnLogger
}

/** Records an audit event for the call; resolves once it is in the store (fail closed). */
export type RecordAudit = (event: Omit<AuditInput, 'actor' | 'requestId' | 'clientAddress'> & { actor?: string | null }, options?: AppendOptions) => Promise<AuditEvent>

/** The agency behind a request, as the authorization layer found it. */
export interface Caller {
  code: string
  name: string
  roles: AgencyRecord['roles']
  /** the document types it may issue, as its record says now (none unless it holds the issuer role) */
  issuableTypes: string[]
  /** scopes of the token that its agency still holds */
  scopes: string[]
  tokenId: string
}

/** The pino-style logger a request carries: what goes wrong without failing the call is said there. */
export interface WarnLogger {
  warn(obj: object, msg: string): void
}
