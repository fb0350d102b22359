import type { AuditEvent, AuditInput } from './audit.js'

/**
 * The audit record of refused requests, kept meaningful under a flood and bounded in size.
 *
 * Refusals are tallied per key (the caller, the client network's keyed hash, the action and the
 * reason) over an interval: the first refusal of an interval is recorded on its own, as any
 * event; the ones after it are only counted, and when the interval is over a single event
 * records them all: `detail.count` refusals (the first included, `detail.firstEvent`) between
 * `detail.from` and `detail.to`, `detail.limited` of them answered 429. So what a client costs
 * the store is a couple of events per key and interval, however fast it is refused, while an
 * auditor still reads "this address was refused Y times for Z in T".
 *
 * Tallies live in this process: each gateway process records its own. They are written when
 * the interval is over (by a sweep every interval, or sooner when the key is refused again),
 * when the table is full (the oldest first) and at shutdown. A crash loses the counts of the
 * current interval: a refusal is nothing the gateway acknowledged as kept, and the first
 * refusal of each interval is already on record, so the loss is bounded and the fact is not.
 */
export interface RefusalLedgerOptions {
  /** appends one audit event (AuditService.record); rejects when the store cannot take it */
  record: (input: AuditInput) => Promise<AuditEvent>
  intervalMs: number
  /** tallies kept at most; past it the oldest is written out early */
  maxKeys?: number
  /** a summary that could not be written (the store is down): logged, then dropped */
  onError: (err: unknown) => void
}

export interface Refusal extends AuditInput {
  detail: { code: string } & Record<string, unknown>
}

interface Tally {
  refusal: Refusal
  /** where the summary says the refusals came from (for IPv6, the /64) */
  clientNetwork: string
  from: number
  to: number
  count: number
  limited: number
  firstEvent?: string
}

const MAX_KEYS = 10_000

export class RefusalLedger {
  private readonly tallies = new Map<string, Tally>()
  private readonly writing = new Set<Promise<unknown>>()
  private readonly maxKeys: number
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly options: RefusalLedgerOptions) {
    this.maxKeys = options.maxKeys ?? MAX_KEYS
  }

  /**
   * Puts one refusal on record: on its own if it is its key's first in the interval (resolves
   * once written, rejects if the store cannot take it, like any audit event), else in the tally.
   */
  async refused (key: string, refusal: Refusal, options: { clientNetwork: string, limited: boolean }): Promise<void> {
    const now = Date.now()
    let tally = this.tallies.get(key)
    if (tally && now - tally.from >= this.options.intervalMs) {
      this.close(key, tally)
      tally = undefined
    }
    if (tally) {
      tally.count++
      tally.to = now
      if (options.limited) tally.limited++
      return
    }
    // a flood from many addresses: the oldest tally is written out rather than memory growing
    if (this.tallies.size >= this.maxKeys) {
      const [oldestKey, oldest] = this.tallies.entries().next().value as [string, Tally]
      this.close(oldestKey, oldest)
    }
    const opened: Tally = { refusal, clientNetwork: options.clientNetwork, from: now, to: now, count: 1, limited: options.limited ? 1 : 0 }
    this.tallies.set(key, opened)
    try {
      const event = await this.options.record(options.limited ? { ...refusal, detail: { ...refusal.detail, limited: true } } : refusal)
      opened.firstEvent = event.id
    } catch (err) {
      // not on record: the next refusal of this key tries again on its own
      if (this.tallies.get(key) === opened) this.tallies.delete(key)
      throw err
    }
  }

  /** Writes out every tally whose interval is over, every interval. */
  start (): void {
    this.timer = setInterval(() => {
      const now = Date.now()
      for (const [key, tally] of this.tallies) {
        if (now - tally.from >= this.options.intervalMs) this.close(key, tally)
      }
    }, this.options.intervalMs)
    this.timer.unref()
  }

  /** Writes out every tally, the current interval's too, and waits for the writes. */
  async flush (): Promise<void> {
    for (const [key, tally] of this.tallies) this.close(key, tally)
    while (this.writing.size > 0) await Promise.allSettled([...this.writing])
  }

  /** Shutdown: nothing tallied is left unwritten (what a crash would lose: see above). */
  async stop (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.flush()
  }

  private close (key: string, tally: Tally): void {
    this.tallies.delete(key)
    // a lone refusal is already on record as it is
    if (tally.count < 2) return
    const { actor, action, outcome, detail } = tally.refusal
    const summary: AuditInput = {
      actor,
      action,
      outcome,
      clientAddress: tally.clientNetwork,
      detail: {
        code: detail.code,
        count: tally.count,
        limited: tally.limited,
        from: new Date(tally.from).toISOString(),
        to: new Date(tally.to).toISOString(),
        ...(tally.firstEvent ? { firstEvent: tally.firstEvent } : {})
      }
    }
    const write = this.options.record(summary).catch(this.options.onError)
    this.writing.add(write)
    void write.finally(() => this.writing.delete(write))
  }
}
