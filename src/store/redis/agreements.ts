/**
 * Data-sharing agreements in Redis. Keys (tag {agreements}):
 *   {agreements}  hash: agreement id → agreement JSON
 */
import type { AgreementRecord, AgreementStore } from '../agreements.js'
import type { RedisConnection } from './connection.js'

export class RedisAgreementStore implements AgreementStore {
  constructor (private readonly redis: RedisConnection) {}

  private get agreementsKey (): string { return this.redis.key('agreements') }

  async getAgreement (id: string): Promise<AgreementRecord | undefined> {
    return await this.redis.hashRecord<AgreementRecord>(this.agreementsKey, id)
  }

  async putAgreement (agreement: AgreementRecord): Promise<{ created: boolean }> {
    return await this.redis.putHashRecord(this.agreementsKey, agreement.id, agreement)
  }

  async listAgreements (): Promise<AgreementRecord[]> {
    return await this.redis.hashRecords<AgreementRecord>(this.agreementsKey)
  }
}
