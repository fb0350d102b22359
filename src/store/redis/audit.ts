/**
 * The audit trail in Redis. Every key shares the {audit} hash tag: the append script touches the
 * event, the chain, all its indexes and the outbox's sources atomically, which on a cluster
 * requires one slot. Keys, after `<prefix>{audit}:`:
 *   ev               hash: event id → event (codec-audit.ts: MessagePack, ids and hashes as bytes;
 *                    the earlier layout's JSON still read); the field is the id as 16 bytes
 *   head             hash: chain → "<seq> <hash>" of its last event
 *   chain:<chain>:<n> hash: seq → event id (16 bytes), for the seqs n × 128 … n × 128 + 127: small
 *                    enough for Redis to keep as a listpack (a few bytes an entry, not ~80)
 *   chain:<chain>    hash: `floor`, the first seq retention kept (and, in the earlier layout,
 *                    seq → id as text)
 *   idx:<index>      sorted set of event ids (score 0, ordered by id = time): all, agency:<code>,
 *                    subject:<hash>, document:<id>, history:<subject hash>; hidden:<subject hash>
 *                    scored by the day each becomes visible (audit-keys.ts). Members are ids as
 *                    16 bytes (byte order is id order); the earlier layout's text ids sort after
 *                    every one of them (a ULID's first byte is below "0" until the year 3600), so
 *                    a page reads both ranges and merges them
 *   i1:<n>           hash, one of 2^21 buckets (keys.ts): the first entries (up to 3) of a document's or a
 *                    subject's index (most hold one to three: a document's indexing event, a
 *                    citizen's few results), `d`+id or `s`+hash (as bytes) → their ids, 16 bytes
 *                    each, end to end; the index's sorted set gets the entries after them. ~40
 *                    bytes an entry in a listpack instead of a key of ~150
 *   cp               list of checkpoint JSON, in the order stored (the oldest trimmed once archived)
 *   archive          hash: `mark`, the newest event id the archiver moved to the archive
 *   ob:src           (the outbox's, redis/outbox.ts) where an announcing append queues its source
 */
import { auditIndexEntries, auditIndexName, auditIndexNames, dayScore, hiddenIndexName } from '../audit-keys.js'
import type { AuditCheckpointRecord, AuditIndexPage, AuditStore, StoredAuditEvent } from '../audit.js'
import { StatedError } from '../../lib/error-description.js'
import type { RedisConnection } from './connection.js'
import { DeclaredKeys, auditKey, bucketOf, outboxKey } from './keys.js'
import { APPEND_AUDIT, FORGET_CHAIN, PRUNE_AUDIT, RAISE_ARCHIVE_MARK, REVEAL_HISTORY } from './audit-scripts.js'
import { bytesToUlid, hexToBytes, isHex, isUlid, isUlidPrefix, ulidToBytes } from './binary.js'
import { decodeAuditEvent, encodeAuditEvent, eventField } from './codec-audit.js'

/** events one retention script removes at most: a few milliseconds of server time */
const PRUNE_BATCH = 256

/** seqs one chain bucket holds (Redis keeps a hash of up to 128 entries as a listpack) */
const CHAIN_BUCKET_BITS = 7

/** the scripts called with their number of keys first */
export const AUDIT_VARIABLE_KEY_COMMANDS = ['auditAppend', 'auditPrune']

type Arg = string | number | Buffer

/** where an event is: its `ev` field and index member (the id as bytes, or as text in the earlier layout) */
interface Located { id: string, field: Buffer | string }

/** a lexical range bound on the binary ids: `[` or `(` then the id (or its time part) as bytes */
const binaryBound = (mark: '[' | '(', id: string): Buffer => {
  if (!isUlidPrefix(id)) throw new StatedError('an audit index bound is an id or its time part')
  return Buffer.concat([Buffer.from(mark), ulidToBytes(id)])
}

/** an id as stored in a chain bucket or an index: 16 bytes for a ULID, else its text */
function located (stored: Buffer): Located {
  if (stored.length === 16 && (stored[0] as number) < 0x30) return { id: bytesToUlid(stored), field: stored }
  const id = stored.toString('utf8')
  return { id, field: id }
}

/**
 * Where the first entries of an index are kept, for a document's and a subject's (else
 * undefined: all in its sorted set): up to 3 ids, 48 bytes, within the 64 a value may have for
 * Redis to keep the bucket as a listpack.
 */
function firstEntryOf (name: string): { bucket: number, field: Buffer | string } | undefined {
  const colon = name.indexOf(':')
  const kind = name.slice(0, colon)
  const value = name.slice(colon + 1)
  if (kind === 'document') return { bucket: bucketOf(name), field: isUlid(value) ? Buffer.concat([Buffer.from('d'), ulidToBytes(value)]) : name }
  if (kind === 'subject') return { bucket: bucketOf(name), field: isHex(value, 32) ? Buffer.concat([Buffer.from('s'), hexToBytes(value)]) : name }
  return undefined
}

export class RedisAuditStore implements AuditStore {
  /** where each event a chain slice returned was stored: pruning it then needs no second read */
  private readonly whereRead = new WeakMap<StoredAuditEvent, Located>()
  private readonly scripts: {
    append: (...args: Arg[]) => Promise<number>
    prune: (...args: Arg[]) => Promise<number>
    revealHistory: (...args: Arg[]) => Promise<number>
    raiseMark: (...args: Arg[]) => Promise<number>
    forgetChain: (...args: Arg[]) => Promise<number>
  }

  constructor (private readonly redis: RedisConnection) {
    this.scripts = {
      // no number of keys: the first argument says how many keys follow
      append: redis.script('auditAppend', APPEND_AUDIT) as (...args: Arg[]) => Promise<number>,
      prune: redis.script('auditPrune', PRUNE_AUDIT) as (...args: Arg[]) => Promise<number>,
      revealHistory: redis.script('auditRevealHistory', REVEAL_HISTORY, 2) as (...args: Arg[]) => Promise<number>,
      raiseMark: redis.script('auditRaiseArchiveMark', RAISE_ARCHIVE_MARK, 1) as (...args: Arg[]) => Promise<number>,
      forgetChain: redis.script('auditForgetChain', FORGET_CHAIN, 2) as (...args: Arg[]) => Promise<number>
    }
  }

  private key (...rest: string[]): string { return auditKey(this.redis, ...rest) }
  private chainBucketKey (chain: string, seq: number): string { return this.key('chain', chain, String(seq >> CHAIN_BUCKET_BITS)) }

  /**
   * An index entry as the scripts take it: the sorted set's position in KEYS, then its
   * first-entry bucket's (0: none; only ids of 16 bytes go there) and field.
   */
  private indexArgs (keys: DeclaredKeys, name: string, id: string): Arg[] {
    const first = isUlid(id) ? firstEntryOf(name) : undefined
    return [keys.position(this.key('idx', name)), first ? keys.position(this.key('i1', String(first.bucket))) : 0, first?.field ?? '']
  }

  async appendAuditEvent (event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean> {
    return await this.appendAuditEvents([{ event, ...options }])
  }

  async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean> {
    const first = batch[0]?.event
    if (!first) return true
    const keys = new DeclaredKeys([this.key('ev'), this.key('head'), outboxKey(this.redis, 'src')])
    const args: Arg[] = [first.chain]
    for (const { event, announce } of batch) {
      if (event.chain !== first.chain) throw new StatedError('an audit batch is one chain')
      const entries = auditIndexEntries(event)
      args.push(event.seq, event.prevHash, event.hash, eventField(event.id), encodeAuditEvent(event), announce ? `a:${event.id}` : '',
        Date.parse(String(event.time)), keys.position(this.chainBucketKey(event.chain, event.seq)), entries.length,
        ...entries.flatMap(({ name, score }) => [...this.indexArgs(keys, name, event.id), score]))
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

  /**
   * Both ranges of an index (ids as bytes, ids as text from the earlier layout) and, for a
   * document's or a subject's, its first entry, in one round trip, merged.
   */
  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    const name = auditIndexName(page.index)
    const key = this.key('idx', name)
    const client = this.redis.client
    const binaryLow = page.fromId === undefined ? '-' : binaryBound('[', page.fromId)
    // text ids start at "0": the binary range ends before
    const binaryHigh = page.toId === undefined ? '(0' : binaryBound('(', page.toId)
    const textLow = page.fromId === undefined ? '[0' : `[${page.fromId}`
    const textHigh = page.toId === undefined ? '+' : `(${page.toId}`
    const first = firstEntryOf(name)
    const [binary, text, inline] = await this.redis.run(async () => await Promise.all([
      page.newestFirst ? client.zrevrangebylexBuffer(key, binaryHigh, binaryLow, 'LIMIT', 0, page.count) : client.zrangebylexBuffer(key, binaryLow, binaryHigh, 'LIMIT', 0, page.count),
      page.newestFirst ? client.zrevrangebylex(key, textHigh, textLow, 'LIMIT', 0, page.count) : client.zrangebylex(key, textLow, textHigh, 'LIMIT', 0, page.count),
      first ? client.hgetBuffer(this.key('i1', String(first.bucket)), first.field) : null
    ]))
    const ids = (binary as Buffer[]).map((member) => located(member).id)
    const firstIds = inline ? Array.from({ length: inline.length / 16 }, (_, i) => bytesToUlid(inline.subarray(16 * i, 16 * i + 16))) : []
    const extra = [...text as string[], ...firstIds.filter((id) => (page.fromId === undefined || id >= page.fromId) && (page.toId === undefined || id < page.toId))]
    if (extra.length === 0) return ids
    const merged = [...ids, ...extra].sort()
    if (page.newestFirst) merged.reverse()
    return merged.slice(0, page.count)
  }

  async revealAuditHistory (subjectHash: string, day: string, max: number): Promise<number> {
    const keys = [this.key('idx', hiddenIndexName(subjectHash)), this.key('idx', auditIndexName({ kind: 'history', value: subjectHash }))]
    return await this.redis.run(async () => await this.scripts.revealHistory(...keys, dayScore(day), max))
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    return (await this.located(ids.map((id) => ({ id, field: eventField(id) })))).map(({ event }) => event)
  }

  /**
   * Events by their `ev` field, in the order asked, missing ones left out; an id as bytes not
   * found is looked for as text (an event of the earlier layout).
   */
  private async located (wanted: Located[]): Promise<Array<{ event: StoredAuditEvent, located: Located }>> {
    if (wanted.length === 0) return []
    const client = this.redis.client
    const values = await this.redis.run(async () => await client.hmgetBuffer(this.key('ev'), ...wanted.map((w) => w.field)))
    const missing = wanted.map((w, i) => values[i] === null && typeof w.field !== 'string' ? i : -1).filter((i) => i >= 0)
    if (missing.length) {
      const again = await this.redis.run(async () => await client.hmgetBuffer(this.key('ev'), ...missing.map((i) => (wanted[i] as Located).id)))
      missing.forEach((at, j) => {
        if (again[j] !== null) {
          values[at] = again[j] as Buffer
          wanted[at] = { id: (wanted[at] as Located).id, field: (wanted[at] as Located).id }
        }
      })
    }
    const out: Array<{ event: StoredAuditEvent, located: Located }> = []
    wanted.forEach((located, i) => {
      const value = values[i]
      if (value) out.push({ event: decodeAuditEvent(located.id, value), located })
    })
    return out
  }

  /** a chain's event fields for seqs, from its buckets and, for what they lack, its earlier-layout hash */
  private async chainFields (chain: string, seqs: number[]): Promise<Array<Located | undefined>> {
    const client = this.redis.client
    const byBucket = new Map<string, number[]>()
    seqs.forEach((seq, i) => {
      const key = this.chainBucketKey(chain, seq)
      byBucket.set(key, [...byBucket.get(key) ?? [], i])
    })
    const out: Array<Located | undefined> = seqs.map(() => undefined)
    await this.redis.run(async () => await Promise.all([...byBucket].map(async ([key, at]) => {
      const ids = await client.hmgetBuffer(key, ...at.map((i) => String(seqs[i])))
      at.forEach((i, j) => {
        const id = ids[j]
        if (id) out[i] = located(id)
      })
    })))
    const missing = seqs.map((seq, i) => out[i] === undefined ? i : -1).filter((i) => i >= 0)
    if (missing.length) {
      const ids = await this.redis.run(async () => await client.hmget(this.key('chain', chain), ...missing.map((i) => String(seqs[i]))))
      missing.forEach((at, j) => {
        const id = ids[j]
        if (id) out[at] = { id, field: id }
      })
    }
    return out
  }

  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    const seqs = Array.from({ length: count }, (_, i) => fromSeq + i)
    const fields = await this.chainFields(chain, seqs)
    return (await this.located(fields.filter((f): f is Located => f !== undefined))).map(({ event, located }) => {
      // where it was found, should the caller prune it next (the archiver does)
      this.whereRead.set(event, located)
      return event
    })
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

  async pruneAudit (upToSeq: Record<string, number>, known: StoredAuditEvent[] = []): Promise<number> {
    let removed = 0
    const read = new Map<string, Map<number, { event: StoredAuditEvent, located: Located }>>()
    for (const event of known) {
      const located = this.whereRead.get(event)
      if (!located) continue
      let bySeq = read.get(event.chain)
      if (!bySeq) read.set(event.chain, bySeq = new Map())
      bySeq.set(event.seq, { event, located })
    }
    for (const [chain, upTo] of Object.entries(upToSeq)) {
      // batch after batch, each its own script: other commands run in between
      for (;;) {
        const count = await this.pruneBatch(chain, upTo, read.get(chain))
        if (count === undefined) break
        removed += count
      }
    }
    return removed
  }

  /** one retention batch (PRUNE_AUDIT): seqs removed, or undefined when nothing is left up to upTo */
  private async pruneBatch (chain: string, upTo: number, known?: Map<number, { event: StoredAuditEvent, located: Located }>): Promise<number | undefined> {
    const chainKey = this.key('chain', chain)
    const client = this.redis.client
    for (;;) {
      const floor = Number(await this.redis.run(async () => await client.hget(chainKey, 'floor')) ?? '1')
      if (floor > upTo) return undefined
      const seqs = Array.from({ length: Math.min(upTo, floor + PRUNE_BATCH - 1) - floor + 1 }, (_, i) => floor + i)
      const given = known && seqs.every((seq) => known.has(seq)) ? seqs.map((seq) => known.get(seq) as { event: StoredAuditEvent, located: Located }) : undefined
      const fields = given ? given.map(({ located }) => located) : await this.chainFields(chain, seqs)
      const found = given ?? await this.located(fields.filter((f): f is Located => f !== undefined))
      const eventOf = new Map(found.map(({ event, located }) => [located.id, { event, located }]))
      const keys = new DeclaredKeys([this.key('ev'), chainKey])
      const args: Arg[] = [floor, floor + seqs.length]
      seqs.forEach((seq, i) => {
        const at = fields[i]
        const stored = at ? eventOf.get(at.id) : undefined
        // index members have the form of the event's field (bytes, or text in the earlier layout)
        const names = stored ? auditIndexNames(stored.event) : []
        args.push(seq, stored?.located.field ?? at?.field ?? '', keys.position(this.chainBucketKey(chain, seq)), names.length, ...names.flatMap((name) => this.indexArgs(keys, name, stored?.event.id ?? '')))
      })
      const removed = await this.redis.run(async () => await this.scripts.prune(keys.list.length, ...keys.list, ...args))
      // another process pruned this chain meanwhile: read again from where it stopped
      if (removed >= 0) return removed
    }
  }

  async pruneAuditCheckpoints (count: number): Promise<void> {
    if (count <= 0) return
    await this.redis.run(async () => await this.redis.client.ltrim(this.key('cp'), count, -1))
  }

  async auditArchiveMark (): Promise<string | undefined> {
    return await this.redis.run(async () => await this.redis.client.hget(this.key('archive'), 'mark')) ?? undefined
  }

  async setAuditArchiveMark (id: string): Promise<void> {
    await this.redis.run(async () => await this.scripts.raiseMark(this.key('archive'), id))
  }

  async forgetAuditChain (chain: string, head: { seq: number, hash: string }): Promise<boolean> {
    const done = await this.redis.run(async () => await this.scripts.forgetChain(this.key('head'), this.key('chain', chain), chain, `${head.seq} ${head.hash}`))
    return done === 1
  }
}
