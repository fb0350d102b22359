/**
 * The audit trail in Redis. Every key shares the {audit} hash tag: the append script touches the
 * event, the chain, all its indexes and the outbox's sources atomically, which on a cluster
 * requires one slot. Keys, after `<prefix>{audit}:`:
 *   ev             hash: event id → event JSON
 *   head           hash: chain → "<seq> <hash>" of its last event
 *   chain:<chain>  hash: seq → event id, and `floor`, the first seq retention kept
 *   idx:<index>    sorted set of event ids (score 0, ordered by id = time): all, agency:<code>,
 *                  subject:<hash>, document:<id>, history:<subject hash>; hidden:<subject hash>
 *                  scored by the day each becomes visible (audit-keys.ts)
 *   cp             list of checkpoint JSON, in the order stored
 *   ob:src         (the outbox's, redis/outbox.ts) where an announcing append queues its source
 */
import { auditIndexEntries, auditIndexName, auditIndexNames, dayScore, hiddenIndexName } from '../audit-keys.js'
import type { AuditCheckpointRecord, AuditIndexPage, AuditStore, StoredAuditEvent } from '../audit.js'
import { StatedError } from '../../lib/error-description.js'
import type { RedisConnection } from './connection.js'
import { DeclaredKeys, auditKey, outboxKey } from './keys.js'
import { APPEND_AUDIT, PRUNE_AUDIT, REVEAL_HISTORY } from './audit-scripts.js'

/** events one retention script removes at most: a few milliseconds of server time */
const PRUNE_BATCH = 256

/** the scripts called with their number of keys first */
export const AUDIT_VARIABLE_KEY_COMMANDS = ['auditAppend', 'auditPrune']

export class RedisAuditStore implements AuditStore {
  private readonly scripts: {
    append: (...args: Array<string | number>) => Promise<number>
    prune: (...args: Array<string | number>) => Promise<number>
    revealHistory: (...args: Array<string | number>) => Promise<number>
  }

  constructor (private readonly redis: RedisConnection) {
    this.scripts = {
      // no number of keys: the first argument says how many keys follow
      append: redis.script('auditAppend', APPEND_AUDIT),
      prune: redis.script('auditPrune', PRUNE_AUDIT),
      revealHistory: redis.script('auditRevealHistory', REVEAL_HISTORY, 2)
    }
  }

  private key (...rest: string[]): string { return auditKey(this.redis, ...rest) }

  async appendAuditEvent (event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean> {
    return await this.appendAuditEvents([{ event, ...options }])
  }

  async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean> {
    const first = batch[0]?.event
    if (!first) return true
    const keys = new DeclaredKeys([this.key('ev'), this.key('head'), this.key('chain', first.chain), outboxKey(this.redis, 'src')])
    const args: Array<string | number> = [first.chain]
    for (const { event, announce } of batch) {
      if (event.chain !== first.chain) throw new StatedError('an audit batch is one chain')
      const indexes = auditIndexEntries(event).flatMap(({ name, score }) => [keys.position(this.key('idx', name)), score])
      args.push(event.seq, event.prevHash, event.hash, event.id, JSON.stringify(event), announce ? '1' : '0', Date.parse(String(event.time)), indexes.length / 2, ...indexes)
    }
    const done = await this.redis.run(async () => await this.scripts.append(keys.list.length, ...keys.list, ...args))
    return done === 1
  }

  async auditChainHead (chain: string): Promise<{ seq: number, hash: string } | undefined> {
    const head = await this.redis.run(async () => await this.redis.client.hget(this.key('head'), chain))
    if (head === null) return undefined
    const [seq, hash] = head.split(' ')
    return { seq: Number(seq), hash: hash as string }
  }

  async auditChains (): Promise<string[]> {
    return (await this.redis.run(async () => await this.redis.client.hkeys(this.key('head')))).sort()
  }

  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    const key = this.key('idx', auditIndexName(page.index))
    const low = page.fromId === undefined ? '-' : `[${page.fromId}`
    const high = page.toId === undefined ? '+' : `(${page.toId}`
    const client = this.redis.client
    return await this.redis.run(async () => page.newestFirst
      ? await client.zrevrangebylex(key, high, low, 'LIMIT', 0, page.count)
      : await client.zrangebylex(key, low, high, 'LIMIT', 0, page.count))
  }

  async revealAuditHistory (subjectHash: string, day: string, max: number): Promise<number> {
    const keys = [this.key('idx', hiddenIndexName(subjectHash)), this.key('idx', auditIndexName({ kind: 'history', value: subjectHash }))]
    return await this.redis.run(async () => await this.scripts.revealHistory(...keys, dayScore(day), max))
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    if (ids.length === 0) return []
    const values = await this.redis.run(async () => await this.redis.client.hmget(this.key('ev'), ...ids))
    return values.filter((json): json is string => json !== null).map((json) => JSON.parse(json))
  }

  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    const seqs = Array.from({ length: count }, (_, i) => String(fromSeq + i))
    const ids = await this.redis.run(async () => await this.redis.client.hmget(this.key('chain', chain), ...seqs))
    return await this.auditEvents(ids.filter((id): id is string => id !== null))
  }

  async putAuditCheckpoint (checkpoint: AuditCheckpointRecord): Promise<void> {
    await this.redis.run(async () => await this.redis.client.rpush(this.key('cp'), JSON.stringify(checkpoint)))
  }

  async auditCheckpointCount (): Promise<number> {
    return await this.redis.run(async () => await this.redis.client.llen(this.key('cp')))
  }

  async auditCheckpoints (start = 0, stop = -1): Promise<AuditCheckpointRecord[]> {
    const some = await this.redis.run(async () => await this.redis.client.lrange(this.key('cp'), start, stop))
    return some.map((json) => JSON.parse(json))
  }

  async pruneAudit (upToSeq: Record<string, number>): Promise<number> {
    let removed = 0
    for (const [chain, upTo] of Object.entries(upToSeq)) {
      // batch after batch, each its own script: other commands run in between
      for (;;) {
        const count = await this.pruneBatch(chain, upTo)
        if (count === undefined) break
        removed += count
      }
    }
    return removed
  }

  /** one retention batch (PRUNE_AUDIT): seqs removed, or undefined when nothing is left up to upTo */
  private async pruneBatch (chain: string, upTo: number): Promise<number | undefined> {
    const chainKey = this.key('chain', chain)
    const client = this.redis.client
    for (;;) {
      const floor = Number(await this.redis.run(async () => await client.hget(chainKey, 'floor')) ?? '1')
      if (floor > upTo) return undefined
      const seqs = Array.from({ length: Math.min(upTo, floor + PRUNE_BATCH - 1) - floor + 1 }, (_, i) => floor + i)
      const ids = await this.redis.run(async () => await client.hmget(chainKey, ...seqs.map(String)))
      const present = ids.filter((id): id is string => id !== null)
      const events = present.length ? await this.redis.run(async () => await client.hmget(this.key('ev'), ...present)) : []
      const eventOf = new Map(present.map((id, i) => [id, events[i]]))
      const keys = new DeclaredKeys([this.key('ev'), chainKey])
      const args: Array<string | number> = [floor, floor + seqs.length]
      seqs.forEach((seq, i) => {
        const id = ids[i] ?? ''
        const json = eventOf.get(id)
        const indexes = json ? auditIndexNames(JSON.parse(json) as StoredAuditEvent).map((name) => keys.position(this.key('idx', name))) : []
        args.push(seq, id, indexes.length, ...indexes)
      })
      const removed = await this.redis.run(async () => await this.scripts.prune(keys.list.length, ...keys.list, ...args))
      // another process pruned this chain meanwhile: read again from where it stopped
      if (removed >= 0) return removed
    }
  }
}
