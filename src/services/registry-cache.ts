import type { AgencyRecord, AgencyStore, AgreementRecord, AgreementStore } from '../store/index.js'

/**
 * Agencies and agreements as the hot paths read them (every authenticated request, every token,
 * every reuse query): parsed once per change instead of once per request. Every write of a
 * record moves a revision counter in the store in the same atomic write; each use reads that
 * counter — one small read — and reads records again only when it moved. So a change made
 * through any gateway process (a suspension, a removed key, an agreement withdrawn) holds on
 * every process from its next request on, as when the records were read every time.
 *
 * The records handed out are shared by every request, so they are frozen: read them, never
 * change them (the store's own reads still give copies, for whoever must).
 */

/** how many agencies one process keeps at most (a registry holds hundreds; unknown codes are never kept) */
const MAX_AGENCIES = 10_000

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const member of Object.values(value)) deepFreeze(member)
  }
  return value
}

/**
 * Values read once per revision of the store: read the revision, then (if it moved since)
 * the values, so a value kept is never older than the revision it is kept under. A read that
 * failed, or found nothing, is not kept.
 */
class RevisionCache<T> {
  private revision = -1
  private readonly values = new Map<string, Promise<T | undefined>>()

  constructor (private readonly readRevision: () => Promise<number>, private readonly max: number) {}

  async get (key: string, read: () => Promise<T | undefined>): Promise<T | undefined> {
    const revision = await this.readRevision()
    if (revision !== this.revision) {
      this.values.clear()
      this.revision = revision
    }
    let value = this.values.get(key)
    if (!value) {
      if (this.values.size >= this.max) this.values.clear()
      const reading = read().then(deepFreeze)
      const forget = (): void => { if (this.values.get(key) === reading) this.values.delete(key) }
      reading.then((found) => { if (found === undefined) forget() }, forget)
      this.values.set(key, reading)
      value = reading
    }
    return await value
  }
}

/** The agency records, kept per code until an agency changes anywhere. */
export class AgencyRegistry implements Pick<AgencyStore, 'getAgency'> {
  private readonly cache: RevisionCache<AgencyRecord>

  constructor (private readonly store: Pick<AgencyStore, 'getAgency' | 'agenciesRevision'>) {
    this.cache = new RevisionCache(async () => await store.agenciesRevision(), MAX_AGENCIES)
  }

  /** the agency as it is now (frozen), or undefined */
  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    return await this.cache.get(code, async () => await this.store.getAgency(code))
  }
}

/** Every agreement, kept until an agreement changes anywhere. */
export class AgreementRegistry implements Pick<AgreementStore, 'listAgreements'> {
  private readonly cache: RevisionCache<AgreementRecord[]>

  constructor (private readonly store: Pick<AgreementStore, 'listAgreements' | 'agreementsRevision'>) {
    this.cache = new RevisionCache(async () => await store.agreementsRevision(), 1)
  }

  /** every agreement as they are now (frozen), in id order */
  async listAgreements (): Promise<AgreementRecord[]> {
    return await this.cache.get('', async () => await this.store.listAgreements()) ?? []
  }
}
