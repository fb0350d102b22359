import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { decodeTime, encodeTime, ulid as chainUlid } from 'ulid'
import { ulidFactory } from '../lib/ulid.js'
import type { Logger } from 'pino'
import { canonicalDigest } from '../lib/digest.js'
import { ProblemError } from '../lib/problem.js'
import type { AuditCheckpointRecord, AuditIndex, AuditStore, StoredAuditEvent } from '../store/index.js'
import { StatedError } from '../lib/error-description.js'
import { activeTrace } from '../lib/trace-context.js'

/**
 * The audit trail every capability writes through.
 *
 * Chains: one hash chain per gateway process (its id chosen at start). A process appends to
 * its own chain strictly in order, so gateways sharing one Redis never contend for a head and no
 * event is lost or duplicated; the store's append script still refuses anything that is not
 * head + 1, so even a bug cannot fork a chain. Verification walks every chain.
 *
 * Order of sinks: the store first (fail closed: if it cannot be written the caller gets an
 * error and must not perform the action), then the audit log (JSON lines), which alone is
 * enough to verify the chains offline.
 */
export type AuditOutcome = 'granted' | 'empty' | 'denied' | 'error'

export interface AuditInput {
  actor: string | null
  action: string
  outcome: AuditOutcome
  /** keyed hash of the person or organization concerned — never the identifier */
  subject?: string
  documents?: Array<{ id: string, version?: number }>
  purpose?: { procedureCode?: string, dossierCode?: string }
  requestId?: string
  clientAddress?: string
  detail?: Record<string, unknown>
  /** the trace (and span) the event was recorded in, when tracing is on: filled in by `record` */
  traceId?: string
  spanId?: string
}

export interface AuditEvent extends AuditInput {
  id: string
  chain: string
  seq: number
  time: string
  prevHash: string
  hash: string
}

export interface AppendOptions {
  /**
   * The event records a change to a document that the outbox announces: the store queues it
   * for the outbox in the same atomic write (services/outbox.ts confirms the change before
   * publishing it).
   */
  announce?: boolean
}

interface PendingEvent {
  input: AuditInput
  options: AppendOptions
  resolve?: (event: AuditEvent) => void
  reject?: (err: unknown) => void
}

/** events one append writes at most (one store round trip, a few hundred kilobytes) */
const MAX_BATCH = 256

/** hidden accesses one store call moves to a subject's history at most */
const REVEAL_BATCH = 500

export const GENESIS_HASH = '0'.repeat(64)
export const CHECKPOINT_TYP = 'audit-checkpoint+jwt'
/** checkpoints of several processes are stored in about time order: a page starts this many places early… */
const CHECKPOINT_ORDER_SLACK = 64
/** …and reads this far past its end */
const CHECKPOINT_CLOCK_SLACK_MS = 5 * 60_000

/**
 * Whether a checkpoint is a retention checkpoint (its signed claims say `retention`): read from
 * its JWS without verifying it — the verifier verifies every checkpoint it is given.
 */
export function isRetentionCheckpoint (checkpoint: AuditCheckpointRecord): boolean {
  try {
    const payload = JSON.parse(Buffer.from(checkpoint.jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as { retention?: unknown }
    return typeof payload.retention === 'object' && payload.retention !== null
  } catch {
    return false
  }
}

/** A time range of the audit API and the portal's history: `from` strictly before `to` (400 otherwise). */
export function checkTimeRange (from: string | undefined, to: string | undefined): void {
  if (from && to && Date.parse(from) >= Date.parse(to)) {
    throw new ProblemError(400, 'invalid_time_range', '`from` must be before `to`')
  }
}

/** two checkpoints' lists of heads say the same: every chain at the same position */
function sameHeads (a: AuditCheckpointRecord['chains'], b: AuditCheckpointRecord['chains']): boolean {
  if (a.length !== b.length) return false
  const positions = new Map(b.map((head) => [head.chain, head]))
  return a.every((head) => { const other = positions.get(head.chain); return other?.seq === head.seq && other.hash === head.hash })
}

/** SHA-256 over the RFC 8785 canonical JSON of the event without its own hash. */
export function eventHash (event: Omit<AuditEvent, 'hash'> | AuditEvent): string {
  const { hash: _hash, ...rest } = event as AuditEvent
  return canonicalDigest(rest)
}

export interface AuditSigner {
  sign(claims: Record<string, unknown>, typ: string): Promise<string>
}

export interface AuditSearchFilters {
  agency?: string
  subject?: string
  action?: string
  outcome?: AuditOutcome
  documentId?: string
  from?: string
  to?: string
  limit: number
  cursor?: string
}

export interface AuditServiceOptions {
  audit: AuditStore
  /** where audit lines go: a pino logger writing JSON lines (AUDIT_LOG_FILE or standard output) */
  log: Logger
  signer: AuditSigner
  /** the gateway's issuer id, put in checkpoints */
  issuer: string
  /** key for cursors, so a client cannot forge a position */
  cursorKey: string
  /** this process's chain id (default: a new ULID) */
  chain?: string
  /**
   * Writes out what the audit log holds in memory (the log file is written asynchronously):
   * called after each checkpoint's line, so that a crash costs at most the lines since the last
   * checkpoint. Default: nothing to flush.
   */
  flushLog?: () => Promise<void>
  /** the clock of event ids and times and of checkpoints (ms); the bench fills a past month with it */
  now?: () => number
  /** events one verification request reads at most (default VERIFY_BUDGET) */
  verifyBudget?: number
  /**
   * The trail has an archive: events leave it only by retention, which signs a retention
   * checkpoint first, so a chain that starts past seq 1 must start right after the pin of one
   * (a row deleted or a month dropped any other way breaks verification).
   */
  signedRetention?: boolean
  /** the chains a checkpoint lists (default: every chain of the trail): with an archive, the store's live ones */
  liveChains?: () => Promise<string[]>
  /** told how long each append of a batch took (seconds), and whether it succeeded: metrics */
  onAppend?: (seconds: number, ok: boolean) => void
}

/** A chain position: its seq and the hash of the event there (seq 0: the genesis hash). */
export interface ChainPosition { chain: string, seq: number, hash: string }

/**
 * What one verification request reads at most, in events: about a second of work. Past it the
 * answer is partial, with a cursor that resumes exactly where the walk stopped.
 */
export const VERIFY_BUDGET = 200_000

/** what verifying a range reads: {@link AuditService.rangeWalk} */
export interface RangeWalk {
  /** the signed checkpoints the walk relies on: the one before the range, those pinning a pruned chain's start, the one after it */
  checkpoints: AuditCheckpointRecord[]
  /** where a chain's walk starts: after this position (undefined: at its first event, seq 1) */
  startOf: (chain: string) => { seq: number, hash: string } | undefined
  /** each chain's events from its start to its end, chain after chain, until the budget is spent */
  events: AsyncGenerator<AuditEvent>
  /** the chains whose walk reached its end in this request (their ends are checked) */
  finished: (chain: string) => boolean
  /** an archived trail: a chain starts past seq 1 only after a retention checkpoint */
  retentionStartsOnly: boolean
  /** once the events are read: a cursor when the budget stopped the walk, given the events counted so far */
  nextCursor: (checked: number) => string | undefined
  /** events of the range counted by the requests before this one (from the cursor) */
  checkedBefore: number
}

export class AuditService {
  private chainId: string
  private head: { seq: number, hash: string } | undefined
  /** the last event of this chain written to the log; undefined until the head is first read */
  private logged: { seq: number, hash: string } | undefined
  /** events that reached the store although their append was reported failed, not yet noted in the chain */
  private unconfirmed: string[] = []
  private readonly pending: PendingEvent[] = []
  private flushing: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  /** this process's chain head as its last checkpoint signed it */
  private ownCheckpointed: { seq: number, hash: string } | undefined

  private readonly now: () => number
  /** event ids: increasing within the process even when the clock steps back (and on the `now` clock given) */
  private readonly ulid = ulidFactory()

  constructor (private readonly options: AuditServiceOptions) {
    this.chainId = options.chain ?? chainUlid()
    this.now = options.now ?? Date.now
  }

  /** the chain this process appends to */
  get chain (): string { return this.chainId }

  /**
   * Appends one event: resolves once it is in the store (and then in the log). Rejects when
   * the store cannot take it — the caller must not perform the action then.
   *
   * Group commit: each event needs the hash of the one before, so appends of this process are
   * serialized — but events recorded while an append is in flight go together in the next one
   * (one store round trip for all of them, atomically), so the chain is not a queue every
   * request waits in turn for.
   */
  async record (input: AuditInput, options: AppendOptions = {}): Promise<AuditEvent> {
    // the trace of the request being served, read now: the append runs for a whole batch
    const traced = activeTrace()
    return await new Promise<AuditEvent>((resolve, reject) => {
      this.pending.push({ input: traced === undefined ? input : { ...input, ...traced }, options, resolve, reject })
      this.flush()
    })
  }

  private flush (): void {
    if (this.flushing) return
    this.flushing = (async () => {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH)
        const started = performance.now()
        try {
          const events = await this.append(batch)
          this.options.onAppend?.((performance.now() - started) / 1000, true)
          batch.forEach((item, i) => item.resolve?.(events[i] as AuditEvent))
        } catch (err) {
          this.options.onAppend?.((performance.now() - started) / 1000, false)
          for (const item of batch) item.reject?.(err)
        }
      }
    })().finally(() => {
      this.flushing = undefined
      // recorded between the last check and now
      if (this.pending.length > 0) this.flush()
    })
  }

  private async append (batch: PendingEvent[]): Promise<AuditEvent[]> {
    if (!this.head) await this.resync()
    // the chain itself says which of its events recorded actions that were refused
    const note: PendingEvent[] = this.unconfirmed.length > 0
      ? [{ input: { actor: null, action: 'audit.unconfirmed', outcome: 'error', detail: { events: this.unconfirmed } }, options: {} }]
      : []
    const events = await this.write([...note, ...batch])
    if (note.length) this.unconfirmed = []
    return events.slice(note.length)
  }

  /**
   * Reads the chain head from the store: at the first append, and after a failed one. A failed
   * append (a timeout, a dropped connection) may still have reached the store; such events are
   * logged now, so that the log alone still verifies, and noted in the chain as unconfirmed —
   * their callers were refused, so the actions they record did not happen. A store that lost
   * events this process logged (restored, or failed over without them) is never appended to
   * at those positions again: the log would hold two different events with one seq.
   */
  private async resync (): Promise<void> {
    const stored = await this.options.audit.auditChainHead(this.chain) ?? { seq: 0, hash: GENESIS_HASH }
    const logged = this.logged ?? stored
    if (stored.seq < logged.seq || (stored.seq === logged.seq && stored.hash !== logged.hash)) {
      this.options.log.error({ chain: this.chain, stored: stored.seq, logged: logged.seq }, 'the store lost audit events this process logged; continuing on a new chain')
      this.startChain()
      return
    }
    if (stored.seq > logged.seq) {
      const missed = await this.options.audit.auditChainSlice(this.chain, logged.seq + 1, stored.seq - logged.seq) as unknown as AuditEvent[]
      for (const event of missed) this.options.log.info({ audit: event, unconfirmed: true }, 'audit')
      this.unconfirmed.push(...missed.map((event) => event.id))
    }
    this.logged = stored
    this.head = stored
  }

  private startChain (): void {
    this.chainId = chainUlid()
    this.head = { seq: 0, hash: GENESIS_HASH }
    this.logged = this.head
  }

  private async write (batch: Array<Pick<PendingEvent, 'input' | 'options'>>, retried = false): Promise<AuditEvent[]> {
    if (!this.head) throw new StatedError('audit chain head unknown')
    let previous = this.head
    const events = batch.map(({ input }) => {
      // one clock reading for the id and the time: a time range searched through the id
      // indexes then selects exactly the events whose `time` is in it
      const id = this.ulid(this.now())
      const body: Omit<AuditEvent, 'hash'> = {
        id,
        chain: this.chain,
        seq: previous.seq + 1,
        time: new Date(decodeTime(id)).toISOString(),
        actor: input.actor,
        action: input.action,
        outcome: input.outcome,
        ...(input.subject ? { subject: input.subject } : {}),
        ...(input.documents?.length ? { documents: input.documents } : {}),
        ...(input.purpose && Object.keys(input.purpose).length ? { purpose: input.purpose } : {}),
        ...(input.requestId ? { requestId: input.requestId } : {}),
        ...(input.clientAddress ? { clientAddress: input.clientAddress } : {}),
        ...(input.traceId ? { traceId: input.traceId, ...(input.spanId ? { spanId: input.spanId } : {}) } : {}),
        ...(input.detail && Object.keys(input.detail).length ? { detail: input.detail } : {}),
        prevHash: previous.hash
      }
      const event: AuditEvent = { ...body, hash: eventHash(body) }
      previous = { seq: event.seq, hash: event.hash }
      return event
    })
    let appended: boolean
    try {
      appended = await this.options.audit.appendAuditEvents(events.map((event, i) => ({ event: event as unknown as StoredAuditEvent, announce: batch[i]?.options.announce === true })))
    } catch (err) {
      // the write may or may not have landed: read the head again before the next append
      this.head = undefined
      throw err
    }
    if (!appended) {
      // The stored head is not where this process left it: only tampering (or a chain id
      // collision) does that — or, with an archive, the archiver forgot this chain after it sat
      // idle past the hot window. Never append on top of it: leave it as evidence for the
      // verifier and continue on a new chain.
      const forgotten = this.options.liveChains !== undefined && !(await this.options.liveChains()).includes(this.chain)
      if (forgotten) this.options.log.info({ chain: this.chain }, 'this process\'s audit chain was archived and forgotten by the store while idle; continuing on a new chain')
      else this.options.log.error({ chain: this.chain, expectedSeq: (events[0]?.seq ?? 1) - 1 }, 'audit chain head moved under this process; continuing on a new chain')
      this.startChain()
      if (retried) throw new StatedError('audit chain could not be appended to')
      return await this.write(batch, true)
    }
    this.head = previous
    this.logged = this.head
    for (const event of events) this.options.log.info({ audit: event }, 'audit')
    return events
  }

  /**
   * Signs the heads of all chains, so that cutting events off a chain's end is detected too.
   * Skipped (undefined) when it would say nothing new: no head moved since the last stored
   * checkpoint, and this process's chain has not moved since its own last one either (this
   * process's log must hold a checkpoint covering its own last events, for offline verification
   * of that file alone). The log is flushed after the checkpoint's line.
   */
  async checkpoint (): Promise<AuditCheckpointRecord | undefined> {
    const chains: AuditCheckpointRecord['chains'] = []
    for (const chain of await (this.options.liveChains ?? (async () => await this.options.audit.auditChains()))()) {
      const head = await this.options.audit.auditChainHead(chain)
      if (head) chains.push({ chain, ...head })
    }
    const [last] = await this.options.audit.auditCheckpoints(-1, -1)
    const own = chains.find((head) => head.chain === this.chain)
    const ownUnmoved = (own === undefined && this.ownCheckpointed === undefined) ||
      (own !== undefined && own.seq === this.ownCheckpointed?.seq && own.hash === this.ownCheckpointed.hash)
    if (ownUnmoved && sameHeads(chains, last?.chains ?? [])) {
      // no event was logged since, but other lines (errors) may have been
      await this.options.flushLog?.()
      return undefined
    }
    const time = new Date(this.now()).toISOString()
    // `writer` names the chain of the log this checkpoint also goes to: offline, that chain must
    // be in the log, so removing all of its events from the file is not mistaken for "none yet"
    const jws = await this.options.signer.sign({ iss: this.options.issuer, iat: Math.floor(Date.parse(time) / 1000), writer: this.chain, chains }, CHECKPOINT_TYP)
    const checkpoint: AuditCheckpointRecord = { time, jws, chains }
    await this.options.audit.putAuditCheckpoint(checkpoint)
    this.ownCheckpointed = own ? { seq: own.seq, hash: own.hash } : undefined
    this.options.log.info({ checkpoint }, 'audit checkpoint')
    // a crash now costs the log at most the lines written after this one
    await this.options.flushLog?.()
    return checkpoint
  }

  startCheckpoints (intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => { this.checkpoint().catch(onError) }, intervalMs)
    this.timer.unref()
  }

  /** Waits for appends in flight, stops the checkpoint timer. */
  async stop (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    while (this.flushing) await this.flushing
  }

  /**
   * Retention: removes events older than `before` from the store (the log file is the archive).
   * Each chain is cut at its newest checkpoint older than `before`, so that the oldest kept
   * checkpoint anchors what remains and verification starts from it.
   */
  async prune (before: Date): Promise<number> {
    const checkpoints = (await this.options.audit.auditCheckpoints()).filter((cp) => Date.parse(cp.time) < before.getTime())
    const upTo: Record<string, number> = {}
    for (const cp of checkpoints) for (const head of cp.chains) upTo[head.chain] = Math.max(upTo[head.chain] ?? 0, head.seq)
    return await this.options.audit.pruneAudit(upTo)
  }

  /**
   * Newest first, through the most selective index the filters allow (a document, a subject,
   * an agency, else all): never a scan of the whole trail. Other filters are applied to the
   * events read; the work per call is bounded, and the cursor resumes where it stopped.
   */
  async search (filters: AuditSearchFilters): Promise<{ events: AuditEvent[], nextCursor?: string }> {
    const index: AuditIndex = filters.documentId
      ? { kind: 'document', value: filters.documentId }
      : filters.subject
        ? { kind: 'subject', value: filters.subject }
        : filters.agency ? { kind: 'agency', value: filters.agency } : { kind: 'all' }
    const fingerprint = this.filterFingerprint(filters)
    let toId = filters.to ? encodeTime(Date.parse(filters.to)) : undefined
    if (filters.cursor) toId = this.openCursor(filters.cursor, fingerprint)
    const fromId = filters.from ? encodeTime(Date.parse(filters.from)) : undefined
    const events: AuditEvent[] = []
    const budget = Math.max(filters.limit * 10, 2000)
    let read = 0
    let last: string | undefined
    let exhausted = false
    // the first page is the size asked for; later ones (other filters left too few) double
    let pageSize = Math.max(filters.limit, 10)
    while (events.length < filters.limit && read < budget) {
      const count = Math.min(500, budget - read, pageSize)
      pageSize *= 2
      const ids = await this.options.audit.auditIndexPage({ index, ...(fromId ? { fromId } : {}), ...(toId ? { toId } : {}), newestFirst: true, count })
      if (ids.length === 0) { exhausted = true; break }
      read += ids.length
      for (const event of await this.options.audit.auditEvents(ids) as unknown as AuditEvent[]) {
        last = event.id
        if (this.matches(event, filters)) events.push(event)
        if (events.length === filters.limit) break
      }
      if (ids.length < count && events.length < filters.limit) { exhausted = true; break }
      toId = last
    }
    const more = !exhausted && last !== undefined
    return { events, ...(more ? { nextCursor: this.makeCursor(last as string, fingerprint) } : {}) }
  }

  /**
   * A subject's access history, newest first: the accesses it may see (store/audit-keys.ts),
   * read from an index that holds nothing else, so a page has `limit` events whenever that many
   * follow and `more` is true only when one more does, whatever is hidden from the subject.
   * Hidden accesses due by `day` (Vietnam) move into that index first. `before` resumes below
   * an event id of an earlier page.
   */
  async history (subject: string, range: { from?: string, to?: string, before?: string, limit: number }, day: string): Promise<{ events: AuditEvent[], more: boolean }> {
    // each hidden access moves once, in bounded steps
    for (let moved = REVEAL_BATCH; moved === REVEAL_BATCH;) moved = await this.options.audit.revealAuditHistory(subject, day, REVEAL_BATCH)
    const toId = range.before ?? (range.to ? encodeTime(Date.parse(range.to)) : undefined)
    const fromId = range.from ? encodeTime(Date.parse(range.from)) : undefined
    const ids = await this.options.audit.auditIndexPage({ index: { kind: 'history', value: subject }, ...(fromId ? { fromId } : {}), ...(toId ? { toId } : {}), newestFirst: true, count: range.limit + 1, asOfDay: day })
    const events = await this.options.audit.auditEvents(ids.slice(0, range.limit)) as unknown as AuditEvent[]
    return { events, more: ids.length > range.limit }
  }

  private matches (event: AuditEvent, f: AuditSearchFilters): boolean {
    return (f.agency === undefined || event.actor === f.agency) &&
      (f.subject === undefined || event.subject === f.subject) &&
      (f.action === undefined || event.action === f.action) &&
      (f.outcome === undefined || event.outcome === f.outcome) &&
      (f.documentId === undefined || (event.documents ?? []).some((d) => d.id === f.documentId))
  }

  /** Oldest first, in pages: memory stays flat whatever the range. */
  async * export (range: { from?: string, to?: string }): AsyncGenerator<AuditEvent> {
    let fromId = range.from ? encodeTime(Date.parse(range.from)) : undefined
    const toId = range.to ? encodeTime(Date.parse(range.to)) : undefined
    let skip: string | undefined
    for (;;) {
      const ids = await this.options.audit.auditIndexPage({ index: { kind: 'all' }, ...(fromId ? { fromId } : {}), ...(toId ? { toId } : {}), newestFirst: false, count: 501 })
      const page = skip !== undefined && ids[0] === skip ? ids.slice(1) : ids
      if (page.length === 0) return
      for (const event of await this.options.audit.auditEvents(page) as unknown as AuditEvent[]) yield event
      if (ids.length < 501) return
      skip = page[page.length - 1]
      fromId = skip
    }
  }

  /**
   * A page of the export: at most `limit` events of the range, oldest first, and a cursor when
   * more follow. The page's ids are read first (small: an id a event), so the cursor is known
   * before the first event is sent; the events themselves are read as they are sent.
   * `onRecord` runs once the cursor is found good, before anything is read: the caller puts the
   * export on record there, and the page holds that event when the range does.
   */
  async exportPage (range: { from?: string, to?: string }, page: { limit: number, cursor?: string }, onRecord?: () => Promise<unknown>): Promise<{ events: AsyncGenerator<AuditEvent>, nextCursor?: string }> {
    const fingerprint = this.fingerprint(['export', range.from, range.to])
    let fromId = range.from ? encodeTime(Date.parse(range.from)) : undefined
    const toId = range.to ? encodeTime(Date.parse(range.to)) : undefined
    // the cursor is the last id sent: the page starts after it
    let after = page.cursor ? this.openCursor(page.cursor, fingerprint) : undefined
    await onRecord?.()
    if (after !== undefined) fromId = after
    const ids: string[] = []
    while (ids.length <= page.limit) {
      const count = Math.min(5000, page.limit + 1 - ids.length + (after !== undefined ? 1 : 0))
      const read = await this.options.audit.auditIndexPage({ index: { kind: 'all' }, ...(fromId ? { fromId } : {}), ...(toId ? { toId } : {}), newestFirst: false, count })
      const fresh = after !== undefined && read[0] === after ? read.slice(1) : read
      ids.push(...fresh)
      if (read.length < count || fresh.length === 0) break
      after = fresh[fresh.length - 1]
      fromId = after
    }
    const more = ids.length > page.limit
    const sent = ids.slice(0, page.limit)
    const audit = this.options.audit
    async function * events (): AsyncGenerator<AuditEvent> {
      for (let i = 0; i < sent.length; i += 500) {
        for (const event of await audit.auditEvents(sent.slice(i, i + 500)) as unknown as AuditEvent[]) yield event
      }
    }
    return { events: events(), ...(more ? { nextCursor: this.makeCursor(sent[sent.length - 1] as string, fingerprint) } : {}) }
  }

  /**
   * What verifying a range reads, and no more: each chain is walked from the newest signed
   * checkpoint made before the range (by more than the clocks' slack, so it pins no event of
   * the range) to the first one made after it (likewise), so that the links into the range and
   * out of it are checked and events cut off at its end are found; with no such end, to the
   * chain's head and the newest checkpoint. A chain the first checkpoint does not list starts at
   * seq 1 — or, cut by retention, at its first kept event, right after the checkpoint that pins
   * the cut. At most `verifyBudget` events a request: past it, `nextCursor` resumes the walk at
   * the chain position reached (chains are walked in id order).
   */
  async rangeWalk (range: { from?: string, to?: string }, cursor?: string): Promise<RangeWalk> {
    const store = this.options.audit
    const budget = this.options.verifyBudget ?? VERIFY_BUDGET
    const fingerprint = this.fingerprint(['verify', range.from, range.to])
    const resumed = cursor ? this.openVerifyCursor(cursor, fingerprint) : undefined
    const total = await store.auditCheckpointCount()
    const at = async (position: number): Promise<AuditCheckpointRecord | undefined> => (await store.auditCheckpoints(position, position))[0]

    let start: { at: number, checkpoint: AuditCheckpointRecord } | undefined
    if (range.from) {
      const before = Date.parse(range.from) - CHECKPOINT_CLOCK_SLACK_MS
      const first = await this.checkpointBisect(before, total)
      // stored in about time order: the newest made early enough is among the few before
      for (let position = first - 1; position >= Math.max(0, first - CHECKPOINT_ORDER_SLACK); position--) {
        const checkpoint = await at(position)
        if (checkpoint && Date.parse(checkpoint.time) < before) { start = { at: position, checkpoint }; break }
      }
    }
    let end: { at: number, checkpoint: AuditCheckpointRecord, pastRange: boolean } | undefined
    if (range.to) {
      const after = Date.parse(range.to) + CHECKPOINT_CLOCK_SLACK_MS
      const first = await this.checkpointBisect(after, total)
      for (let position = first; position < Math.min(total, first + CHECKPOINT_ORDER_SLACK); position++) {
        const checkpoint = await at(position)
        if (checkpoint && Date.parse(checkpoint.time) >= after) { end = { at: position, checkpoint, pastRange: true }; break }
      }
    }
    if (!end && total > (start?.at ?? -1) + 1) {
      const checkpoint = await at(total - 1)
      if (checkpoint) end = { at: total - 1, checkpoint, pastRange: false }
    }

    // where each chain starts and ends
    const starts = new Map<string, { seq: number, hash: string }>()
    const targets = new Map<string, number>()
    const reach = (chain: string, seq: number): void => { targets.set(chain, Math.max(targets.get(chain) ?? 0, seq)) }
    for (const head of start?.checkpoint.chains ?? []) { starts.set(head.chain, { seq: head.seq, hash: head.hash }); reach(head.chain, head.seq) }
    for (const head of end?.checkpoint.chains ?? []) reach(head.chain, head.seq)
    if (!end?.pastRange) {
      // the range reaches the present: every chain to its head
      for (const chain of await store.auditChains()) {
        const head = await store.auditChainHead(chain)
        if (head) reach(chain, head.seq)
      }
    }
    const chains = [...targets.keys()].sort()
    const checkpoints = new Map<number, AuditCheckpointRecord>()
    if (start) checkpoints.set(start.at, start.checkpoint)
    if (end) checkpoints.set(end.at, end.checkpoint)
    for (const chain of chains) {
      if (resumed && chain <= resumed.chain) continue
      const from = starts.get(chain)?.seq ?? 0
      const target = targets.get(chain) as number
      if (from >= target || (await store.auditChainSlice(chain, from + 1, 1)).length) continue
      // retention removed the chain's start: it resumes right after the checkpoint it was cut at
      const kept = await this.firstKeptSeq(chain, from + 1, target)
      if (kept === undefined) continue
      const pin = await this.checkpointPinning(chain, kept - 1, start?.at ?? 0, end?.at ?? total - 1, this.options.signedRetention === true)
      const head = pin?.checkpoint.chains.find((h) => h.chain === chain)
      if (!pin || !head) continue
      checkpoints.set(pin.at, pin.checkpoint)
      starts.set(chain, { seq: head.seq, hash: head.hash })
    }

    const startOf = (chain: string): { seq: number, hash: string } | undefined =>
      resumed?.chain === chain && resumed.seq !== undefined ? { seq: resumed.seq, hash: resumed.hash as string } : starts.get(chain)
    const finished = new Set<string>()
    let stopped: { chain: string, seq?: number, hash?: string } | undefined
    async function * events (): AsyncGenerator<AuditEvent> {
      let read = 0
      /** the read of `count` events from `from` on, started now, within the budget */
      const slice = (chain: string, from: number, target: number): { from: number, count: number, events: Promise<AuditEvent[]> } | undefined => {
        if (from > target || read >= budget) return undefined
        const count = Math.min(500, target - from + 1, budget - read)
        read += count
        const events = store.auditChainSlice(chain, from, count) as unknown as Promise<AuditEvent[]>
        // read ahead: if the walk stops before it is awaited, its failure is nobody's to report
        events.catch(() => {})
        return { from, count, events }
      }
      for (const chain of chains) {
        if (resumed && chain < resumed.chain) continue
        const target = targets.get(chain) as number
        let last = startOf(chain) ?? { seq: 0, hash: GENESIS_HASH }
        // fixed steps, not from the last event found: a gap is read past, and the verifier names
        // it; the next step is read while this one is verified
        let current = slice(chain, last.seq + 1, target)
        if (!current && last.seq < target) { stopped = { chain, ...last }; return }
        while (current) {
          const upcoming = slice(chain, current.from + current.count, target)
          for (const event of await current.events) { yield event; last = { seq: event.seq, hash: event.hash } }
          if (!upcoming && current.from + current.count <= target) { stopped = { chain, ...last }; return }
          current = upcoming
        }
        finished.add(chain)
      }
    }
    return {
      checkpoints: [...checkpoints.entries()].sort(([a], [b]) => a - b).map(([, checkpoint]) => checkpoint),
      startOf,
      events: events(),
      finished: (chain) => finished.has(chain),
      retentionStartsOnly: this.options.signedRetention === true,
      nextCursor: (checked) => stopped ? this.makeCursor(JSON.stringify([stopped.chain, stopped.seq, stopped.hash, checked]), fingerprint) : undefined,
      checkedBefore: resumed?.checked ?? 0
    }
  }

  private openVerifyCursor (cursor: string, fingerprint: string): { chain: string, seq?: number, hash?: string, checked: number } {
    const [chain, seq, hash, checked] = JSON.parse(this.openCursor(cursor, fingerprint)) as [string, number | undefined, string | undefined, number]
    return { chain, ...(seq !== undefined && hash !== undefined ? { seq, hash } : {}), checked }
  }

  /** the stored checkpoint, between two positions, that pins `chain` at `seq`: bisected on that chain's seq, then looked for nearby */
  private async checkpointPinning (chain: string, seq: number, low: number, high: number, retentionOnly = false): Promise<{ at: number, checkpoint: AuditCheckpointRecord } | undefined> {
    const read = async (position: number): Promise<AuditCheckpointRecord | undefined> => (await this.options.audit.auditCheckpoints(position, position))[0]
    const seqAt = (checkpoint: AuditCheckpointRecord | undefined): number => checkpoint?.chains.find((h) => h.chain === chain)?.seq ?? 0
    let lo = Math.max(0, low)
    let hi = Math.max(lo, high)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (seqAt(await read(mid)) < seq) lo = mid + 1
      else hi = mid
    }
    for (let position = Math.max(0, lo - CHECKPOINT_ORDER_SLACK); position <= lo + CHECKPOINT_ORDER_SLACK; position++) {
      const checkpoint = await read(position)
      if (!checkpoint) break
      if (seqAt(checkpoint) === seq && (!retentionOnly || isRetentionCheckpoint(checkpoint))) return { at: position, checkpoint }
    }
    return undefined
  }

  /** The events of every chain, each in seq order, for verification. */
  async * chainEvents (): AsyncGenerator<AuditEvent> {
    for (const chain of await this.options.audit.auditChains()) {
      const head = await this.options.audit.auditChainHead(chain)
      if (!head) continue
      const start = await this.firstKeptSeq(chain, 1, head.seq) ?? head.seq
      for (let seq = start; seq <= head.seq; seq += 500) {
        const slice = await this.options.audit.auditChainSlice(chain, seq, Math.min(500, head.seq - seq + 1))
        for (const event of slice as unknown as AuditEvent[]) yield event
      }
    }
  }

  /** After retention the chain starts past 1: at the oldest checkpoint's seq + 1, or later. The first seq in [low, high] still stored, if any. */
  private async firstKeptSeq (chain: string, low: number, high: number): Promise<number | undefined> {
    if ((await this.options.audit.auditChainSlice(chain, low, 1)).length) return low
    while (low < high) {
      const mid = (low + high) >>> 1
      if ((await this.options.audit.auditChainSlice(chain, mid, 1)).length) high = mid
      else low = mid + 1
    }
    return (await this.options.audit.auditChainSlice(chain, low, 1)).length ? low : undefined
  }

  /** Every signed checkpoint, in the order stored: for verifying the whole trail (a range is paged, `checkpointPage`). */
  async checkpoints (): Promise<AuditCheckpointRecord[]> {
    return await this.options.audit.auditCheckpoints()
  }

  /**
   * A page of the checkpoints made in a range (`from` inclusive, `to` exclusive), in the order they
   * were stored, at most `limit`, with a cursor for the next page when there is more. It reads
   * only about a page: the start is found by bisecting the stored list on time, a few places
   * early since several processes' clocks interleave, and the reading stops a while past `to`.
   */
  async checkpointPage (query: { from?: string, to?: string, limit: number, cursor?: string }): Promise<{ checkpoints: AuditCheckpointRecord[], nextCursor?: string }> {
    const from = query.from ? Date.parse(query.from) : -Infinity
    const to = query.to ? Date.parse(query.to) : Infinity
    const fingerprint = this.fingerprint(['checkpoints', query.from, query.to])
    const store = this.options.audit
    const total = await store.auditCheckpointCount()
    let index = query.cursor ? Number(this.openCursor(query.cursor, fingerprint)) : await this.checkpointAtOrAfter(from, total)
    const found: Array<{ at: number, checkpoint: AuditCheckpointRecord }> = []
    scan: while (index < total && found.length <= query.limit) {
      const chunk = await store.auditCheckpoints(index, Math.min(total, index + query.limit + 1) - 1)
      if (!chunk.length) break
      for (const checkpoint of chunk) {
        const at = index++
        const time = Date.parse(checkpoint.time)
        if (time >= to + CHECKPOINT_CLOCK_SLACK_MS) break scan
        if (time >= from && time < to) found.push({ at, checkpoint })
        if (found.length > query.limit) break scan
      }
    }
    const next = found.length > query.limit ? found.pop() : undefined
    return { checkpoints: found.map((f) => f.checkpoint), ...(next ? { nextCursor: this.makeCursor(String(next.at), fingerprint) } : {}) }
  }

  /** the position of the first stored checkpoint made at or after `from`, less a few for clock skew */
  private async checkpointAtOrAfter (from: number, total: number): Promise<number> {
    if (from === -Infinity) return 0
    return Math.max(0, await this.checkpointBisect(from, total) - CHECKPOINT_ORDER_SLACK)
  }

  /** bisects the stored checkpoints (in about time order) for the first made at or after `time` */
  private async checkpointBisect (time: number, total: number): Promise<number> {
    let low = 0
    let high = total
    while (low < high) {
      const mid = (low + high) >>> 1
      const [checkpoint] = await this.options.audit.auditCheckpoints(mid, mid)
      if (checkpoint && Date.parse(checkpoint.time) < time) low = mid + 1
      else high = mid
    }
    return low
  }

  private filterFingerprint (f: AuditSearchFilters): string {
    return this.fingerprint([f.agency, f.subject, f.action, f.outcome, f.documentId, f.from, f.to])
  }

  /** what binds a cursor to the query it was issued for */
  private fingerprint (query: unknown[]): string {
    return createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16)
  }

  private makeCursor (id: string, fingerprint: string): string {
    const payload = Buffer.from(JSON.stringify({ id, f: fingerprint })).toString('base64url')
    return `${payload}.${this.mac(payload)}`
  }

  private openCursor (cursor: string, fingerprint: string): string {
    const [payload, mac] = cursor.split('.')
    const invalid = new ProblemError(400, 'invalid_cursor', 'the cursor is not one this gateway issued for these filters')
    if (!payload || !mac) throw invalid
    const expected = Buffer.from(this.mac(payload))
    const given = Buffer.from(mac)
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalid
    const { id, f } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { id: string, f: string }
    if (f !== fingerprint) throw invalid
    return id
  }

  private mac (payload: string): string {
    return createHmac('sha256', this.options.cursorKey).update(payload).digest('base64url').slice(0, 22)
  }
}
