import type { AppendOptions, AuditEvent, AuditInput } from './audit.js'
import type { WarnLogger } from './stats.js'
import type { Caller } from './tokens.js'

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
