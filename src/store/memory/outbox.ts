/**
 * The outbox of the embedded store: the same rules as the Redis scripts (redis/outbox.ts), in
 * one process. Every method runs without an await inside, so each is atomic here as a script is
 * in Redis. The audit store announces to it (memory/audit.ts) as the Redis append script queues
 * a source.
 */
import type { OutboxDeliveryRecord, OutboxDestinationStatus, OutboxEventRecord, OutboxSettlement, OutboxStore } from '../outbox.js'

type Delivery = OutboxDeliveryRecord & { lease?: string }

/** due entries ≤ now, by (time, name) as a Redis sorted set orders them */
function dueEntries (entries: Map<string, number>, now: number, limit: number): string[] {
  return [...entries].filter(([, at]) => at <= now)
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, limit).map(([name]) => name)
}

export class MemoryOutboxStore implements OutboxStore {
  private readonly sources = new Map<string, number>()
  private readonly events = new Map<string, string>()
  private cursor = 0
  private readonly deliveries = new Map<string, Delivery>()
  /** per destination and document, the event ids not yet settled, oldest first */
  private readonly queues = new Map<string, string[]>()
  /** the head of each queue → when it is due */
  private readonly due = new Map<string, number>()
  private readonly byDestination = new Map<string, Array<{ cursor: number, id: string }>>()
  private readonly counts = new Map<string, OutboxDestinationStatus>()
  /** per destination, its queued deliveries' event ids → when queued, in the order they were (oldest first) */
  private readonly waiting = new Map<string, Map<string, number>>()

  /** what the audit store calls in the same step as it appends an announcing event */
  announce (auditEventId: string, at: number): void {
    this.sources.set(`a:${auditEventId}`, at)
  }

  async dueOutboxSources (now: number, limit: number): Promise<string[]> {
    return dueEntries(this.sources, now, limit)
  }

  async outboxEvent (id: string): Promise<OutboxEventRecord | undefined> {
    const json = this.events.get(id)
    return json === undefined ? undefined : JSON.parse(json) as OutboxEventRecord
  }

  async scheduleOutboxSource (source: string, at: number): Promise<void> {
    this.sources.set(source, at)
  }

  async dropOutboxSource (source: string): Promise<void> {
    this.sources.delete(source)
  }

  async publishOutboxEvent (source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined> {
    if (source !== undefined) this.sources.delete(source)
    if (this.events.has(event.id)) return undefined
    const record: OutboxEventRecord = { ...event, cursor: ++this.cursor }
    this.events.set(event.id, JSON.stringify(record))
    for (const { destination, extra } of deliveries) {
      this.deliveries.set(`${destination}|${event.id}`, {
        destination, eventId: event.id, cursor: record.cursor, documentId: event.documentId, state: 'queued', attempts: 0, nextAttemptAt: now, ...(extra ? { extra: structuredClone(extra) } : {})
      })
      const queueKey = `${destination}|${event.documentId}`
      const queue = this.queues.get(queueKey) ?? []
      queue.push(event.id)
      this.queues.set(queueKey, queue)
      if (queue.length === 1) this.due.set(`${destination}|${event.id}`, now)
      const list = this.byDestination.get(destination) ?? []
      list.push({ cursor: record.cursor, id: event.id })
      this.byDestination.set(destination, list)
      this.count(destination).queued++
      this.wait(destination, event.id, now)
    }
    for (const entry of schedule) this.sources.set(entry.source, entry.at)
    return structuredClone(record)
  }

  async claimOutboxDeliveries (now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>> {
    const out = []
    for (const member of dueEntries(this.due, now, limit)) {
      this.due.set(member, now + leaseMs)
      const delivery = this.deliveries.get(member) as Delivery
      delivery.lease = lease
      const { lease: _lease, ...record } = delivery
      out.push({ delivery: structuredClone(record), event: JSON.parse(this.events.get(delivery.eventId) as string) as OutboxEventRecord })
    }
    return out
  }

  async settleOutboxDelivery (destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean> {
    const member = `${destination}|${eventId}`
    const delivery = this.deliveries.get(member)
    if (!delivery || delivery.lease !== lease) return false
    delete delivery.lease
    delivery.attempts++
    if (outcome.state === 'retry') {
      delivery.nextAttemptAt = outcome.nextAttemptAt
      delivery.lastError = outcome.error
      this.due.set(member, outcome.nextAttemptAt)
      return true
    }
    delivery.state = outcome.state
    delivery.settledAt = outcome.at
    if (outcome.state === 'dead') delivery.lastError = outcome.error
    this.due.delete(member)
    const counts = this.count(destination)
    counts.queued--
    counts[outcome.state]++
    this.waiting.get(destination)?.delete(eventId)
    const queueKey = `${destination}|${delivery.documentId}`
    const queue = (this.queues.get(queueKey) ?? []).filter((id) => id !== eventId)
    if (queue.length === 0) this.queues.delete(queueKey)
    else this.queues.set(queueKey, queue)
    if (queue[0] !== undefined) this.due.set(`${destination}|${queue[0]}`, now)
    return true
  }

  async replayOutbox (destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }> {
    const page = (this.byDestination.get(destination) ?? []).filter((entry) => entry.cursor > after).slice(0, limit)
    let requeued = 0
    for (const { id } of page) {
      const delivery = this.deliveries.get(`${destination}|${id}`) as Delivery
      if (delivery.state === 'queued') continue
      const counts = this.count(destination)
      counts[delivery.state]--
      counts.queued++
      delivery.state = 'queued'
      delivery.attempts = 0
      delivery.nextAttemptAt = now
      delete delivery.lastError
      delete delivery.settledAt
      this.wait(destination, id, now)
      const queueKey = `${destination}|${delivery.documentId}`
      const queue = this.queues.get(queueKey) ?? []
      queue.push(id)
      this.queues.set(queueKey, queue)
      if (queue.length === 1) this.due.set(`${destination}|${id}`, now)
      requeued++
    }
    return { requeued, ...(page.length === limit ? { next: (page[page.length - 1] as { cursor: number }).cursor } : {}) }
  }

  async outboxDeliveries (destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]> {
    return (this.byDestination.get(destination) ?? []).filter((entry) => entry.cursor > after).slice(0, limit).map(({ id }) => {
      const { lease: _lease, ...record } = this.deliveries.get(`${destination}|${id}`) as Delivery
      return structuredClone(record)
    })
  }

  async outboxStatus (): Promise<OutboxDestinationStatus[]> {
    return [...this.counts.values()].sort((a, b) => a.destination.localeCompare(b.destination)).map((c) => {
      const oldest = this.waiting.get(c.destination)?.values().next().value
      return { ...c, ...(oldest !== undefined ? { oldestQueuedAt: new Date(oldest).toISOString() } : {}) }
    })
  }

  /** a delivery (re)queued at `at`: last in its destination's waiting order */
  private wait (destination: string, eventId: string, at: number): void {
    let waiting = this.waiting.get(destination)
    if (!waiting) this.waiting.set(destination, waiting = new Map())
    waiting.delete(eventId)
    waiting.set(eventId, at)
  }

  private count (destination: string): OutboxDestinationStatus {
    let counts = this.counts.get(destination)
    if (!counts) this.counts.set(destination, counts = { destination, queued: 0, delivered: 0, dead: 0 })
    return counts
  }
}
