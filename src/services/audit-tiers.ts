import type { AuditArchive } from '../store/audit-archive.js'
import type { AuditCheckpointRecord, AuditIndexPage, AuditStore, StoredAuditEvent } from '../store/index.js'

/**
 * The audit trail as one, over its two tiers: the store (Redis) holds the recent days and takes
 * every write; the archive (PostgreSQL) holds what the archiver moved out of it
 * (audit-archiver.ts). Everything that reads the trail (search, export, verification, the
 * portal's history) reads through this, so a cursor crosses from one tier to the other and a
 * chain is walked across the boundary without either side knowing.
 *
 * The store's archive mark (the newest id archived) tells when the archive can be left alone: a
 * page of ids all above the mark is complete from the store alone, so hot-only reads keep
 * working while PostgreSQL is down; a read that needs the archive then fails with
 * ArchiveUnavailableError (503 archive_unavailable). Near the boundary both tiers are read and
 * merged by id: an event is in one tier or, for a moment while it moves, in both (the same
 * event, kept once).
 */
export class TieredAuditStore implements AuditStore {
  constructor (private readonly hot: AuditStore, private readonly archive: AuditArchive) {}

  // writes, and what only the store has, go to the store
  async appendAuditEvent (event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean> { return await this.hot.appendAuditEvent(event, options) }
  async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean> { return await this.hot.appendAuditEvents(batch) }
  async revealAuditHistory (subjectHash: string, day: string, max: number): Promise<number> { return await this.hot.revealAuditHistory(subjectHash, day, max) }
  async putAuditCheckpoint (checkpoint: AuditCheckpointRecord): Promise<void> { await this.hot.putAuditCheckpoint(checkpoint) }
  async pruneAudit (upToSeq: Record<string, number>, known?: StoredAuditEvent[]): Promise<number> { return await this.hot.pruneAudit(upToSeq, known) }
  async pruneAuditCheckpoints (count: number): Promise<void> { await this.hot.pruneAuditCheckpoints(count) }
  async auditArchiveMark (): Promise<string | undefined> { return await this.hot.auditArchiveMark() }
  async setAuditArchiveMark (id: string): Promise<void> { await this.hot.setAuditArchiveMark(id) }
  async forgetAuditChain (chain: string, head: { seq: number, hash: string }): Promise<boolean> { return await this.hot.forgetAuditChain(chain, head) }

  /** the chains the store appends to now (what a checkpoint lists) */
  async liveAuditChains (): Promise<string[]> {
    return await this.hot.auditChains()
  }

  async auditChainHead (chain: string): Promise<{ seq: number, hash: string } | undefined> {
    const head = await this.hot.auditChainHead(chain)
    if (head || await this.hot.auditArchiveMark() === undefined) return head
    const archived = (await this.archive.archivedHeads()).get(chain)
    return archived ? { seq: archived.seq, hash: archived.hash } : undefined
  }

  /** every chain of the trail: the store's and those only the archive still holds */
  async auditChains (): Promise<string[]> {
    const live = await this.hot.auditChains()
    if (await this.hot.auditArchiveMark() === undefined) return live
    return [...new Set([...live, ...(await this.archive.archivedHeads()).keys()])].sort()
  }

  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    const [hot, mark] = await Promise.all([this.hot.auditIndexPage(page), this.hot.auditArchiveMark()])
    if (mark === undefined) return hot
    // everything archived is at or below the mark: a page beyond it needs nothing from the archive
    if (page.fromId !== undefined && page.fromId > mark) return hot
    if (page.newestFirst && hot.length === page.count && (hot[hot.length - 1] as string) > mark) return hot
    const archived = await this.archive.auditIndexPage(page)
    if (archived.length === 0) return hot
    const merged = [...new Set([...hot, ...archived])].sort()
    if (page.newestFirst) merged.reverse()
    return merged.slice(0, page.count)
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    const found = await this.hot.auditEvents(ids)
    if (found.length === ids.length) return found
    const mark = await this.hot.auditArchiveMark()
    const have = new Set(found.map((event) => event.id))
    const missing = ids.filter((id) => !have.has(id) && mark !== undefined && id <= mark)
    if (missing.length === 0) return found
    const byId = new Map([...found, ...await this.archive.auditEvents(missing)].map((event) => [event.id, event]))
    return ids.flatMap((id) => byId.get(id) ?? [])
  }

  /** the archive's part of the slice first (seqs below the store's oldest), then the store's */
  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    const hot = await this.hot.auditChainSlice(chain, fromSeq, count)
    const firstHot = hot[0]?.seq ?? fromSeq + count
    if (firstHot === fromSeq || await this.hot.auditArchiveMark() === undefined) return hot
    const archived = await this.archive.auditChainSlice(chain, fromSeq, firstHot - fromSeq)
    // an event being moved is in both for a moment
    const last = archived[archived.length - 1]?.seq ?? 0
    return [...archived, ...hot.filter((event) => event.seq > last)]
  }

  async auditCheckpointCount (): Promise<number> {
    const [archived, hot] = await Promise.all([this.archivedCheckpointCount(), this.hot.auditCheckpointCount()])
    return archived + hot
  }

  /** positions run through the archive's checkpoints (the oldest) and then the store's */
  async auditCheckpoints (start = 0, stop = -1): Promise<AuditCheckpointRecord[]> {
    // the newest ones are in the store (the cut stays there): read without the archive, which may be down
    const hot = await this.hot.auditCheckpointCount()
    if (start < 0 && stop < 0 && -start <= hot) return await this.hot.auditCheckpoints(start, stop)
    const archived = await this.archivedCheckpointCount()
    const total = archived + hot
    const last = stop < 0 ? total + stop : Math.min(stop, total - 1)
    const first = Math.max(0, start < 0 ? total + start : start)
    if (first > last) return []
    const out: AuditCheckpointRecord[] = []
    if (first < archived) out.push(...await this.archive.auditCheckpoints(first, Math.min(last, archived - 1)))
    if (last >= archived) out.push(...await this.hot.auditCheckpoints(Math.max(0, first - archived), last - archived))
    return out
  }

  private async archivedCheckpointCount (): Promise<number> {
    return await this.hot.auditArchiveMark() === undefined ? 0 : await this.archive.auditCheckpointCount()
  }
}
