/** Agencies in memory (the embedded store). */
import type { AgencyRecord, AgencyStore } from '../agencies.js'
import { RecordTable } from './records.js'

export class MemoryAgencyStore implements AgencyStore {
  private readonly agencies = new RecordTable<AgencyRecord>()
  private readonly keysGenerations = new Map<string, number>()
  private revision = 0

  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    return this.agencies.get(code)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    return this.agencies.list()
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    this.revision++
    return this.agencies.put(agency.code, agency)
  }

  async agenciesRevision (): Promise<number> {
    return this.revision
  }

  async agencyKeysGeneration (code: string): Promise<number> {
    return this.keysGenerations.get(code) ?? 0
  }

  async bumpAgencyKeysGeneration (code: string): Promise<number> {
    const next = (this.keysGenerations.get(code) ?? 0) + 1
    this.keysGenerations.set(code, next)
    return next
  }
}
