import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { ProblemError } from '../lib/problem.js'
import type { Store, StoredDocumentVersion } from '../store/index.js'
import { checkTimeRange } from './audit.js'
import type { AuditEvent, AuditSearchFilters } from './audit.js'
import { today, view } from './documents.js'
import type { DocumentService, DocumentView } from './documents.js'

/**
 * What the national portal shows a citizen (or an organization): its own results, and who used
 * them (the idea of Estonia's Data Tracker). Both are keyed by the subject's keyed hash only.
 *
 * Hidden accesses (police, courts, where their agreement allows it) are left out of the history
 * until their `hiddenUntil` date, Vietnam time, and nothing in an answer betrays them: not a
 * count, not a short page, not a cursor (cursors are encrypted, so the audit event id they
 * resume from is never readable).
 */

/** One of the subject's results as the portal shows it: the latest version and its status now (the subject not echoed back). */
export type PortalDocument = Omit<DocumentView, 'subject' | 'typeSchemaVersion' | 'createdAt'> & { issuerName?: string }

/** One access to the subject's results: a reuse query that released something. */
export interface AccessHistoryItem {
  time: string
  agency: { code: string, name?: string }
  procedureCode?: string
  dossierCode?: string
  reason?: string
  mode: 'full' | 'status'
  documents: Array<{ id: string, version?: number, type?: string }>
  queryId: string
}

export interface AccessHistoryQuery {
  from?: string
  to?: string
  limit: number
  cursor?: string
}

export interface AuditSearcher {
  search(filters: AuditSearchFilters): Promise<{ events: AuditEvent[], nextCursor?: string }>
}

export interface PortalServiceOptions {
  store: Pick<Store, 'getAgency' | 'documentsOfSubject'>
  /** where the subject's documents are read with their data in clear (decrypted when encrypted at rest) */
  documents: Pick<DocumentService, 'documentsOfSubject'>
  audit: AuditSearcher
  /** secret key material for the history cursors (derived, never used as is) */
  secret: string
}

/** audit searches one history page may take at most: pages of hidden or unrelated events are skipped, within bounds */
const MAX_SEARCHES = 10
/** how many events a look-ahead for one more visible access reads per search */
const PEEK = 20

/**
 * Whether the citizen may see this access on `day` (YYYY-MM-DD, Vietnam): a hidden one from its
 * hiddenUntil date on. A hidden event without a readable date stays hidden (fail closed).
 */
export function visibleOn (event: AuditEvent, day: string): boolean {
  const detail = event.detail ?? {}
  if (!detail.hidden) return true
  const until = detail.hiddenUntil
  return typeof until === 'string' && /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(until) && until <= day
}

/** Agency names, each read at most once per call. */
function agencyNames (store: PortalServiceOptions['store']): (code: string) => Promise<string | undefined> {
  const cache = new Map<string, Promise<string | undefined>>()
  return async (code) => {
    let name = cache.get(code)
    if (!name) {
      name = store.getAgency(code).then((agency) => agency?.name)
      cache.set(code, name)
    }
    return await name
  }
}

export class PortalService {
  private readonly cursorKey: Buffer

  constructor (private readonly options: PortalServiceOptions) {
    this.cursorKey = createHmac('sha256', options.secret).update('portal-access-history-cursor').digest()
  }

  /** Every result of the subject (of these types), latest version each, newest issued first. */
  async citizenDocuments (subjectHash: string, types?: string[], now = new Date()): Promise<PortalDocument[]> {
    const documents = await this.options.documents.documentsOfSubject(subjectHash, types)
    const nameOf = agencyNames(this.options.store)
    const out: PortalDocument[] = []
    for (const document of documents) {
      const latest = document.versions[document.versions.length - 1] as StoredDocumentVersion | undefined
      if (!latest) continue
      // the subject is the caller's own: not echoed back in every item
      const { subject: _subject, typeSchemaVersion: _schemaVersion, createdAt: _createdAt, ...shown } = view(document, latest, now)
      const issuerName = await nameOf(latest.issuer)
      out.push({ ...shown, ...(issuerName ? { issuerName } : {}) })
    }
    return out.sort((a, b) => a.issuedAt === b.issuedAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.issuedAt < b.issuedAt ? 1 : -1)
  }

  /**
   * Granted reuse queries about the subject, newest first, `limit` visible ones a page.
   *
   * A page is filled across hidden events (several audit searches, each resuming from the
   * previous one's cursor, each asked for just the number still missing, so every event it
   * returns is consumed and its cursor lands right after the last one kept). Once a page is
   * full, a look-ahead checks that at least one more visible access follows before a cursor is
   * given: an empty last page would otherwise hint at accesses the citizen cannot see.
   */
  async accessHistory (subjectHash: string, query: AccessHistoryQuery, now = new Date()): Promise<{ items: AccessHistoryItem[], nextCursor?: string }> {
    checkTimeRange(query.from, query.to)
    const binding = `${subjectHash}|${query.from ?? ''}|${query.to ?? ''}`
    const day = today(now)
    // an event's id carries its time, so the search selects exactly [from, to)
    const filters = {
      subject: subjectHash,
      action: 'reuse.queried',
      outcome: 'granted' as const,
      ...(query.from ? { from: query.from } : {}),
      ...(query.to ? { to: query.to } : {})
    }
    const events: AuditEvent[] = []
    let cursor = query.cursor ? this.openCursor(query.cursor, binding) : undefined
    /** where the next page starts once this one is full: right after its last item */
    let pageEnd: string | undefined
    let more = false
    let searches = 0
    while (!more) {
      if (searches++ >= MAX_SEARCHES) {
        // out of budget: resume from where reading stopped (a short page says nothing about why)
        more = cursor !== undefined
        if (events.length === query.limit) cursor = pageEnd
        break
      }
      const full = events.length === query.limit
      const page = await this.options.audit.search({ ...filters, limit: full ? PEEK : query.limit - events.length, ...(cursor ? { cursor } : {}) })
      for (const event of page.events) {
        if (!visibleOn(event, day)) continue
        if (full) { more = true; break }
        events.push(event)
      }
      if (!full && events.length === query.limit) pageEnd = page.nextCursor
      if (more) { cursor = pageEnd; break }
      if (!page.nextCursor) break
      cursor = page.nextCursor
    }
    const items = await this.describe(subjectHash, events)
    return { items, ...(more && cursor ? { nextCursor: this.sealCursor(cursor, binding) } : {}) }
  }

  private async describe (subjectHash: string, events: AuditEvent[]): Promise<AccessHistoryItem[]> {
    if (events.length === 0) return []
    const nameOf = agencyNames(this.options.store)
    // the types of the documents released, from the subject's own partition (one read; their data is not needed, so not decrypted)
    const types = new Map<string, string>()
    for (const document of await this.options.store.documentsOfSubject(subjectHash)) {
      const first = document.versions[0]
      if (first) types.set(first.id, first.type)
    }
    const items: AccessHistoryItem[] = []
    for (const event of events) {
      const code = event.actor ?? 'unknown'
      const name = event.actor ? await nameOf(event.actor) : undefined
      const detail = event.detail ?? {}
      items.push({
        time: event.time,
        agency: { code, ...(name ? { name } : {}) },
        ...(event.purpose?.procedureCode ? { procedureCode: event.purpose.procedureCode } : {}),
        ...(event.purpose?.dossierCode ? { dossierCode: event.purpose.dossierCode } : {}),
        ...(typeof detail.reason === 'string' ? { reason: detail.reason } : {}),
        mode: detail.mode === 'status' ? 'status' : 'full',
        documents: (event.documents ?? []).map((d) => {
          const type = types.get(d.id)
          return { id: d.id, ...(d.version !== undefined ? { version: d.version } : {}), ...(type ? { type } : {}) }
        }),
        queryId: event.id
      })
    }
    return items
  }

  /** AES-256-GCM over the audit search cursor, bound to the subject and range it was made for. */
  private sealCursor (auditCursor: string, binding: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.cursorKey, iv)
    cipher.setAAD(Buffer.from(binding))
    const sealed = Buffer.concat([cipher.update(auditCursor, 'utf8'), cipher.final()])
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url')
  }

  private openCursor (cursor: string, binding: string): string {
    const raw = Buffer.from(cursor, 'base64url')
    try {
      if (raw.length < 29) throw new Error('too short')
      const decipher = createDecipheriv('aes-256-gcm', this.cursorKey, raw.subarray(0, 12))
      decipher.setAAD(Buffer.from(binding))
      decipher.setAuthTag(raw.subarray(raw.length - 16))
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      throw new ProblemError(400, 'invalid_cursor', 'the cursor is not one this gateway issued for this subject and time range')
    }
  }
}
