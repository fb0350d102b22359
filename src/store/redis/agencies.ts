/**
 * Agencies in Redis. Keys (one tag, {agencies}, so one slot):
 *   {agencies}                  hash: agency code → agency JSON
 *   {agencies}:keys-generation  hash: agency code → how many times its keys changed
 *   {agencies}:revision         counter: moved on by every agency write (revisions.ts)
 */
import type { AgencyRecord, AgencyStore } from '../agencies.js'
import type { RedisConnection } from './connection.js'
import { putRecordWithRevision, readRevision } from './revisions.js'

export class RedisAgencyStore implements AgencyStore {
  constructor (private readonly redis: RedisConnection) {}

  private get agenciesKey (): string { return this.redis.key('agencies') }

  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    return await this.redis.hashRecord<AgencyRecord>(this.agenciesKey, code)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    return await this.redis.hashRecords<AgencyRecord>(this.agenciesKey)
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    return await putRecordWithRevision(this.redis, this.agenciesKey, this.revisionKey, agency.code, agency)
  }

  private get revisionKey (): string { return this.redis.key('agencies', 'revision') }

  async agenciesRevision (): Promise<number> {
    return await readRevision(this.redis, this.revisionKey)
  }

  // one hash beside the agencies (same tag), agency code → keys generation: HINCRBY moves it
  // on atomically, without rewriting the agency record an admin may be changing at that moment
  private get generationKey (): string { return this.redis.key('agencies', 'keys-generation') }

  async agencyKeysGeneration (code: string): Promise<number> {
    return Number(await this.redis.run(async () => await this.redis.client.hget(this.generationKey, code)) ?? 0)
  }

  async bumpAgencyKeysGeneration (code: string): Promise<number> {
    return await this.redis.run(async () => await this.redis.client.hincrby(this.generationKey, code, 1))
  }
}
