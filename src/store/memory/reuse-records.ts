/** What reuse leaves behind, in memory (the embedded store): reuse records, withdrawn consents, download grants, counters. */
import type { DownloadGrant, ReuseRecord, ReuseRecordStore } from '../reuse-records.js'
import { ExpiringMarks } from './records.js'

export class MemoryReuseRecordStore implements ReuseRecordStore {
  private readonly reuses = new Map<string, string[]>()
  private readonly counters = new Map<string, Map<string, number>>()
  private readonly revokedConsents = new ExpiringMarks()
  private readonly downloads = new Map<string, { json: string, until: number }>()

  async recordReuse (subjectHash: string, documentId: string, reuse: ReuseRecord): Promise<void> {
    const key = `${subjectHash}/${documentId}`
    const list = this.reuses.get(key) ?? []
    list.push(JSON.stringify(reuse))
    this.reuses.set(key, list)
  }

  async reusesOf (subjectHash: string, documentId: string): Promise<ReuseRecord[]> {
    return (this.reuses.get(`${subjectHash}/${documentId}`) ?? []).map((json) => JSON.parse(json))
  }

  async addReuseCounts (day: string, increments: Record<string, number>): Promise<void> {
    const counts = this.counters.get(day) ?? new Map<string, number>()
    for (const [field, n] of Object.entries(increments)) counts.set(field, (counts.get(field) ?? 0) + n)
    this.counters.set(day, counts)
  }

  async reuseCounts (days: string[]): Promise<Record<string, number>> {
    const sum: Record<string, number> = {}
    for (const day of days) for (const [field, n] of this.counters.get(day) ?? []) sum[field] = (sum[field] ?? 0) + n
    return sum
  }

  async revokeConsent (jti: string, ttlMs: number): Promise<void> {
    this.revokedConsents.set(jti, ttlMs)
  }

  async consentRevoked (jti: string): Promise<boolean> {
    return this.revokedConsents.has(jti)
  }

  async putDownloadGrant (token: string, grant: DownloadGrant, ttlMs: number): Promise<void> {
    this.downloads.set(token, { json: JSON.stringify(grant), until: Date.now() + ttlMs })
  }

  async peekDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    const entry = this.downloads.get(token)
    if (!entry || entry.until <= Date.now()) return undefined
    return JSON.parse(entry.json)
  }

  async takeDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    // read and delete with no await between: concurrent takers cannot both get it
    const entry = this.downloads.get(token)
    this.downloads.delete(token)
    if (!entry || entry.until <= Date.now()) return undefined
    return JSON.parse(entry.json)
  }
}
