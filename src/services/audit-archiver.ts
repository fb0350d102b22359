import { randomUUID } from 'node:crypto'
import { decodeTime } from 'ulid'
import type { Logger } from 'pino'
import type { ArchivePartition, AuditArchive } from '../store/audit-archive.js'
import type { AuditCheckpointRecord, AuditStore, StoredAuditEvent } from '../store/index.js'
import type { LeaseStore } from '../store/leases.js'
import { CHECKPOINT_TYP, eventHash, GENESIS_HASH } from './audit.js'
import type { AuditEvent, AuditSigner } from './audit.js'
import { StatedError } from '../lib/error-description.js'

/**
 * Moves the audit trail's old events from the store (Redis) to the archive (PostgreSQL), one
 * process at a time (a store lease), in chain order:
 *
 * - The cut is the newest signed checkpoint made before the hot window (AUDIT_HOT_DAYS): each
 *   chain is archived up to the seq that checkpoint pins, so the archive always ends where a
 *   signature vouches for it.
 * - Every event copied is checked: its hash recomputed, its link to the one before. A break stops
 *   the archiver loudly (an error log, `status().broken`) and nothing past it moves: a tampered
 *   trail is never laundered into the archive.
 * - An event leaves the store only after the PostgreSQL transaction holding it has committed,
 *   and the archive moves each chain's archived head in that transaction, on the condition that
 *   it is where this archiver found it: a crash between the two is resumed where the archive says,
 *   without a gap or a duplicate (the event id is the primary key too).
 * - Checkpoints older than the cut go to the archive; the cut itself stays in the store, where it
 *   anchors the hot tier.
 * - A chain whose events are all archived and whose head has not moved since the cut (its
 *   process is gone) is forgotten by the store, so checkpoints list the live chains only.
 *
 * Retention (AUDIT_RETENTION_DAYS) drops whole months of the archive, after a final signed
 * checkpoint that pins, for every chain, its last dropped event: verification starts there.
 */
export interface AuditArchiverOptions {
  hot: AuditStore
  archive: AuditArchive
  leases: Pick<LeaseStore, 'holdLease'>
  log: Pick<Logger, 'info' | 'warn' | 'error'>
  /** the store keeps this many days; older events are archived */
  hotDays: number
  /** the archive keeps this many days (0: forever) */
  retentionDays: number
  /** apply the archive's pending schema migrations before archiving (else a schema behind stops it) */
  migrate?: boolean
  /** signs the final checkpoint before a retention drop */
  signer: AuditSigner
  issuer: string
  /** events one PostgreSQL transaction takes */
  batchSize?: number
  /**
   * how long the archiver's lease lasts unless renewed (it is renewed at every batch and let go
   * after every pass): how long archiving waits after a process died holding it. Default 5 min.
   */
  leaseMs?: number
  now?: () => number
}

export interface ArchiveRunResult {
  /** events moved (archived, then removed from the store) */
  moved: number
  /** checkpoints archived */
  checkpoints: number
  /** idle chains forgotten by the store */
  forgotten: number
  /** another process holds the archiver's lease: nothing was done */
  busy?: boolean
  /** the cut: the checkpoint the chains were archived up to */
  cut?: string
}

export interface ArchiveChainStatus {
  chain: string
  /** the store's head (undefined: only the archive still holds the chain) */
  hot?: number
  /** the archive's head */
  archived?: number
  /** events of the chain still in the store */
  lag: number
}

export interface ArchiveStatus {
  hotDays: number
  retentionDays: number
  /** events before this instant are due for the archive */
  cutoff: string
  /** the newest event archived (its id, and its time) */
  archivedUpTo?: { id: string, time: string }
  schema: { current: number, latest: number }
  chains: ArchiveChainStatus[]
  partitions: ArchivePartition[]
  /** the last run of this process */
  lastRun?: { at: string, result?: ArchiveRunResult, error?: string }
  /** a break found in a chain: archiving is stopped until it is looked into */
  broken?: { chain: string, seq: number, reason: string }
}

const LEASE = 'audit-archiver'
const LEASE_MS = 5 * 60_000
const DAY_MS = 86_400_000

/** A chain that does not verify: the archiver stops at it. */
export class AuditChainBreakError extends StatedError {
  constructor (readonly chain: string, readonly seq: number, readonly reason: string) {
    super(`audit chain ${chain} breaks at #${seq}: ${reason}; archiving stopped, nothing past it moved`)
    this.name = 'AuditChainBreakError'
  }
}

export class AuditArchiver {
  private readonly owner = randomUUID()
  private timer: NodeJS.Timeout | undefined
  private running: Promise<ArchiveRunResult> | undefined
  private lastRun: ArchiveStatus['lastRun']
  private broken: ArchiveStatus['broken']

  constructor (private readonly options: AuditArchiverOptions) {}

  private now (): number { return (this.options.now ?? Date.now)() }
  private get batchSize (): number { return this.options.batchSize ?? 5000 }

  /** events before this are due for the archive */
  cutoff (): Date { return new Date(this.now() - this.options.hotDays * DAY_MS) }

  /**
   * One archiving pass (and retention, when set): resolves with what it moved. `progress` hears
   * of every batch (events moved so far, events due in all).
   */
  async run (progress?: (moved: number, due: number) => void): Promise<ArchiveRunResult> {
    if (this.running) return await this.running
    this.running = this.pass(progress).then((result) => {
      this.lastRun = { at: new Date(this.now()).toISOString(), result }
      return result
    }, (err: unknown) => {
      this.lastRun = { at: new Date(this.now()).toISOString(), error: (err as Error).message }
      throw err
    }).finally(() => { this.running = undefined })
    return await this.running
  }

  private async hold (): Promise<boolean> {
    return await this.options.leases.holdLease(LEASE, this.owner, this.options.leaseMs ?? LEASE_MS)
  }

  private async pass (progress?: (moved: number, due: number) => void): Promise<ArchiveRunResult> {
    if (!await this.hold()) return { moved: 0, checkpoints: 0, forgotten: 0, busy: true }
    try {
      return await this.archivePass(progress)
    } finally {
      // let go at once (a lease of a millisecond), so that `audit archive run` need not wait for it
      await this.options.leases.holdLease(LEASE, this.owner, 1).catch(() => undefined)
    }
  }

  private async archivePass (progress?: (moved: number, due: number) => void): Promise<ArchiveRunResult> {
    const { archive } = this.options
    await this.checkSchema()
    const now = new Date(this.now())
    await archive.ensurePartitions(now, new Date(now.getTime() + 62 * DAY_MS))
    const result: ArchiveRunResult = { moved: 0, checkpoints: 0, forgotten: 0 }
    const cut = await this.cutCheckpoint()
    if (cut) {
      result.cut = cut.checkpoint.time
      const heads = await archive.archivedHeads()
      const due = cut.checkpoint.chains.reduce((sum, head) => sum + Math.max(0, head.seq - (heads.get(head.chain)?.seq ?? 0)), 0)
      for (const head of cut.checkpoint.chains) {
        const moved = await this.archiveChain(head.chain, head.seq, heads.get(head.chain), (n) => {
          result.moved += n
          progress?.(result.moved, due)
        })
        if (moved === undefined) return result
      }
      result.checkpoints = await this.archiveCheckpoints(cut.position)
      result.forgotten = await this.forgetIdleChains()
    }
    if (this.options.retentionDays > 0) await this.retention()
    if (result.moved > 0) this.options.log.info({ moved: result.moved, checkpoints: result.checkpoints, cut: result.cut }, 'audit events archived')
    return result
  }

  private async checkSchema (): Promise<void> {
    const archive = this.options.archive
    const { current, latest } = await archive.schemaVersion()
    if (current > latest) throw new StatedError(`the audit archive's schema is at version ${current}, newer than this gateway knows (${latest}): upgrade the gateway`)
    if (current === latest) return
    if (!this.options.migrate) throw new StatedError(`the audit archive's schema is at version ${current}, this gateway needs ${latest}: run \`reuse-gateway audit archive migrate\``)
    await archive.migrate()
  }

  /** the newest checkpoint in the store made before the cutoff, and its position there */
  private async cutCheckpoint (): Promise<{ checkpoint: AuditCheckpointRecord, position: number } | undefined> {
    const hot = this.options.hot
    const cutoff = this.cutoff().getTime()
    let low = 0
    let high = await hot.auditCheckpointCount()
    // the first position made at or after the cutoff (stored in about time order)
    while (low < high) {
      const mid = (low + high) >>> 1
      const [checkpoint] = await hot.auditCheckpoints(mid, mid)
      if (checkpoint && Date.parse(checkpoint.time) < cutoff) low = mid + 1
      else high = mid
    }
    if (low === 0) return undefined
    const [checkpoint] = await hot.auditCheckpoints(low - 1, low - 1)
    return checkpoint ? { checkpoint, position: low - 1 } : undefined
  }

  /**
   * Archives one chain up to `upTo`, batch by batch, each checked, committed, then removed from
   * the store. Returns the events moved, or undefined when another archiver moved the chain
   * (the pass stops: it is that one's turn).
   *
   * Three stages overlap, each on its own server: while PostgreSQL commits a batch, the next one
   * is read from Redis and checked, and the one before leaves Redis. The order that matters
   * holds: a batch leaves Redis only after its commit and the mark that sends readers to the
   * archive for it; commits go in chain order.
   */
  private async archiveChain (chain: string, upTo: number, archived: { seq: number, hash: string } | undefined, moved: (n: number) => void): Promise<number | undefined> {
    const { hot, archive } = this.options
    let previous = archived ?? await this.startOf(chain)
    // a chain new to the archive whose start retention removed from the store starts at the pinned position
    let startsAfter = archived === undefined && previous.seq > 0 ? previous : undefined
    // a crash after a commit left archived events in the store: they go now
    if (previous.seq > 0) await hot.pruneAudit({ [chain]: Math.min(previous.seq, upTo) })
    const readChecked = async (after: { seq: number, hash: string }): Promise<StoredAuditEvent[]> => {
      const batch = await hot.auditChainSlice(chain, after.seq + 1, Math.min(this.batchSize, upTo - after.seq))
      if (batch.length === 0) throw this.halt(new AuditChainBreakError(chain, after.seq + 1, 'the event is missing from the store'))
      this.check(chain, after, batch)
      return batch
    }
    let total = 0
    let removing: Promise<unknown> = Promise.resolve()
    let next = previous.seq < upTo ? readChecked(previous) : undefined
    try {
      while (next) {
        const batch = await next
        const last = batch[batch.length - 1] as StoredAuditEvent
        const after = { seq: last.seq, hash: last.hash }
        next = after.seq < upTo ? readChecked(after) : undefined
        // a rejection is awaited where it matters (below); until then it must not go unhandled
        next?.catch(() => undefined)
        if (!await this.hold()) return undefined
        if (!await archive.archiveEvents(chain, previous.seq, batch, [], startsAfter)) {
          this.options.log.warn({ chain }, 'another process archived this audit chain meanwhile; leaving it the rest')
          return undefined
        }
        await removing
        // searches look in the archive for everything up to the mark before it leaves the store
        await hot.setAuditArchiveMark(batch.reduce((max, event) => event.id > max ? event.id : max, batch[0]?.id as string))
        removing = hot.pruneAudit({ [chain]: last.seq }, batch)
        removing.catch(() => undefined)
        previous = after
        startsAfter = undefined
        total += batch.length
        moved(batch.length)
      }
    } finally {
      await removing
    }
    return total
  }

  /**
   * Where a chain the archive does not know yet starts: seq 1 on the genesis hash, or — when
   * retention without an archive cut its start off earlier — right after a signed checkpoint
   * that pins the event before its first kept one.
   */
  private async startOf (chain: string): Promise<{ seq: number, hash: string }> {
    const hot = this.options.hot
    const head = await hot.auditChainHead(chain)
    if (!head) throw this.halt(new AuditChainBreakError(chain, 1, 'the chain is not in the store'))
    // retention removes a chain's oldest events: the kept ones are a suffix, bisected
    let low = 1
    let high = head.seq
    while (low < high) {
      const mid = (low + high) >>> 1
      if ((await hot.auditChainSlice(chain, mid, 1)).length) high = mid
      else low = mid + 1
    }
    if (low === 1) return { seq: 0, hash: GENESIS_HASH }
    const pinned = await this.pinOf(chain, low - 1)
    if (!pinned) throw this.halt(new AuditChainBreakError(chain, low, `events #1..${low - 1} are gone and no signed checkpoint vouches for #${low - 1}`))
    // in an archived trail, a chain starts past seq 1 only after a retention checkpoint: the cut
    // the store made before there was an archive is signed as one, at the time of the checkpoint it was cut at
    await this.signRetention(pinned.time, [{ chain, seq: low - 1, hash: pinned.hash }])
    return { seq: low - 1, hash: pinned.hash }
  }

  /** signs and archives a retention checkpoint: `chains` pinned where what is kept of them starts, `time` the first instant kept */
  private async signRetention (time: string, chains: Array<{ chain: string, seq: number, hash: string }>): Promise<void> {
    const jws = await this.options.signer.sign({ iss: this.options.issuer, iat: Math.floor(this.now() / 1000), retention: { before: time }, chains }, CHECKPOINT_TYP)
    await this.options.archive.archiveCheckpoints([{ time, jws, chains }])
  }

  /** the hash a stored checkpoint pins for a chain position, and that checkpoint's time */
  private async pinOf (chain: string, seq: number): Promise<{ hash: string, time: string } | undefined> {
    for (const checkpoint of await this.options.hot.auditCheckpoints()) {
      const head = checkpoint.chains.find((c) => c.chain === chain && c.seq === seq)
      if (head) return { hash: head.hash, time: checkpoint.time }
    }
    return undefined
  }

  /** every event of a batch: its place, its link and its own hash */
  private check (chain: string, previous: { seq: number, hash: string }, batch: StoredAuditEvent[]): void {
    let before = previous
    for (const event of batch) {
      if (event.chain !== chain || event.seq !== before.seq + 1) throw this.halt(new AuditChainBreakError(chain, before.seq + 1, `the store has #${event.seq} where #${before.seq + 1} belongs`))
      if (event.prevHash !== before.hash) throw this.halt(new AuditChainBreakError(chain, event.seq, 'it does not link to the event before it'))
      if (eventHash(event as unknown as AuditEvent) !== event.hash) throw this.halt(new AuditChainBreakError(chain, event.seq, 'its content does not match its hash'))
      before = { seq: event.seq, hash: event.hash }
    }
  }

  private halt (err: AuditChainBreakError): AuditChainBreakError {
    this.broken = { chain: err.chain, seq: err.seq, reason: err.reason }
    this.options.log.error({ chain: err.chain, seq: err.seq, reason: err.reason }, 'audit chain break found while archiving; archiving stopped')
    return err
  }

  /** the store's checkpoints before the cut go to the archive (the cut stays: it anchors the store) */
  private async archiveCheckpoints (cutPosition: number): Promise<number> {
    const { hot, archive } = this.options
    if (cutPosition === 0 || await hot.auditArchiveMark() === undefined) return 0
    let done = 0
    while (done < cutPosition) {
      const page = await hot.auditCheckpoints(0, Math.min(cutPosition - done, 1000) - 1)
      if (page.length === 0) break
      await archive.archiveCheckpoints(page)
      await hot.pruneAuditCheckpoints(page.length)
      done += page.length
    }
    return done
  }

  /** chains all archived whose head did not move: their process is gone */
  private async forgetIdleChains (): Promise<number> {
    const { hot, archive } = this.options
    const archived = await archive.archivedHeads()
    let forgotten = 0
    for (const chain of await hot.auditChains()) {
      const head = await hot.auditChainHead(chain)
      const done = archived.get(chain)
      if (head && done && head.seq === done.seq && head.hash === done.hash && await hot.forgetAuditChain(chain, head)) forgotten++
    }
    return forgotten
  }

  /** drops the archive's months past the retention period, after a signed checkpoint pinning where each chain resumes */
  private async retention (): Promise<void> {
    const archive = this.options.archive
    const before = new Date(this.now() - this.options.retentionDays * DAY_MS)
    const droppable = (await archive.partitions()).filter((p) => Date.parse(p.to) <= before.getTime())
    if (droppable.length === 0) return
    const boundary = droppable.reduce((max, p) => Date.parse(p.to) > max ? Date.parse(p.to) : max, 0)
    const chains = await archive.headsBefore(new Date(boundary))
    if (chains.length) await this.signRetention(new Date(boundary).toISOString(), chains)
    const dropped = await archive.dropPartitionsBefore(new Date(boundary))
    this.options.log.info({ dropped, before: new Date(boundary).toISOString() }, 'audit archive months past retention dropped')
  }

  async status (): Promise<ArchiveStatus> {
    const { hot, archive } = this.options
    const [mark, schema, archivedHeads, partitions, live] = await Promise.all([
      hot.auditArchiveMark(), archive.schemaVersion(), archive.archivedHeads(), archive.partitions(), hot.auditChains()
    ])
    const chains: ArchiveChainStatus[] = []
    for (const chain of [...new Set([...live, ...archivedHeads.keys()])].sort()) {
      const head = await hot.auditChainHead(chain)
      const archived = archivedHeads.get(chain)?.seq
      chains.push({ chain, ...(head ? { hot: head.seq } : {}), ...(archived !== undefined ? { archived } : {}), lag: head ? head.seq - (archived ?? 0) : 0 })
    }
    return {
      hotDays: this.options.hotDays,
      retentionDays: this.options.retentionDays,
      cutoff: this.cutoff().toISOString(),
      ...(mark ? { archivedUpTo: { id: mark, time: new Date(decodeTime(mark)).toISOString() } } : {}),
      schema,
      chains,
      partitions,
      ...(this.lastRun ? { lastRun: this.lastRun } : {}),
      ...(this.broken ? { broken: this.broken } : {})
    }
  }

  /** archives every `intervalMs` (errors are logged; PostgreSQL down only pauses it) */
  start (intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => { if (!this.broken) this.run().catch(onError) }, intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    if (this.running) await this.running.catch(() => undefined)
  }
}
