import type { AgencyRecord, Persistence, SigningKeySetRecord, Store } from './store.js'

/**
 * The embedded store: everything in this process's memory, gone when it stops. It exists so
 * that `npm start` works with nothing installed; the server refuses it in production.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  private readonly agencies = new Map<string, string>()
  private readonly claims = new Map<string, number>()
  private signingKeys: SigningKeySetRecord | undefined
  private lastSweep = 0

  async ping (): Promise<void> {}

  async persistence (): Promise<Persistence> {
    return { aof: false, rdb: false }
  }

  // Records are kept serialized, as Redis keeps them: callers never share objects with the store.
  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    const json = this.agencies.get(code)
    return json === undefined ? undefined : JSON.parse(json)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    return [...this.agencies.keys()].sort().map((code) => JSON.parse(this.agencies.get(code) as string))
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    const created = !this.agencies.has(agency.code)
    this.agencies.set(agency.code, JSON.stringify(agency))
    return { created }
  }

  async claimOnce (namespace: string, id: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    this.sweep(now)
    const key = `${namespace}\u0000${id}`
    const until = this.claims.get(key)
    if (until !== undefined && until > now) return false
    this.claims.set(key, now + ttlMs)
    return true
  }

  /** drops expired claims now and then, so the map stays as small as the live ones */
  private sweep (now: number): void {
    if (now - this.lastSweep < 10_000) return
    this.lastSweep = now
    for (const [key, until] of this.claims) if (until <= now) this.claims.delete(key)
  }

  async getSigningKeys (): Promise<SigningKeySetRecord | undefined> {
    return this.signingKeys === undefined ? undefined : structuredClone(this.signingKeys)
  }

  async putSigningKeys (keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean> {
    if ((this.signingKeys?.revision ?? 0) !== expectedRevision) return false
    this.signingKeys = { revision: expectedRevision + 1, keys: structuredClone(keys) }
    return true
  }

  async close (): Promise<void> {}
}
