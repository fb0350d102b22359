import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { ProblemError } from '../lib/problem.js'
import type { StoredDocumentVersion, AgencyStore, DocumentStore } from '../store/index.js'
import { checkTimeRange } from './audit.js'
import type { AuditEvent } from './audit.js'
import type { Call } from './call.js'
import { today, view } from './document-status.js'
import type { DocumentService } from './documents.js'
import type { DocumentView } from './document-status.js'
import type { Subject } from './identifiers.js'

/**
 * What the national portal shows a citizen (or an organization): its own results, and who used
 * them (the idea of Estonia's Data Tracker). Both are keyed by the subject's keyed hash only.
 *
 * Hidden accesses (police, courts, where their agreement allows it) are left out of the history
 * until their `hiddenUntil` date, Vietnam time, and nothing in an answer betrays them: not a
 * count, not a short page, not a cursor. The history is read from an index of the accesses the
 * subject may see, written as each is recorded (store/audit-keys.ts), so page sizes and cursors
 * depend on those alone; cursors are encrypted, so the event id they resume from is never
 * readable.
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

/** What the portal asks for a subject's results: the subject in clear, optionally some types only. */
export interface CitizenDocumentsRequest {
  subject: Subject
  documentTypes?: string[]
}

/** What the portal asks for a subject's access history: a page of it, in a time range. */
export interface AccessHistoryRequest extends AccessHistoryQuery {
  subject: Subject
}

export interface AuditHistory {
  history(subject: string, range: { from?: string, to?: string, before?: string, limit: number }, day: string): Promise<{ events: AuditEvent[], more: boolean }>
}

export interface PortalServiceOptions {
  agencies: Pick<AgencyStore, 'getAgency'>
  /** the subject's documents as stored, for what is read without their data */
  documents: Pick<DocumentStore, 'documentsOfSubject'>
  /** where the subject's documents are read with their data in clear (decrypted when encrypted at rest), and subjects checked */
  index: Pick<DocumentService, 'documentsOfSubject' | 'checkedSubjectHash'>
  audit: AuditHistory
  /** secret key material for the history cursors (derived, never used as is) */
  secret: string
}

/** Agency names, each read at most once per call. */
function agencyNames (store: PortalServiceOptions['agencies']): (code: string) => Promise<string | undefined> {
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

  /** The subject's results for the portal, released only once the release is on record. */
  async showDocuments (call: Call, request: CitizenDocumentsRequest): Promise<{ documents: PortalDocument[] }> {
    const subject = this.options.index.checkedSubjectHash(request.subject)
    const { documentTypes } = request
    const documents = await this.citizenDocuments(subject, documentTypes)
    await call.audit({
      action: 'portal.citizen_documents',
      outcome: documents.length ? 'granted' : 'empty',
      subject,
      documents: documents.map((d) => ({ id: d.id, version: d.version })),
      detail: { returned: documents.length, ...(documentTypes ? { documentTypes } : {}) }
    })
    return { documents }
  }

  /** A page of the subject's access history for the portal, released once the read is on record. */
  async showAccessHistory (call: Call, request: AccessHistoryRequest): Promise<{ items: AccessHistoryItem[], nextCursor?: string }> {
    const { subject: who, from, to, limit, cursor } = request
    const subject = this.options.index.checkedSubjectHash(who)
    const result = await this.accessHistory(subject, { limit, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(cursor ? { cursor } : {}) })
    await call.audit({
      action: 'portal.access_history',
      outcome: result.items.length ? 'granted' : 'empty',
      subject,
      detail: { returned: result.items.length, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(cursor ? { page: 'next' } : {}) }
    })
    return result
  }

  /** Every result of the subject (of these types), latest version each, newest issued first. */
  async citizenDocuments (subjectHash: string, types?: string[], now = new Date()): Promise<PortalDocument[]> {
    const documents = await this.options.index.documentsOfSubject(subjectHash, types)
    const nameOf = agencyNames(this.options.agencies)
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

  /** The accesses the subject may see (granted reuse queries, hidden ones from their date on), newest first, `limit` a page. */
  async accessHistory (subjectHash: string, query: AccessHistoryQuery, now = new Date()): Promise<{ items: AccessHistoryItem[], nextCursor?: string }> {
    checkTimeRange(query.from, query.to)
    const binding = `${subjectHash}|${query.from ?? ''}|${query.to ?? ''}`
    const before = query.cursor ? this.openCursor(query.cursor, binding) : undefined
    const { events, more } = await this.options.audit.history(subjectHash, {
      limit: query.limit,
      ...(query.from ? { from: query.from } : {}),
      ...(query.to ? { to: query.to } : {}),
      ...(before ? { before } : {})
    }, today(now))
    const items = await this.describe(subjectHash, events)
    const last = events[events.length - 1]
    return { items, ...(more && last ? { nextCursor: this.sealCursor(last.id, binding) } : {}) }
  }

  private async describe (subjectHash: string, events: AuditEvent[]): Promise<AccessHistoryItem[]> {
    if (events.length === 0) return []
    const nameOf = agencyNames(this.options.agencies)
    // the types of the documents released, from the subject's own partition (one read; their data is not needed, so not decrypted)
    const types = new Map<string, string>()
    for (const document of await this.options.documents.documentsOfSubject(subjectHash)) {
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

  /** AES-256-GCM over the id a next page resumes below, bound to the subject and range it was made for. */
  private sealCursor (eventId: string, binding: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.cursorKey, iv)
    cipher.setAAD(Buffer.from(binding))
    const sealed = Buffer.concat([cipher.update(eventId, 'utf8'), cipher.final()])
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
