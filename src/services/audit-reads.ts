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
  audit: Pick<AuditService, 'search' | 'exportPage' | 'checkpointPage' | 'rangeWalk'>
  /** the key of the subjects' keyed hashes */
  pepper: string
  /** the gateway's public keys, which signed the checkpoints */
  jwks: () => JSONWebKeySet
  /** the gateway's issuer id, as the checkpoints name it */
  issuer: string
}

/** events one export request sends at most, and by default: the `Link` header continues it */
export const EXPORT_LIMIT = 100_000

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

  /**
   * The events of the range, oldest first, at most `limit` (with a cursor when more follow),
   * read as they are sent; the export is on record before the first.
   */
  async export (call: Call, query: TimeRange & { limit?: number | undefined, cursor?: string | undefined }): Promise<{ events: AsyncIterable<AuditEvent>, nextCursor?: string }> {
    checkTimeRange(query.from, query.to)
    return await this.deps.audit.exportPage(given(query), { limit: query.limit ?? EXPORT_LIMIT, ...(query.cursor ? { cursor: query.cursor } : {}) },
      async () => await call.audit({ action: 'audit.exported', outcome: 'granted', detail: { ...given(query), ...(query.cursor ? { continued: true } : {}) } }))
  }

  /** A page of the signed checkpoints made in the range, oldest first. */
  async checkpoints (call: Call, query: TimeRange & { limit?: number | undefined, cursor?: string | undefined }): Promise<{ checkpoints: AuditCheckpointRecord[], nextCursor?: string }> {
    const { limit, cursor } = query
    checkTimeRange(query.from, query.to)
    const page = await this.deps.audit.checkpointPage({ ...given(query), limit: limit ?? 1000, ...(cursor ? { cursor } : {}) })
    await call.audit({ action: 'audit.checkpoints_read', outcome: page.checkpoints.length ? 'granted' : 'empty', detail: { ...given(query), returned: page.checkpoints.length } })
    return page
  }

  /**
   * Recomputes the hash chains and checks the signed checkpoints, reading what the range costs
   * (AuditService.rangeWalk): the events in the range are what is counted. A walk longer than one
   * request's budget answers `complete: false` with a cursor that continues it.
   */
  async verify (call: Call, query: TimeRange & { cursor?: string | undefined }): Promise<VerifyResult & { complete: boolean, nextCursor?: string }> {
    checkTimeRange(query.from, query.to)
    const fromMs = query.from ? Date.parse(query.from) : -Infinity
    const toMs = query.to ? Date.parse(query.to) : Infinity
    const inRange = (event: AuditEvent): boolean => { const t = Date.parse(event.time); return t >= fromMs && t < toMs }
    const walk = await this.deps.audit.rangeWalk(given(query), query.cursor)
    const verified = await verifyAuditTrail(walk.events, walk.checkpoints, createLocalJWKSet(this.deps.jwks()), {
      issuer: this.deps.issuer,
      count: inRange,
      requireAllChains: true,
      startOf: walk.startOf,
      finished: walk.finished,
      retentionStartsOnly: walk.retentionStartsOnly
    })
    const checked = walk.checkedBefore + verified.checked
    const nextCursor = verified.ok ? walk.nextCursor(checked) : undefined
    const result = { ...verified, checked, complete: nextCursor === undefined, ...(nextCursor ? { nextCursor } : {}) }
    await call.audit({ action: 'audit.verified', outcome: result.ok ? 'granted' : 'error', detail: { ...given(query), ok: result.ok, checked: result.checked, complete: result.complete, ...(result.firstBadEvent ? { firstBadEvent: result.firstBadEvent } : {}) } })
    return result
  }
}
