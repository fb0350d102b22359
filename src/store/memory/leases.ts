/** Leases and claim-once markers in memory (the embedded store): one process, so "across processes" is trivially true. */
import type { LeaseStore } from '../leases.js'
import { ExpiringMarks } from './records.js'

export class MemoryLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, { owner: string, until: number }>()
  private readonly claims = new ExpiringMarks()

  async holdLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const held = this.leases.get(name)
    if (held && held.owner !== owner && held.until > now) return false
    this.leases.set(name, { owner, until: now + ttlMs })
    return true
  }

  async claimOnce (namespace: string, id: string, ttlMs: number): Promise<boolean> {
    return this.claims.claim(`${namespace}\u0000${id}`, ttlMs)
  }
}
