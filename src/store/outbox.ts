/**
 * The outbox. A change to a document is announced by its audit event (`announce`): the same
 * atomic write queues a source `a:<audit event id>`; scheduled expiries are sources
 * `x:<document id>:<version>`. Sources become events (with their deliveries) once the change is
 * confirmed in the store; deliveries go out one at a time per (destination, document), in
 * cursor order.
 */

export type OutboxEventType = 'document.indexed' | 'document.amended' | 'document.revoked' | 'document.expired'

/** One announced fact, published once whatever retried or raced to announce it. */
export interface OutboxEventRecord {
  /** `<documentId>.<version>.<indexed|amended|revoked|expired>`: what receivers de-duplicate on */
  id: string
  /** the event's position in the outbox, increasing; replay starts after a cursor */
  cursor: number
  type: OutboxEventType
  documentId: string
  /** the version the event is about */
  version: number
  /**
   * What held when the event was published that the document no longer tells once it changes:
   * the version's status and the latest version then. The rest of the body is the document's
   * own (versions are never rewritten, a revocation never undone), so every delivery of the
   * event, a replay too, is built from the document with these and sends the same body.
   */
  published?: { status: string, latestVersion: number }
  /** events published by the earlier layout carry their body part and time as they were sent */
  occurredAt?: string
  payload?: Record<string, unknown>
  /** the W3C traceparent of the traced request that made the change: its deliveries continue that trace */
  traceparent?: string
}

export type OutboxDeliveryState = 'queued' | 'delivered' | 'dead'

/** One event on its way to one destination (`portal`, or `agency:<code>`). */
export interface OutboxDeliveryRecord {
  destination: string
  eventId: string
  cursor: number
  documentId: string
  state: OutboxDeliveryState
  /** attempts made so far */
  attempts: number
  /** epoch ms of the next attempt (queued) */
  nextAttemptAt: number
  lastError?: string
  /** when it was delivered or given up */
  settledAt?: string
  /** the destination's own part of the body (an agency's reuses of the document) */
  extra?: Record<string, unknown>
}

export type OutboxSettlement =
  | { state: 'delivered', at: string }
  | { state: 'retry', nextAttemptAt: number, error: string }
  | { state: 'dead', at: string, error: string }

export interface OutboxDestinationStatus {
  destination: string
  queued: number
  delivered: number
  dead: number
  /** when the longest-waiting queued delivery was queued (ISO time); absent when none is queued */
  oldestQueuedAt?: string
}

export interface OutboxStore {
  // The outbox. A change to a document is announced by its audit event (`announce`): the same
  // atomic write queues a source `a:<audit event id>`; scheduled expiries are sources
  // `x:<document id>:<version>`. Sources become events (with their deliveries) once the change is
  // confirmed in the store; deliveries go out one at a time per (destination, document), in
  // cursor order.
  /** sources due by `now`, oldest first (read only: one fan-out worker at a time, under a lease) */
  dueOutboxSources(now: number, limit: number): Promise<string[]>
  /** a published event, if any */
  outboxEvent(id: string): Promise<OutboxEventRecord | undefined>
  /** (re)schedules a source at `at` (epoch ms) */
  scheduleOutboxSource(source: string, at: number): Promise<void>
  dropOutboxSource(source: string): Promise<void>
  /**
   * Atomically: publishes the event with the next cursor, queues one delivery per destination,
   * adds the scheduled sources and drops `source`. An event whose id exists already is not
   * published again (undefined), and `source` is dropped all the same.
   */
  publishOutboxEvent(source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined>
  /** deliveries due by `now` (each the oldest queued of its destination and document), leased to `lease` until now + leaseMs */
  claimOutboxDeliveries(now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>>
  /** records an attempt's outcome if `lease` still holds the delivery (false otherwise); a settled delivery lets the next of its queue go */
  settleOutboxDelivery(destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean>
  /** queues again up to `limit` delivered or dead deliveries to `destination` with cursor > `after`; `next` is the cursor to continue from, if more may follow */
  replayOutbox(destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }>
  /** a destination's deliveries by cursor (> after), for inspection */
  outboxDeliveries(destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]>
  outboxStatus(): Promise<OutboxDestinationStatus[]>
}
