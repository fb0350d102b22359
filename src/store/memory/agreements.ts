/** Data-sharing agreements in memory (the embedded store). */
import type { AgreementRecord, AgreementStore } from '../agreements.js'
import { RecordTable } from './records.js'

export class MemoryAgreementStore implements AgreementStore {
  private readonly agreements = new RecordTable<AgreementRecord>()
  private revision = 0

  async getAgreement (id: string): Promise<AgreementRecord | undefined> {
    return this.agreements.get(id)
  }

  async putAgreement (agreement: AgreementRecord): Promise<{ created: boolean }> {
    this.revision++
    return this.agreements.put(agreement.id, agreement)
  }

  async agreementsRevision (): Promise<number> {
    return this.revision
  }

  async listAgreements (): Promise<AgreementRecord[]> {
    return this.agreements.list()
  }
}
