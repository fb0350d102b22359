/**
 * What the in-memory stores share: records kept serialized, as Redis keeps them (callers never
 * share objects with the store), and entries that expire, as keys with a TTL do.
 */

/** Records listed in key order, each a JSON copy. */
export class RecordTable<T> {
  private readonly records = new Map<string, string>()

  get (key: string): T | undefined {
    const json = this.records.get(key)
    return json === undefined ? undefined : JSON.parse(json) as T
  }

  list (): T[] {
    return [...this.records.keys()].sort().map((key) => JSON.parse(this.records.get(key) as string) as T)
  }

  put (key: string, record: T): { created: boolean } {
    const created = !this.records.has(key)
    this.records.set(key, JSON.stringify(record))
    return { created }
  }
}

/** Marks that hold until a time (epoch ms), swept now and then so the map stays as small as the live ones. */
export class ExpiringMarks {
  private readonly until = new Map<string, number>()
  private lastSweep = 0

  /** whether `key` is marked now */
  has (key: string, now = Date.now()): boolean {
    return (this.until.get(key) ?? 0) > now
  }

  /** marks `key` for ttlMs (again) */
  set (key: string, ttlMs: number, now = Date.now()): void {
    this.sweep(now)
    this.until.set(key, now + ttlMs)
  }

  /** marks `key` unless it is marked already: true when this call marked it */
  claim (key: string, ttlMs: number, now = Date.now()): boolean {
    if (this.has(key, now)) return false
    this.set(key, ttlMs, now)
    return true
  }

  private sweep (now: number): void {
    if (now - this.lastSweep < 10_000) return
    this.lastSweep = now
    for (const [key, until] of this.until) if (until <= now) this.until.delete(key)
  }
}
