import { createLocalJWKSet } from 'jose'
import type { JSONWebKeySet } from 'jose'
import type { AuditCheckpointRecord } from '../store/index.js'
import { checkTimeRange } from './audit.js'
import type { AuditEvent, AuditSearchFilters, AuditService } from './audit.js'
import { verifyAuditTrail } from './audit-verify.js'
import type { VerifyResult } from './audit-verify.js'
import type { Call } from './call.js'
import { checkedSubjectHash } from './identifiers.js'
import type { Subject } from './identifiers.js'

/**
 * What an auditor reads of the audit trail: search, export, checkpoints and verification. Each
 * read is itself on record before anything is released, and names its range or filters.
 */

/** A search as an auditor asks it: the subject in clear (matched by its keyed hash), a page size. */
export type AuditSearchRequest = Omit<AuditSearchFilters, 'subject' | 'limit'> & { subject?: Subject, limit?: number }

/** A time range: `from` inclusive, `to` exclusive. */
export interface TimeRange {
  from?: string | undefined
  to?: string | undefined
}

export interface AuditReadsDeps {
  audit: Pick<AuditService, 'search' | 'export' | 'checkpointPage' | 'chainEvents' | 'checkpoints'>
  /** the key of the subjects' keyed hashes */
  pepper: string
  /** the gateway's public keys, which signed the checkpoints */
  jwks: () => JSONWebKeySet
  /** the gateway's issuer id, as the checkpoints name it */
  issuer: string
}

/** the range's members that are set, for a filter or an audit detail */
const given = ({ from, to }: TimeRange): { from?: string, to?: string } => ({ ...(from ? { from } : {}), ...(to ? { to } : {}) })

export class AuditReads {
  constructor (private readonly deps: AuditReadsDeps) {}

  /** Newest first, a page at a time; released once the search is on record. */
  async search (call: Call, request: AuditSearchRequest): Promise<{ events: AuditEvent[], nextCursor?: string }> {
    const { subject, limit, ...filters } = request
    checkTimeRange(filters.from, filters.to)
    const subjectKey = subject ? checkedSubjectHash(this.deps.pepper, subject, 400) : undefined
    const result = await this.deps.audit.search({ ...filters, ...(subjectKey ? { subject: subjectKey } : {}), limit: limit ?? 100 })
    await call.audit({
      action: 'audit.searched',
      outcome: result.events.length ? 'granted' : 'empty',
      ...(subjectKey ? { subject: subjectKey } : {}),
      detail: { filters: { ...filters, ...(subject ? { subject: subject.kind } : {}) }, returned: result.events.length }
    })
    return result
  }

  /** Every event in the range, oldest first, read as it is sent; the export is on record before the first. */
  async export (call: Call, range: TimeRange): Promise<AsyncIterable<AuditEvent>> {
    checkTimeRange(range.from, range.to)
    await call.audit({ action: 'audit.exported', outcome: 'granted', detail: given(range) })
    return this.deps.audit.export(given(range))
  }

  /** A page of the signed checkpoints made in the range, oldest first. */
  async checkpoints (call: Call, query: TimeRange & { limit?: number | undefined, cursor?: string | undefined }): Promise<{ checkpoints: AuditCheckpointRecord[], nextCursor?: string }> {
    const { limit, cursor } = query
    checkTimeRange(query.from, query.to)
    const page = await this.deps.audit.checkpointPage({ ...given(query), limit: limit ?? 1000, ...(cursor ? { cursor } : {}) })
    await call.audit({ action: 'audit.checkpoints_read', outcome: page.checkpoints.length ? 'granted' : 'empty', detail: { ...given(query), returned: page.checkpoints.length } })
    return page
  }

  /** Recomputes the hash chains and checks the signed checkpoints; the events in the range are what is counted. */
  async verify (call: Call, range: TimeRange): Promise<VerifyResult> {
    checkTimeRange(range.from, range.to)
    const fromMs = range.from ? Date.parse(range.from) : -Infinity
    const toMs = range.to ? Date.parse(range.to) : Infinity
    const inRange = (event: AuditEvent): boolean => { const t = Date.parse(event.time); return t >= fromMs && t < toMs }
    // links are checked across the whole chains (a range's first event needs its predecessor); the range sets what is counted
    const result = await verifyAuditTrail(this.deps.audit.chainEvents(), await this.deps.audit.checkpoints(), createLocalJWKSet(this.deps.jwks()), { issuer: this.deps.issuer, count: inRange, requireAllChains: true })
    await call.audit({ action: 'audit.verified', outcome: result.ok ? 'granted' : 'error', detail: { ok: result.ok, checked: result.checked, ...(result.firstBadEvent ? { firstBadEvent: result.firstBadEvent } : {}) } })
    return result
  }
}
