/**
 * Data-sharing agreements in Redis. Keys (tag {agreements}):
 *   {agreements}           hash: agreement id → agreement JSON
 *   {agreements}:revision  counter: moved on by every agreement write (revisions.ts)
 */
import type { AgreementRecord, AgreementStore } from '../agreements.js'
import type { RedisConnection } from './connection.js'
import { putRecordWithRevision, readRevision } from './revisions.js'

export class RedisAgreementStore implements AgreementStore {
  constructor (private readonly redis: RedisConnection) {}

  private get agreementsKey (): string { return this.redis.key('agreements') }

  async getAgreement (id: string): Promise<AgreementRecord | undefined> {
    return await this.redis.hashRecord<AgreementRecord>(this.agreementsKey, id)
  }

  async putAgreement (agreement: AgreementRecord): Promise<{ created: boolean }> {
    return await putRecordWithRevision(this.redis, this.agreementsKey, this.revisionKey, agreement.id, agreement)
  }

  private get revisionKey (): string { return this.redis.key('agreements', 'revision') }

  async agreementsRevision (): Promise<number> {
    return await readRevision(this.redis, this.revisionKey)
  }

  async listAgreements (): Promise<AgreementRecord[]> {
    return await this.redis.hashRecords<AgreementRecord>(this.agreementsKey)
  }
}
