import { randomUUID } from 'node:crypto'
import type { Config } from '../config.js'
import type { AuditInput } from './audit.js'
import type { Call } from './call.js'
import type { Caller } from './call.js'
import { ProblemError } from '../lib/problem.js'
import type { OutboundFetch } from '../lib/outbound.js'
import { inDeliverySpan, traceparentOf } from '../lib/trace-context.js'
import { statusOf } from './document-status.js'
import type { AgencyStore, AuditStore, DocumentStore, LeaseStore, OutboxDeliveryRecord, OutboxDestinationStatus, OutboxEventRecord, OutboxEventType, OutboxSettlement, OutboxStore, ReuseRecordStore, StoredDocument, StoredDocumentVersion } from '../store/index.js'

/**
 * The outbox: announcements of changes to indexed results, delivered to webhooks.
 *
 * How nothing is lost: the audit event that records a change (written before the change, fail
 * closed) queues an outbox source in the same atomic store write. A single fan-out worker (a
 * store lease, so events get their cursors in the order the changes happened) confirms each
 * source against the store — a change whose write failed is dropped after a grace period — and
 * publishes one event per fact (`<document>.<version>.<kind>`, so a retried or raced
 * announcement publishes once) with one delivery per destination: the portal, and for a
 * revocation or amendment every agency that reused an affected version and registered a webhook.
 *
 * Deliveries: any number of workers in any number of processes; each delivery is leased to one
 * worker (no two deliver it at once), one at a time per destination and document (in cursor
 * order), retried with exponential back-off and jitter, dead-lettered after maxAttempts, and
 * can be replayed from a cursor. At-least-once: a worker that dies mid-delivery loses its lease
 * and another delivers again; receivers de-duplicate on the event id. Every body is signed by
 * the gateway (detached JWS, verifiable with /.well-known/jwks.json).
 */
export const WEBHOOK_TYP = 'reuse-webhook+jws'
export const PORTAL = 'portal'
/** how long a worker holds a source it is confirming before another may take it */
const SOURCE_BATCH = 200
/**
 * a change announced but not in the store after this long never happened (its write failed);
 * far above the store's command timeout, which bounds how late a write can land
 */
export const CONFIRM_GRACE_MS = 10_000

/** the worker's settings: OUTBOX_* and WEBHOOK_TIMEOUT_MS (config.ts), and where the portal listens */
export type OutboxSettings = Omit<Config['outbox'], 'worker'> & {
  portalWebhookUrl?: string | undefined
  confirmGraceMs?: number
}

export interface OutboxDeps {
  outbox: OutboxStore
  /** one fan-out worker at a time, across processes */
  leases: Pick<LeaseStore, 'holdLease'>
  /** the audit events that announce changes */
  events: Pick<AuditStore, 'auditEvents'>
  documents: Pick<DocumentStore, 'getDocument'>
  /** who reused a changed document, to notify */
  reuseRecords: Pick<ReuseRecordStore, 'reusesOf'>
  /** where agencies take their notices */
  agencies: Pick<AgencyStore, 'getAgency'>
  /** detached JWS over the body bytes, and the key id that signed it */
  sign: (body: string) => Promise<string>
  audit: (input: AuditInput) => Promise<unknown>
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void, debug?: (obj: object, msg: string) => void }
  userAgent: string
  /** reaches only what OUTBOUND_ALLOWED_HOSTS allows (lib/outbound.ts), redirects not followed */
  fetch: OutboundFetch
  /** told each settled attempt (a retry is `failed`): metrics count them */
  onSettled?: (result: 'delivered' | 'failed' | 'dead') => void
}

export const agencyDestination = (code: string): string => `agency:${code}`

/** The first day a result valid until `validUntil` (a Vietnamese calendar date) is expired. */
export function expiryInstant (validUntil: string): number {
  return Date.parse(`${validUntil}T00:00:00+07:00`) + 86_400_000
}

/** Exponential back-off with equal jitter: half the delay fixed, half random. */
export function retryDelay (attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const delay = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(delay / 2 + random() * delay / 2)
}

interface Resolved {
  source: string
  kind: 'indexed' | 'amended' | 'revoked' | 'expired'
  documentId: string
  version: number
  /** when the change was recorded (0 for an expiry) */
  since: number
  found: { document: StoredDocument, subjectHash: string } | undefined
  /** the trace the change was recorded in (its audit event's), continued by the deliveries */
  traceparent?: string
}

/** A delivery as its receiver reads it (GET /v1/webhooks/deliveries). */
export interface DeliveryView {
  event: string
  cursor: number
  state: OutboxDeliveryRecord['state']
  attempts: number
  nextAttemptAt?: string
  lastError?: string
  settledAt?: string
}

/** One destination's backlog as the admin reads it. */
export interface DestinationStatusView {
  destination: string
  queued: number
  delivered: number
  dead: number
  /** when the oldest delivery still queued was queued (ISO 8601), if the store says */
  oldestQueuedAt?: string
}

interface Reuse { requester: string, version: number, dossierCode: string, procedureCode: string, at: string }

/** Queues again every settled delivery to `destination` after `after`, page by page; returns how many. */
export async function replayOutbox (outbox: OutboxStore, destination: string, after: number): Promise<{ requeued: number }> {
  let requeued = 0
  let cursor: number | undefined = after
  while (cursor !== undefined) {
    const page: { requeued: number, next?: number } = await outbox.replayOutbox(destination, cursor, 500, Date.now())
    requeued += page.requeued
    cursor = page.next
  }
  return { requeued }
}

export class OutboxService {
  /** this process, as lease owner */
  readonly owner = randomUUID()
  private stopped = true
  private readonly abort = new AbortController()
  private fanOutTimer: NodeJS.Timeout | undefined
  private deliveryTimer: NodeJS.Timeout | undefined
  private fanOutRun: Promise<void> | undefined
  private deliveryRun: Promise<void> | undefined
  private readonly inFlight = new Set<Promise<void>>()

  constructor (private readonly settings: OutboxSettings, private readonly deps: OutboxDeps) {}

  private get graceMs (): number { return this.settings.confirmGraceMs ?? CONFIRM_GRACE_MS }
  /** a delivery is leased past the longest an attempt can take, so it is never held by two */
  private get deliveryLeaseMs (): number { return this.settings.timeoutMs * 2 + 5000 }

  start (): void {
    this.stopped = false
    this.fanOutTimer = setTimeout(() => this.loopFanOut(), 0)
    this.deliveryTimer = setTimeout(() => this.loopDeliveries(), 0)
  }

  /**
   * Stops taking work and aborts attempts in flight; bounded by the receivers' timeout. An
   * aborted attempt is not settled: its lease runs out and another worker delivers it.
   */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.fanOutTimer)
    clearTimeout(this.deliveryTimer)
    this.abort.abort()
    await Promise.allSettled([this.fanOutRun, this.deliveryRun, ...this.inFlight])
  }

  private loopFanOut (): void {
    if (this.stopped) return
    this.fanOutRun = this.fanOutOnce().then(() => {}, (err) => {
      this.deps.log.warn({ err }, 'outbox fan-out failed; retrying')
    }).finally(() => {
      if (!this.stopped) this.fanOutTimer = setTimeout(() => this.loopFanOut(), this.settings.pollMs)
    })
  }

  private loopDeliveries (): void {
    if (this.stopped) return
    this.deliveryRun = this.deliverDue().catch((err) => {
      this.deps.log.warn({ err }, 'outbox delivery round failed; retrying')
    }).finally(() => {
      if (!this.stopped) this.deliveryTimer = setTimeout(() => this.loopDeliveries(), this.settings.pollMs)
    })
  }

  /**
   * Turns due sources into events, if this process holds the fan-out lease (one process at a
   * time). Sources are taken oldest first, and a document's events are published in the order
   * its changes happened: a source whose change is not visible yet (its write is on its way),
   * or whose predecessor (the document's previous event) is not published yet, waits — and so
   * do the later sources of that document — while other documents go on. A source that still
   * cannot be confirmed after the grace period recorded a write that failed, and is dropped.
   * Returns how many sources it published or dropped.
   */
  async fanOutOnce (): Promise<number> {
    let handled = 0
    const leaseMs = Math.max(5 * this.settings.pollMs, 5000)
    for (;;) {
      if (!await this.deps.leases.holdLease('outbox-fan-out', this.owner, leaseMs)) return handled
      const sources = await this.deps.outbox.dueOutboxSources(Date.now(), SOURCE_BATCH)
      const waiting = new Set<string>()
      // read together (the audit events in one round trip, the documents side by side); then
      // each document's sources in their order, documents side by side
      const resolved = await this.resolveMany(sources)
      const byDocument = new Map<string, Array<{ source: string, resolved: Resolved | undefined }>>()
      sources.forEach((source, i) => {
        const key = resolved[i]?.documentId ?? source
        const queue = byDocument.get(key) ?? []
        queue.push({ source, resolved: resolved[i] })
        byDocument.set(key, queue)
      })
      let published = 0
      await Promise.all([...byDocument.values()].map(async (queue) => {
        for (const item of queue) {
          const outcome = await this.handleSource(item.source, item.resolved, waiting)
          if (outcome !== 'waits') handled++
          if (outcome === 'published') published++
        }
      }))
      if (published > 0) this.deps.log.info({ published }, 'outbox events published')
      if (sources.length < SOURCE_BATCH || waiting.size >= sources.length || this.stopped) return handled
    }
  }

  /** what happened to a source: published, or dropped (also when rescheduled), or it waits (its document added to `waiting`) */
  private async handleSource (source: string, resolved: Resolved | undefined, waiting: Set<string>): Promise<'published' | 'dropped' | 'waits'> {
    if (!resolved) {
      await this.deps.outbox.dropOutboxSource(source)
      return 'dropped'
    }
    if (waiting.has(resolved.documentId)) return 'waits'
    const verdict = await this.check(resolved)
    if (verdict === 'wait') {
      waiting.add(resolved.documentId)
      return 'waits'
    }
    if (verdict === 'drop') {
      await this.deps.outbox.dropOutboxSource(source)
      if (resolved.kind !== 'expired') this.deps.log.warn({ source, kind: resolved.kind }, 'an announced change is not in the store: its write failed, nothing to announce')
      return 'dropped'
    }
    if (verdict === 'later') {
      await this.deps.outbox.scheduleOutboxSource(source, expiryInstant(resolved.found?.document.versions.at(-1)?.validUntil as string))
      return 'dropped'
    }
    await this.publish(source, resolved.kind, verdict.document, verdict.subjectHash, verdict.version, resolved.traceparent)
    return 'published'
  }

  /**
   * What each source announces: an audited change (`a:<audit event id>`) or an expiry
   * (`x:<document>:<version>`), with its document as it is now; undefined for a source that
   * announces nothing. The audit events are read in one call, the documents side by side.
   */
  private async resolveMany (sources: string[]): Promise<Array<Resolved | undefined>> {
    const eventIds = sources.filter((source) => source.startsWith('a:')).map((source) => source.slice(2))
    const events = new Map((await this.deps.events.auditEvents(eventIds)).map((event) => [event.id, event]))
    return await Promise.all(sources.map(async (source): Promise<Resolved | undefined> => {
      if (source.startsWith('x:')) {
        const [documentId, version] = source.slice(2).split(':')
        if (!documentId || !version) return undefined
        return { source, kind: 'expired', documentId, version: Number(version), since: 0, found: await this.deps.documents.getDocument(documentId) }
      }
      if (!source.startsWith('a:')) return undefined
      const event = events.get(source.slice(2))
      const ref = event?.documents?.[0]
      const kind = ({ 'document.indexed': 'indexed', 'document.amended': 'amended', 'document.revoked': 'revoked' } as const)[String(event?.action)]
      if (!event || !ref || !kind) return undefined
      const traced = typeof event.traceId === 'string' && typeof event.spanId === 'string' ? { traceparent: traceparentOf({ traceId: event.traceId, spanId: event.spanId }) } : {}
      return { source, kind, documentId: ref.id, version: ref.version ?? 1, since: Date.parse(String(event.time)), found: await this.deps.documents.getDocument(ref.id), ...traced }
    }))
  }

  private async check (r: Resolved): Promise<'wait' | 'drop' | 'later' | { document: StoredDocument, subjectHash: string, version: StoredDocumentVersion }> {
    const young = Date.now() - r.since < this.graceMs
    const document = r.found?.document
    const latest = document?.versions.at(-1)
    if (r.kind === 'expired') {
      if (!document || !latest || latest.version !== r.version || document.revoked || latest.validUntil === undefined) return 'drop'
      if (statusOf(document, latest) !== 'expired') return 'later'
    }
    const confirmed = document !== undefined && latest !== undefined && (
      r.kind === 'indexed' || r.kind === 'expired' ||
      (r.kind === 'amended' && document.versions.some((v) => v.version === r.version)) ||
      (r.kind === 'revoked' && document.revoked !== undefined))
    if (!confirmed) return young ? 'wait' : 'drop'
    const version = r.kind === 'revoked' ? latest : document.versions.find((v) => v.version === r.version) as StoredDocumentVersion
    // the document's previous event first (a change is audited only after the one before it
    // was written, but the processes that audited them may disagree on the time)
    if (r.kind !== 'indexed') {
      const before = r.kind === 'amended' ? version.version - 1 : version.version
      const predecessor = before <= 1 ? `${r.documentId}.1.indexed` : `${r.documentId}.${before}.amended`
      if (young && !await this.deps.outbox.outboxEvent(predecessor)) return 'wait'
    }
    return { document, subjectHash: (r.found as { subjectHash: string }).subjectHash, version }
  }

  private async publish (source: string, kind: 'indexed' | 'amended' | 'revoked' | 'expired', document: StoredDocument, subjectHash: string, version: StoredDocumentVersion, traceparent?: string): Promise<void> {
    const latest = document.versions[document.versions.length - 1] as StoredDocumentVersion
    // the body is built from the document at each delivery (eventBody); what it cannot tell later is kept
    const event: Omit<OutboxEventRecord, 'cursor'> = {
      id: `${version.id}.${version.version}.${kind}`,
      type: `document.${kind}` as OutboxEventType,
      documentId: version.id,
      version: version.version,
      published: { status: statusOf(document, version), latestVersion: latest.version },
      ...(traceparent !== undefined ? { traceparent } : {})
    }
    const deliveries: Array<{ destination: string, extra?: Record<string, unknown> }> = []
    if (this.settings.portalWebhookUrl) deliveries.push({ destination: PORTAL, extra: { subject: version.subject } })
    if (kind === 'amended' || kind === 'revoked') deliveries.push(...await this.noticesFor(kind, document, subjectHash, version))
    const schedule = (kind === 'indexed' || kind === 'amended') && version.validUntil !== undefined
      ? [{ source: `x:${version.id}:${version.version}`, at: expiryInstant(version.validUntil) }]
      : []
    const published = await this.deps.outbox.publishOutboxEvent(source, event, deliveries, schedule, Date.now())
    if (published) this.deps.log.debug?.({ outboxEvent: published.id, cursor: published.cursor, destinations: deliveries.length }, 'outbox event published')
  }

  /**
   * Reuse-aware notices: each agency that received an affected version — every version for a
   * revocation, the versions now superseded for an amendment — and has a webhook, with the
   * dossiers it used them for.
   */
  private async noticesFor (kind: 'amended' | 'revoked', document: StoredDocument, subjectHash: string, version: StoredDocumentVersion): Promise<Array<{ destination: string, extra: Record<string, unknown> }>> {
    const reuses = (await this.deps.reuseRecords.reusesOf(subjectHash, version.id)).filter((r) => kind === 'revoked' || r.version < version.version)
    const byRequester = new Map<string, Map<string, Reuse>>()
    for (const reuse of reuses) {
      const own = byRequester.get(reuse.requester) ?? new Map<string, Reuse>()
      // the same dossier asked about twice is one entry, with its latest time
      const key = `${reuse.version}\u0000${reuse.procedureCode}\u0000${reuse.dossierCode}`
      if (!own.has(key) || (own.get(key) as Reuse).at < reuse.at) own.set(key, reuse)
      byRequester.set(reuse.requester, own)
    }
    const out = []
    for (const [requester, own] of [...byRequester].sort(([a], [b]) => a.localeCompare(b))) {
      const agency = await this.deps.agencies.getAgency(requester)
      if (!agency?.webhookUrl) continue
      out.push({
        destination: agencyDestination(requester),
        extra: {
          reuses: [...own.values()].sort((a, b) => a.at.localeCompare(b.at)).map((r) => {
            const reused = document.versions.find((v) => v.version === r.version)
            return { version: r.version, status: reused ? statusOf(document, reused) : 'superseded', procedureCode: r.procedureCode, dossierCode: r.dossierCode, reusedAt: r.at }
          })
        }
      })
    }
    return out
  }

  /** Keeps up to `concurrency` deliveries in flight until nothing is due. */
  async deliverDue (): Promise<void> {
    const lease = `${this.owner}:${randomUUID()}`
    while (!this.stopped) {
      const room = this.settings.concurrency - this.inFlight.size
      const claimed = room > 0 ? await this.deps.outbox.claimOutboxDeliveries(Date.now(), this.deliveryLeaseMs, room, lease) : []
      for (const item of claimed) {
        const traced = { 'reuse_gateway.outbox.event': item.event.id, 'reuse_gateway.outbox.destination': item.delivery.destination }
        const attempt: Promise<void> = inDeliverySpan(item.event.traceparent, traced, async (traceHeaders) => await this.attempt(item.delivery, item.event, lease, traceHeaders))
          .catch((err) => { this.deps.log.warn({ err, outboxEvent: item.event.id, destination: item.delivery.destination }, 'outbox delivery not settled; its lease will run out and it will be tried again') })
          .finally(() => this.inFlight.delete(attempt))
        this.inFlight.add(attempt)
      }
      if (this.inFlight.size === 0) return
      // wait for a slot (or for all when nothing more was due)
      await Promise.race(this.inFlight)
    }
  }

  private async urlOf (destination: string): Promise<string | undefined> {
    if (destination === PORTAL) return this.settings.portalWebhookUrl
    if (destination.startsWith('agency:')) return (await this.deps.agencies.getAgency(destination.slice(7)))?.webhookUrl
    return undefined
  }

  /**
   * The part of an event's body every destination receives, as it was when the event was
   * published: the version's content is fixed once written and a revocation is never undone, so
   * the document gives it back, with the status and latest version the event kept from then.
   * Undefined when the document is no longer in the store.
   */
  private async eventBody (event: OutboxEventRecord): Promise<{ occurredAt: string, payload: Record<string, unknown> } | undefined> {
    if (event.payload !== undefined && event.occurredAt !== undefined) return { occurredAt: event.occurredAt, payload: event.payload }
    const found = await this.deps.documents.getDocument(event.documentId)
    const document = found?.document
    const version = document?.versions.find((v) => v.version === event.version)
    if (!document || !version || !event.published) return undefined
    const kind = event.type.slice('document.'.length)
    const revoked = event.published.status === 'revoked' ? document.revoked : undefined
    if (kind === 'revoked' && !revoked) return undefined
    const occurredAt = kind === 'revoked'
      ? (revoked as NonNullable<StoredDocument['revoked']>).at
      : kind === 'expired' ? new Date(expiryInstant(version.validUntil as string)).toISOString() : version.createdAt
    return {
      occurredAt,
      payload: {
        document: {
          id: version.id,
          version: version.version,
          latestVersion: event.published.latestVersion,
          type: version.type,
          issuer: version.issuer,
          documentNumber: version.documentNumber,
          status: event.published.status,
          validFrom: version.validFrom,
          ...(version.validUntil ? { validUntil: version.validUntil } : {}),
          ...(kind === 'amended' ? { supersedes: version.version - 1, amendmentReason: version.amendmentReason } : {}),
          ...(revoked ? { revokedAt: revoked.at, revocationReason: revoked.reason } : {})
        }
      }
    }
  }

  /** One attempt: POST the signed body (with the delivery's trace headers, when traced), then audit and settle what happened. */
  private async attempt (delivery: OutboxDeliveryRecord, event: OutboxEventRecord, lease: string, traceHeaders: Record<string, string> = {}): Promise<void> {
    const attempt = delivery.attempts + 1
    const recipient = delivery.destination === PORTAL ? PORTAL : delivery.destination.slice(7)
    const built = await this.eventBody(event)
    const body = built && JSON.stringify({ id: event.id, cursor: event.cursor, type: event.type, occurredAt: built.occurredAt, recipient, ...built.payload, ...delivery.extra })
    const url = await this.urlOf(delivery.destination)
    let status: number | undefined
    let error: string | undefined
    if (!body) {
      error = 'the document the event is about is no longer in the store'
    } else if (!url) {
      error = 'no webhook registered for this destination'
    } else {
      try {
        const signature = await this.deps.sign(body)
        const response = await this.deps.fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': this.deps.userAgent,
            'reuse-event-id': event.id,
            'reuse-event-cursor': String(event.cursor),
            'reuse-delivery-attempt': String(attempt),
            'reuse-signature': signature,
            ...traceHeaders
          },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(this.settings.timeoutMs), this.abort.signal])
        })
        status = response.status
        await response.body?.cancel().catch(() => {})
        if (status < 200 || status > 299) error = `the receiver answered HTTP ${status}`
      } catch (err) {
        if (this.abort.signal.aborted) return
        const name = (err as Error).name
        const cause = (err as { cause?: { code?: string } }).cause?.code
        error = name === 'TimeoutError' ? `no answer within ${this.settings.timeoutMs} ms` : `unreachable${cause ? ` (${cause})` : ''}`
      }
    }
    const now = Date.now()
    const outcome: OutboxSettlement = error === undefined
      ? { state: 'delivered', at: new Date(now).toISOString() }
      : attempt >= this.settings.maxAttempts || !url || !body
        ? { state: 'dead', at: new Date(now).toISOString(), error }
        : { state: 'retry', nextAttemptAt: now + retryDelay(attempt, this.settings.retryBaseMs, this.settings.retryMaxMs), error }
    await this.deps.audit({
      actor: null,
      action: outcome.state === 'delivered' ? 'webhook.delivered' : outcome.state === 'dead' ? 'webhook.dead' : 'webhook.failed',
      outcome: outcome.state === 'delivered' ? 'granted' : 'error',
      documents: [{ id: event.documentId, version: event.version }],
      detail: {
        event: event.id,
        cursor: event.cursor,
        destination: delivery.destination,
        attempt,
        ...(status !== undefined ? { status } : {}),
        ...(error !== undefined ? { error } : {}),
        ...(outcome.state === 'retry' ? { nextAttemptAt: new Date(outcome.nextAttemptAt).toISOString() } : {})
      }
    })
    if (!await this.deps.outbox.settleOutboxDelivery(delivery.destination, event.id, lease, outcome, now)) {
      this.deps.log.warn({ outboxEvent: event.id, destination: delivery.destination }, 'outbox delivery lease ran out before it was settled; it will be tried again')
    } else {
      this.deps.onSettled?.(outcome.state === 'retry' ? 'failed' : outcome.state)
    }
  }

  /** A recorded change that did not happen after all (the write failed, or an earlier registration won): nothing to announce. */
  async discard (auditEventId: string): Promise<void> {
    await this.deps.outbox.dropOutboxSource(`a:${auditEventId}`)
  }

  async replay (destination: string, after: number): Promise<{ requeued: number }> {
    return await replayOutbox(this.deps.outbox, destination, after)
  }

  /** The caller's own destination: the portal's announcements, or an agency's notices (404 without a webhook). */
  private async destinationOf (caller: Pick<Caller, 'code' | 'roles'>): Promise<string> {
    if (caller.roles.includes('portal')) return PORTAL
    const agency = await this.deps.agencies.getAgency(caller.code)
    if (!agency?.webhookUrl) throw new ProblemError(404, 'no_webhook', `agency ${caller.code} has no webhook registered (webhookUrl, set by an administrator)`)
    return agencyDestination(caller.code)
  }

  /**
   * The destination a call is about: the caller's own, or the one it names, which only an admin
   * may (the console's deliveries page looks after every destination).
   */
  private async chosenDestination (caller: Pick<Caller, 'code' | 'roles'>, named: string | undefined): Promise<string> {
    if (named === undefined) return await this.destinationOf(caller)
    if (!caller.roles.includes('admin')) throw new ProblemError(403, 'insufficient_scope', 'only an admin names a destination; other agencies read and replay their own')
    return named
  }

  /** Every destination's backlog: queued, delivered and dead deliveries (and, when the store keeps it, when the oldest queued one was queued). */
  async status (): Promise<{ destinations: DestinationStatusView[] }> {
    const status = await this.deps.outbox.outboxStatus() as Array<OutboxDestinationStatus & { oldestQueuedAt?: number | string }>
    return {
      destinations: status.map(({ destination, queued, delivered, dead, oldestQueuedAt }) => ({
        destination,
        queued,
        delivered,
        dead,
        ...(oldestQueuedAt !== undefined ? { oldestQueuedAt: new Date(oldestQueuedAt).toISOString() } : {})
      }))
    }
  }

  /** What was sent (or is being sent) to the caller (or, for an admin, to the destination it names), by cursor, oldest first. */
  async deliveriesOf (caller: Pick<Caller, 'code' | 'roles'>, after: number, limit: number, named?: string): Promise<{ destination: string, deliveries: DeliveryView[] }> {
    const destination = await this.chosenDestination(caller, named)
    const deliveries = await this.deps.outbox.outboxDeliveries(destination, after, limit)
    return {
      destination,
      deliveries: deliveries.map((d) => ({
        event: d.eventId,
        cursor: d.cursor,
        state: d.state,
        attempts: d.attempts,
        ...(d.state === 'queued' ? { nextAttemptAt: new Date(d.nextAttemptAt).toISOString() } : {}),
        ...(d.lastError ? { lastError: d.lastError } : {}),
        ...(d.settledAt ? { settledAt: d.settledAt } : {})
      }))
    }
  }

  /** Sends the caller everything after its cursor again, once the request is on record. */
  async replayFor (call: Call, after: number, named?: string): Promise<{ destination: string, requeued: number }> {
    const destination = await this.chosenDestination(call.caller, named)
    await call.audit({ action: 'webhook.replay_requested', outcome: 'granted', detail: { destination, after } })
    const { requeued } = await this.replay(destination, after)
    return { destination, requeued }
  }
}
