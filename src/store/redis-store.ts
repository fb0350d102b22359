import { Redis, Cluster } from 'ioredis'
import type { RedisOptions, ClusterOptions } from 'ioredis'
import { StoreUnavailableError } from './errors.js'
import { auditIndexEntries, auditIndexName, auditIndexNames, dayScore, hiddenIndexName } from './audit-keys.js'
import type { AgreementRecord, DownloadGrant, DocumentTypeRecord, DocumentKeys, RegisterOutcome, StoredDocument, StoredDocumentFile, StoredDocumentVersion } from './store.js'
import type { AgencyRecord, AuditCheckpointRecord, AuditIndexPage, Persistence, SigningKeySetRecord, Store, StoredAuditEvent } from './store.js'
import { createHash } from 'node:crypto'
import { DeclaredKeys, OUTBOX_VARIABLE_KEY_COMMANDS, RedisOutbox, defineOutboxCommands } from './redis-outbox.js'
import type { OutboxDeliveryRecord, OutboxDestinationStatus, OutboxEventRecord, OutboxSettlement } from './store.js'
import { StatedError } from '../lib/error-description.js'

/** the little a store needs of a logger (pino's and Fastify's both fit) */
export interface StoreLogger {
  info(msg: string): void
  warn(obj: object, msg: string): void
}

export interface RedisStoreOptions {
  /** `redis://` URL of a standalone server */
  url?: string
  /** seed nodes of a Redis Cluster */
  clusterNodes?: Array<{ host: string, port: number }>
  /** prefix of every key, before its hash tag: `rg:{…}:…` */
  keyPrefix: string
  commandTimeoutMs: number
  quitTimeoutMs: number
  logger?: StoreLogger
}

type Client = Redis | Cluster

/**
 * Appends consecutive audit events of one chain: each event, its chain position and every index
 * entry, then the new head — or nothing. The first must follow the stored head (seq 1 on an
 * empty chain) and each the one before (seq + 1, prevHash = its hash), so a chain can never
 * fork or skip, whatever the callers do. An event that announces a change also queues its
 * outbox source here, so nothing announced is lost between the audit record and the outbox
 * (redis-outbox.ts). Like every script here it touches only keys it is given in KEYS (all
 * under the {audit} tag, so one slot): a cluster routes it, and checks it, by them.
 * KEYS: events hash, heads hash, the chain's seq → id hash, the outbox sources, then the index
 * keys of the batch. ARGV: chain, then per event: seq, prevHash, hash, id, event JSON, announce
 * (1/0), time (ms), n, then for each of its n indexes its position in KEYS and the entry's score.
 */
const APPEND_AUDIT = `
local head = redis.call('HGET', KEYS[2], ARGV[1])
local i = 2
local previous
if tonumber(ARGV[2]) == 1 then
  if head then return 0 end
else
  previous = { tonumber(ARGV[2]) - 1, ARGV[3] }
  if head ~= (tostring(previous[1]) .. ' ' .. previous[2]) then return 0 end
end
local last
-- the whole batch is checked before anything is written: a script is not rolled back
while i <= #ARGV do
  local seq, prevHash = tonumber(ARGV[i]), ARGV[i + 1]
  if last and (seq ~= last[1] + 1 or prevHash ~= last[2]) then return redis.error_reply('ERR audit batch is not a chain') end
  last = { seq, ARGV[i + 2] }
  i = i + 8 + 2 * tonumber(ARGV[i + 7])
end
i = 2
while i <= #ARGV do
  local seq, hash, id = tonumber(ARGV[i]), ARGV[i + 2], ARGV[i + 3]
  redis.call('HSET', KEYS[1], id, ARGV[i + 4])
  redis.call('HSET', KEYS[3], tostring(seq), id)
  if ARGV[i + 5] == '1' then redis.call('ZADD', KEYS[4], ARGV[i + 6], 'a:' .. id) end
  local n = tonumber(ARGV[i + 7])
  for j = 1, n do redis.call('ZADD', KEYS[tonumber(ARGV[i + 6 + 2 * j])], ARGV[i + 7 + 2 * j], id) end
  i = i + 8 + 2 * n
end
redis.call('HSET', KEYS[2], ARGV[1], tostring(last[1]) .. ' ' .. last[2])
return 1`

/**
 * Retention for one chain, one bounded batch at a time: a script runs alone on the server, so
 * pruning a long chain in one go would stall every gateway (BUSY after lua-time-limit) and,
 * audit being fail-closed, refuse every request meanwhile. The caller reads the batch first
 * (seqs from the chain's floor, their events, and from each event's own fields its index keys,
 * so nothing is scanned and every key is declared); the script removes them only if the floor
 * (the chain's first kept seq, kept in the same hash, 1 when absent) has not moved meanwhile,
 * then moves it past the batch. Events are never rewritten, so what was read still holds.
 * KEYS: events hash, the chain's seq → id hash, then index keys. ARGV: the floor read, the new
 * floor, then per seq: seq, id ('' when none), n, then the positions in KEYS of its n indexes.
 * Returns the number of seqs removed, or -1 when the floor moved (read again).
 */
const PRUNE_AUDIT = `
if tonumber(redis.call('HGET', KEYS[2], 'floor') or '1') ~= tonumber(ARGV[1]) then return -1 end
local removed = 0
local i = 3
while i <= #ARGV do
  local seq, id, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if id ~= '' then
    for j = 1, n do redis.call('ZREM', KEYS[tonumber(ARGV[i + 2 + j])], id) end
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], seq)
    removed = removed + 1
  end
  i = i + 3 + n
end
redis.call('HSET', KEYS[2], 'floor', ARGV[2])
return removed`

/**
 * A subject's hidden accesses due by a day move to its access history, atomically, so a
 * concurrent read sees each in one of the two, never both or neither. Scores in the hidden
 * index are the days they become visible (YYYYMMDD); the history is ordered by id (score 0).
 * KEYS: the hidden index, the history index. ARGV: the day's score, how many at most.
 */
const REVEAL_HISTORY = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], 0, id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids`

/** events one retention script removes at most: a few milliseconds of server time */
const PRUNE_BATCH = 256

/**
 * Writes version 1 of a document into its subject's partition, idempotently (a retry after a
 * crash redoes exactly this). KEYS: the partition. ARGV: id, type, version JSON.
 */
const PUT_FIRST_VERSION = `
redis.call('HSETNX', KEYS[1], ARGV[1] .. '|v:1', ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

/**
 * Appends version n+1 when the document's last version is still n and it is not revoked; with
 * ARGV[4] = '1', version n's file (if any) becomes version n+1's too, marked with the version it
 * was uploaded to. KEYS: the subject's partition. ARGV: document id, expected n, the new version
 * JSON, '1' to carry the file. Returns 0 (not appended), 1 (appended, no file) or the carried file's JSON.
 */
const AMEND = `
local d = ARGV[1] .. '|'
if redis.call('HEXISTS', KEYS[1], d .. 'revoked') == 1 then return 0 end
local n = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], d .. 'v:' .. n) == 0 or redis.call('HEXISTS', KEYS[1], d .. 'v:' .. (n + 1)) == 1 then return 0 end
redis.call('HSET', KEYS[1], d .. 'v:' .. (n + 1), ARGV[3])
if ARGV[4] ~= '1' then return 1 end
local found = redis.call('HGET', KEYS[1], d .. 'file:' .. n)
if not found then return 1 end
local file = cjson.decode(found)
if file.carriedFrom == nil then file.carriedFrom = n end
local carried = cjson.encode(file)
redis.call('HSET', KEYS[1], d .. 'file:' .. (n + 1), carried)
return carried`

/**
 * Replaces a stored version if it is still exactly as read (re-encryption of its data).
 * KEYS: the subject's partition. ARGV: the version's field, its JSON as read, the new JSON.
 */
const REWRITE_VERSION = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`

/** compare-and-set of the signing key set. KEYS: the set. ARGV: expected revision, keys JSON. */
const PUT_SIGNING_KEYS = `
local current = tonumber(redis.call('HGET', KEYS[1], 'revision') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revision', tonumber(ARGV[1]) + 1, 'keys', ARGV[2])
return 1`

/** compare-and-set of a document type on its schema version. KEYS: the types hash. ARGV: code, expected version, record JSON. */
const PUT_DOCUMENT_TYPE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if current then version = cjson.decode(current).schemaVersion end
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`

/** the scripts, as commands: loaded once and called by SHA (EVALSHA), not sent whole every time */
interface StoreCommands {
  auditAppend(...args: Array<string | number>): Promise<number>
  auditPrune(...args: Array<string | number>): Promise<number>
  auditRevealHistory(...args: Array<string | number>): Promise<number>
  documentPutFirst(...args: string[]): Promise<number>
  documentAmend(...args: string[]): Promise<number | string>
  documentRewrite(...args: string[]): Promise<number>
  signingKeysPut(...args: string[]): Promise<number>
  documentTypePut(...args: string[]): Promise<number>
}

/** the scripts called with their number of keys first (auditAppend, auditPrune, and the outbox's) */
const VARIABLE_KEY_COMMANDS = ['auditAppend', 'auditPrune', ...OUTBOX_VARIABLE_KEY_COMMANDS]

function defineStoreCommands (client: Client): void {
  // no numberOfKeys: the first argument says how many keys follow
  client.defineCommand('auditAppend', { lua: APPEND_AUDIT })
  client.defineCommand('auditPrune', { lua: PRUNE_AUDIT })
  client.defineCommand('auditRevealHistory', { numberOfKeys: 2, lua: REVEAL_HISTORY })
  client.defineCommand('documentPutFirst', { numberOfKeys: 1, lua: PUT_FIRST_VERSION })
  client.defineCommand('documentAmend', { numberOfKeys: 1, lua: AMEND })
  client.defineCommand('documentRewrite', { numberOfKeys: 1, lua: REWRITE_VERSION })
  client.defineCommand('signingKeysPut', { numberOfKeys: 1, lua: PUT_SIGNING_KEYS })
  client.defineCommand('documentTypePut', { numberOfKeys: 1, lua: PUT_DOCUMENT_TYPE })
}

/** how much of what was acknowledged survives a crash, in order: nothing, up to the last snapshot, AOF fsync no, everysec, always */
function durability (persistence: Persistence): number {
  if (!persistence.aof) return persistence.rdb ? 1 : 0
  return 2 + Math.max(0, ['no', 'everysec', 'always'].indexOf(persistence.appendfsync ?? 'no'))
}

/** a TTL for PX: whole milliseconds, at least one */
const px = (ms: number): number => Math.max(1, Math.ceil(ms))

/**
 * HGETALL of a subject's partition → its documents (versions in order), optionally only those of
 * some types or one id. Fields: `<id>` → type (the index), `<id>|v:<n>`, `<id>|file:<n>`,
 * `<id>|revoked`; ids never contain "|".
 */
function documentsFromPartition (fields: Record<string, string>, wanted: { types?: string[], id?: string } = {}): StoredDocument[] {
  const types = wanted.types ? new Set(wanted.types) : undefined
  const documents = new Map<string, StoredDocument>()
  for (const [id, type] of Object.entries(fields)) {
    if (id.includes('|') || (wanted.id !== undefined && id !== wanted.id) || (types && !types.has(type))) continue
    documents.set(id, { versions: [], files: {} })
  }
  for (const [field, value] of Object.entries(fields)) {
    const bar = field.indexOf('|')
    const document = bar === -1 ? undefined : documents.get(field.slice(0, bar))
    if (!document) continue
    const part = field.slice(bar + 1)
    if (part.startsWith('v:')) document.versions.push(JSON.parse(value))
    else if (part.startsWith('file:')) document.files[Number(part.slice(5))] = JSON.parse(value)
    else if (part === 'revoked') document.revoked = JSON.parse(value)
  }
  const found: StoredDocument[] = []
  for (const document of documents.values()) {
    if (document.versions.length === 0) continue
    document.versions.sort((a, b) => a.version - b.version)
    found.push(document)
  }
  return found
}

/** Reply errors that mean "the server is there but cannot serve now", not a bug in our command. */
const UNAVAILABLE_REPLY = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|BUSY|NOREPLICAS|MISCONF)\b/

/**
 * The production store. Processes are stateless: any number of gateways share one Redis (or
 * one cluster). Keys are `<prefix>{<tag>}:<rest>`: whatever one operation touches shares a hash
 * tag, so multi-key commands and scripts never cross slots.
 *
 * Failure policy: no offline queue and no retries of in-flight commands, so a request that needs
 * Redis while it is away fails at once with StoreUnavailableError (→ 503 + Retry-After) instead
 * of waiting; the client keeps reconnecting in the background and the gateway recovers by itself.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const
  readonly client: Client
  private readonly prefix: string
  private readonly quitTimeoutMs: number
  private readonly logger: StoreLogger | undefined
  private lastErrorLog = 0
  private readonly outbox: RedisOutbox
  private readonly commands: StoreCommands

  constructor (options: RedisStoreOptions) {
    this.prefix = options.keyPrefix
    this.quitTimeoutMs = options.quitTimeoutMs
    this.logger = options.logger
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      // commands issued in the same tick (a request's independent reads, many requests' audit
      // appends) leave in one write
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(options.commandTimeoutMs, 1000),
      // reconnect quickly at first, then once a second for as long as it takes
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000)
    }
    if (options.clusterNodes) {
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        // auto-pipelining routes a script by its first argument, which for these is the number
        // of keys, not a key: sent on their own, they are routed by their declared keys
        autoPipeliningIgnoredCommands: [...VARIABLE_KEY_COMMANDS],
        redisOptions,
        clusterRetryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000)
      }
      this.client = new Cluster(options.clusterNodes, clusterOptions)
    } else if (options.url) {
      this.client = new Redis(options.url, redisOptions)
    } else {
      throw new StatedError('RedisStore needs a url or cluster nodes')
    }
    // Without a listener ioredis would print every reconnection failure; log them, once a few seconds.
    this.client.on('error', (err: Error) => {
      const now = Date.now()
      if (now - this.lastErrorLog > 5000) {
        this.lastErrorLog = now
        this.logger?.warn({ err }, 'redis connection error')
      }
    })
    this.client.on('ready', () => this.logger?.info('redis connection ready'))
    defineStoreCommands(this.client)
    this.commands = this.client as unknown as StoreCommands
    defineOutboxCommands(this.client)
    this.outbox = new RedisOutbox(this.client, this.key('audit', 'ob', ''), async (operation) => await this.run(operation))
  }

  /**
   * Opens the connection. It does not fail when Redis is not there yet: the gateway starts,
   * reports not-ready, and becomes ready once the client gets through.
   */
  async connect (): Promise<void> {
    try {
      await this.client.connect()
    } catch (err) {
      this.logger?.warn({ err }, 'redis not reachable at start; retrying in the background')
    }
  }

  /** `<prefix>{<tag>}:<rest>`: the tag decides the cluster slot */
  key (tag: string, ...rest: string[]): string {
    return rest.length ? `${this.prefix}{${tag}}:${rest.join(':')}` : `${this.prefix}{${tag}}`
  }

  /** Runs one store operation, turning connectivity failures into StoreUnavailableError. */
  async run<T> (operation: () => Promise<T>): Promise<T> {
    try {
      return await operation()
    } catch (err) {
      throw this.translate(err)
    }
  }

  private translate (err: unknown): unknown {
    if (!(err instanceof Error)) return err
    // ioredis hangs the command's arguments on its errors (a version JSON, a subject's
    // partition key): none of them leaves the store, whoever logs or prints the error
    const command = (err as { command?: { name?: unknown } }).command
    if (command !== undefined) (err as { command?: unknown }).command = { name: command?.name }
    // ReplyError is the server rejecting a command: only a few of those mean "unavailable"
    if (err.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(err.message)) return err
    return new StoreUnavailableError('the store is unavailable', { cause: err })
  }

  async ping (): Promise<void> {
    await this.run(async () => {
      if (this.client instanceof Cluster) {
        // every master that owns slots must answer: with one gone, part of the data is out of reach
        const cluster = this.client
        if (cluster.status !== 'ready') throw new StatedError(`cluster ${cluster.status}`)
        const connected = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]))
        const owners = new Set(cluster.slots.map((nodes) => nodes[0]).filter((key): key is string => key !== undefined))
        if (owners.size === 0) throw new StatedError('cluster slots not known yet')
        await Promise.all([...owners].map(async (key) => {
          const node = connected.get(key)
          if (!node) throw new StatedError(`no connection to cluster master ${key}`)
          await node.ping()
        }))
      } else {
        await this.client.ping()
      }
    })
  }

  /** the settings of the server, or on a cluster of its least durable master: each keeps its own slots */
  async persistence (): Promise<Persistence> {
    return await this.run(async () => {
      const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
      if (nodes.length === 0) throw new StatedError('no cluster node known yet')
      const all = await Promise.all(nodes.map(async (node) => {
        const [, aof] = await node.config('GET', 'appendonly') as [string, string]
        const [, fsync] = await node.config('GET', 'appendfsync') as [string, string]
        const [, save] = await node.config('GET', 'save') as [string, string]
        const result: Persistence = { aof: aof === 'yes', rdb: (save ?? '').trim() !== '' }
        if (result.aof) result.appendfsync = fsync
        return result
      }))
      return all.reduce((weakest, next) => durability(next) < durability(weakest) ? next : weakest)
    })
  }

  // Registries (agencies, document types, agreements) are each one hash of JSON records: one
  // key, one slot, HGETALL lists them (there are hundreds, not millions).
  private async hashRecord<T> (key: string, field: string): Promise<T | undefined> {
    const json = await this.run(async () => await this.client.hget(key, field))
    return json === null ? undefined : JSON.parse(json) as T
  }

  private async hashRecords<T> (key: string): Promise<T[]> {
    const all = await this.run(async () => await this.client.hgetall(key))
    return Object.keys(all).sort().map((field) => JSON.parse(all[field] as string) as T)
  }

  private async putHashRecord (key: string, field: string, record: unknown): Promise<{ created: boolean }> {
    const added = await this.run(async () => await this.client.hset(key, field, JSON.stringify(record)))
    return { created: added === 1 }
  }

  private get agenciesKey (): string { return this.key('agencies') }

  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    return await this.hashRecord<AgencyRecord>(this.agenciesKey, code)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    return await this.hashRecords<AgencyRecord>(this.agenciesKey)
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    return await this.putHashRecord(this.agenciesKey, agency.code, agency)
  }

  // one hash beside the agencies (same tag), agency code → keys generation: HINCRBY moves it
  // on atomically, without rewriting the agency record an admin may be changing at that moment
  private get agencyKeysGenerationKey (): string { return this.key('agencies', 'keys-generation') }

  async agencyKeysGeneration (code: string): Promise<number> {
    return Number(await this.run(async () => await this.client.hget(this.agencyKeysGenerationKey, code)) ?? 0)
  }

  async bumpAgencyKeysGeneration (code: string): Promise<number> {
    return await this.run(async () => await this.client.hincrby(this.agencyKeysGenerationKey, code, 1))
  }

  /**
   * A key named by the SHA-256 of a caller-supplied value (a jti, a download token): keys stay
   * short, carry nothing a caller chose verbatim, and a bearer secret is never a key in clear.
   */
  private hashedKey (kind: string, value: string): string {
    return this.key(`${kind}:${createHash('sha256').update(value).digest('base64url')}`)
  }

  async claimOnce (namespace: string, id: string, ttlMs: number): Promise<boolean> {
    const set = await this.run(async () => await this.client.set(this.hashedKey(`once:${namespace}`, id), '1', 'PX', px(ttlMs), 'NX'))
    return set === 'OK'
  }

  private get signingKeysKey (): string { return this.key('signing-keys') }

  async getSigningKeys (): Promise<SigningKeySetRecord | undefined> {
    const [revision, keys] = await this.run(async () => await this.client.hmget(this.signingKeysKey, 'revision', 'keys'))
    if (revision === null || revision === undefined || keys === null || keys === undefined) return undefined
    return { revision: Number(revision), keys: JSON.parse(keys) }
  }

  async putSigningKeys (keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean> {
    // compare-and-set in one script: two rotations racing cannot both replace the key set
    const done = await this.run(async () => await this.commands.signingKeysPut(this.signingKeysKey, String(expectedRevision), JSON.stringify(keys)))
    return done === 1
  }

  // Every audit key shares the {audit} hash tag: the append script touches the event, the chain
  // and all its indexes atomically, which on a cluster requires one slot.
  private auditKey (...rest: string[]): string { return this.key('audit', ...rest) }

  async appendAuditEvent (event: StoredAuditEvent, options?: { announce?: boolean }): Promise<boolean> {
    return await this.appendAuditEvents([{ event, ...options }])
  }

  async appendAuditEvents (batch: Array<{ event: StoredAuditEvent, announce?: boolean }>): Promise<boolean> {
    const first = batch[0]?.event
    if (!first) return true
    const keys = new DeclaredKeys([this.auditKey('ev'), this.auditKey('head'), this.auditKey('chain', first.chain), this.outbox.sourcesKey])
    const args: Array<string | number> = [first.chain]
    for (const { event, announce } of batch) {
      if (event.chain !== first.chain) throw new StatedError('an audit batch is one chain')
      const indexes = auditIndexEntries(event).flatMap(({ name, score }) => [keys.position(this.auditKey('idx', name)), score])
      args.push(event.seq, event.prevHash, event.hash, event.id, JSON.stringify(event), announce ? '1' : '0', Date.parse(String(event.time)), indexes.length / 2, ...indexes)
    }
    const done = await this.run(async () => await this.commands.auditAppend(keys.list.length, ...keys.list, ...args))
    return done === 1
  }

  async auditChainHead (chain: string): Promise<{ seq: number, hash: string } | undefined> {
    const head = await this.run(async () => await this.client.hget(this.auditKey('head'), chain))
    if (head === null) return undefined
    const [seq, hash] = head.split(' ')
    return { seq: Number(seq), hash: hash as string }
  }

  async auditChains (): Promise<string[]> {
    return (await this.run(async () => await this.client.hkeys(this.auditKey('head')))).sort()
  }

  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    const key = this.auditKey('idx', auditIndexName(page.index))
    const low = page.fromId === undefined ? '-' : `[${page.fromId}`
    const high = page.toId === undefined ? '+' : `(${page.toId}`
    return await this.run(async () => page.newestFirst
      ? await this.client.zrevrangebylex(key, high, low, 'LIMIT', 0, page.count)
      : await this.client.zrangebylex(key, low, high, 'LIMIT', 0, page.count))
  }

  async revealAuditHistory (subjectHash: string, day: string, max: number): Promise<number> {
    const keys = [this.auditKey('idx', hiddenIndexName(subjectHash)), this.auditKey('idx', auditIndexName({ kind: 'history', value: subjectHash }))]
    return await this.run(async () => await this.commands.auditRevealHistory(...keys, dayScore(day), max))
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    if (ids.length === 0) return []
    const values = await this.run(async () => await this.client.hmget(this.auditKey('ev'), ...ids))
    return values.filter((json): json is string => json !== null).map((json) => JSON.parse(json))
  }

  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    const seqs = Array.from({ length: count }, (_, i) => String(fromSeq + i))
    const ids = await this.run(async () => await this.client.hmget(this.auditKey('chain', chain), ...seqs))
    return await this.auditEvents(ids.filter((id): id is string => id !== null))
  }

  async putAuditCheckpoint (checkpoint: AuditCheckpointRecord): Promise<void> {
    await this.run(async () => await this.client.rpush(this.auditKey('cp'), JSON.stringify(checkpoint)))
  }

  async auditCheckpointCount (): Promise<number> {
    return await this.run(async () => await this.client.llen(this.auditKey('cp')))
  }

  async auditCheckpoints (start = 0, stop = -1): Promise<AuditCheckpointRecord[]> {
    const some = await this.run(async () => await this.client.lrange(this.auditKey('cp'), start, stop))
    return some.map((json) => JSON.parse(json))
  }

  async pruneAudit (upToSeq: Record<string, number>): Promise<number> {
    let removed = 0
    for (const [chain, upTo] of Object.entries(upToSeq)) {
      // batch after batch, each its own script: other commands run in between
      for (;;) {
        const count = await this.pruneAuditBatch(chain, upTo)
        if (count === undefined) break
        removed += count
      }
    }
    return removed
  }

  /** one retention batch (PRUNE_AUDIT): seqs removed, or undefined when nothing is left up to upTo */
  private async pruneAuditBatch (chain: string, upTo: number): Promise<number | undefined> {
    const chainKey = this.auditKey('chain', chain)
    for (;;) {
      const floor = Number(await this.run(async () => await this.client.hget(chainKey, 'floor')) ?? '1')
      if (floor > upTo) return undefined
      const seqs = Array.from({ length: Math.min(upTo, floor + PRUNE_BATCH - 1) - floor + 1 }, (_, i) => floor + i)
      const ids = await this.run(async () => await this.client.hmget(chainKey, ...seqs.map(String)))
      const present = ids.filter((id): id is string => id !== null)
      const events = present.length ? await this.run(async () => await this.client.hmget(this.auditKey('ev'), ...present)) : []
      const eventOf = new Map(present.map((id, i) => [id, events[i]]))
      const keys = new DeclaredKeys([this.auditKey('ev'), chainKey])
      const args: Array<string | number> = [floor, floor + seqs.length]
      seqs.forEach((seq, i) => {
        const id = ids[i] ?? ''
        const json = eventOf.get(id)
        const indexes = json ? auditIndexNames(JSON.parse(json) as StoredAuditEvent).map((name) => keys.position(this.auditKey('idx', name))) : []
        args.push(seq, id, indexes.length, ...indexes)
      })
      const removed = await this.run(async () => await this.commands.auditPrune(keys.list.length, ...keys.list, ...args))
      // another process pruned this chain meanwhile: read again from where it stopped
      if (removed >= 0) return removed
    }
  }

  // A subject's results all live in one hash, its partition, under its hash tag {s:<keyed hash>}:
  // a reuse query reads them with one command (one key, so nothing to declare or route apart).
  // The uniqueness record {n:…} and the id → subject pointer {d:…} live elsewhere; registration
  // writes all three idempotently, so a retry completes a half-done one.
  private partitionKey (subjectHash: string): string { return this.key(`s:${subjectHash}`, 'docs') }

  async registerDocument (keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome> {
    const naturalKey = this.key(`n:${keys.naturalKey}`)
    // the reservation names the id, partition and content; a retry with the same content
    // carries everything else needed to finish a registration a crash interrupted
    const reservation = { id: first.id, subjectHash: keys.subjectHash, contentHash: first.contentHash, createdAt: first.createdAt }
    const reserved = await this.run(async () => await this.client.set(naturalKey, JSON.stringify(reservation), 'NX'))
    if (reserved === 'OK') {
      await this.completeRegistration(keys.subjectHash, first)
      return { outcome: 'created', document: { versions: [first], files: {} } }
    }
    const existing = await this.run(async () => await this.client.get(naturalKey))
    if (existing === null) throw new StatedError('document reservation vanished')
    const record = JSON.parse(existing) as typeof reservation
    const found = await this.getDocumentIn(record.subjectHash, record.id)
    if (record.contentHash !== first.contentHash) {
      return { outcome: 'conflict', document: found ?? { versions: [{ ...first, id: record.id, createdAt: record.createdAt, contentHash: record.contentHash }], files: {} } }
    }
    if (found) {
      // version 1 can be in while the id → subject pointer is not (a crash between the two writes)
      await this.run(async () => await this.client.set(this.key(`d:${record.id}`), record.subjectHash))
      return { outcome: 'existing', document: found }
    }
    const completed = { ...first, id: record.id, createdAt: record.createdAt }
    await this.completeRegistration(record.subjectHash, completed)
    return { outcome: 'existing', document: { versions: [completed], files: {} } }
  }

  /** version 1 into the subject's partition, then the id → partition pointer; both idempotent */
  private async completeRegistration (subjectHash: string, first: StoredDocumentVersion): Promise<void> {
    await this.run(async () => await this.commands.documentPutFirst(this.partitionKey(subjectHash), first.id, first.type, JSON.stringify(first)))
    await this.run(async () => await this.client.set(this.key(`d:${first.id}`), subjectHash))
  }

  private async getDocumentIn (subjectHash: string, id: string): Promise<StoredDocument | undefined> {
    return documentsFromPartition(await this.run(async () => await this.client.hgetall(this.partitionKey(subjectHash))), { id })[0]
  }

  async findRegistration (naturalKey: string): Promise<{ id: string, contentHash: string } | undefined> {
    const json = await this.run(async () => await this.client.get(this.key(`n:${naturalKey}`)))
    if (json === null) return undefined
    const { id, contentHash } = JSON.parse(json) as { id: string, contentHash: string }
    return { id, contentHash }
  }

  async getDocument (id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined> {
    const subjectHash = await this.run(async () => await this.client.get(this.key(`d:${id}`)))
    if (subjectHash === null) return undefined
    const document = await this.getDocumentIn(subjectHash, id)
    return document ? { document, subjectHash } : undefined
  }

  async amendDocument (subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options: { carryFile?: boolean } = {}): Promise<false | { file?: StoredDocumentFile }> {
    const done = await this.run(async () => await this.commands.documentAmend(this.partitionKey(subjectHash), next.id, String(expectedVersion), JSON.stringify(next), options.carryFile ? '1' : '0'))
    if (done === 0) return false
    return typeof done === 'string' ? { file: JSON.parse(done) as StoredDocumentFile } : {}
  }

  async revokeDocument (subjectHash: string, id: string, revoked: NonNullable<StoredDocument['revoked']>): Promise<boolean> {
    const set = await this.run(async () => await this.client.hsetnx(this.partitionKey(subjectHash), `${id}|revoked`, JSON.stringify(revoked)))
    return set === 1
  }

  async attachDocumentFile (subjectHash: string, id: string, version: number, file: StoredDocumentFile): Promise<boolean> {
    const set = await this.run(async () => await this.client.hsetnx(this.partitionKey(subjectHash), `${id}|file:${version}`, JSON.stringify(file)))
    return set === 1
  }

  async documentsOfSubject (subjectHash: string, types?: string[]): Promise<StoredDocument[]> {
    const fields = await this.run(async () => await this.client.hgetall(this.partitionKey(subjectHash)))
    return documentsFromPartition(fields, types ? { types } : {})
  }

  async * documentIdPages (pageSize: number): AsyncIterable<string[]> {
    // the id → partition pointers {d:<id>}, scanned on every master (a cluster spreads them)
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
    const pattern = this.key('d:*')
    const start = this.key('d:').length - 1
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await this.run(async () => await node.scan(cursor, 'MATCH', pattern, 'COUNT', pageSize))
        cursor = next
        if (keys.length > 0) yield keys.map((key) => key.slice(start, -1))
      } while (cursor !== '0')
    }
  }

  async rewriteDocumentVersion (subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean> {
    const done = await this.run(async () => await this.commands.documentRewrite(this.partitionKey(subjectHash), `${previous.id}|v:${previous.version}`, JSON.stringify(previous), JSON.stringify(next)))
    return done === 1
  }

  private get typesKey (): string { return this.key('document-types') }

  async getDocumentType (code: string): Promise<DocumentTypeRecord | undefined> {
    return await this.hashRecord<DocumentTypeRecord>(this.typesKey, code)
  }

  async listDocumentTypes (): Promise<DocumentTypeRecord[]> {
    return await this.hashRecords<DocumentTypeRecord>(this.typesKey)
  }

  async putDocumentType (record: DocumentTypeRecord, expectedVersion: number): Promise<boolean> {
    // compare-and-set on the schema version: two admins changing a type cannot both win
    const done = await this.run(async () => await this.commands.documentTypePut(this.typesKey, record.code, String(expectedVersion), JSON.stringify(record)))
    return done === 1
  }

  private get agreementsKey (): string { return this.key('agreements') }

  async getAgreement (id: string): Promise<AgreementRecord | undefined> {
    return await this.hashRecord<AgreementRecord>(this.agreementsKey, id)
  }

  async putAgreement (agreement: AgreementRecord): Promise<{ created: boolean }> {
    return await this.putHashRecord(this.agreementsKey, agreement.id, agreement)
  }

  async listAgreements (): Promise<AgreementRecord[]> {
    return await this.hashRecords<AgreementRecord>(this.agreementsKey)
  }

  // who reused a document lives beside the document, under its subject's tag
  async recordReuse (subjectHash: string, documentId: string, reuse: { requester: string, version: number, dossierCode: string, procedureCode: string, at: string }): Promise<void> {
    await this.run(async () => await this.client.rpush(this.key(`s:${subjectHash}`, 'reuse', documentId), JSON.stringify(reuse)))
  }

  async reusesOf (subjectHash: string, documentId: string): Promise<Array<{ requester: string, version: number, dossierCode: string, procedureCode: string, at: string }>> {
    const all = await this.run(async () => await this.client.lrange(this.key(`s:${subjectHash}`, 'reuse', documentId), 0, -1))
    return all.map((json) => JSON.parse(json))
  }

  async dueOutboxSources (now: number, limit: number): Promise<string[]> {
    return await this.outbox.dueSources(now, limit)
  }

  async outboxEvent (id: string): Promise<OutboxEventRecord | undefined> {
    return await this.outbox.event(id)
  }

  async scheduleOutboxSource (source: string, at: number): Promise<void> {
    await this.outbox.schedule(source, at)
  }

  async dropOutboxSource (source: string): Promise<void> {
    await this.outbox.drop(source)
  }

  async publishOutboxEvent (source: string | undefined, event: Omit<OutboxEventRecord, 'cursor'>, deliveries: Array<{ destination: string, extra?: Record<string, unknown> }>, schedule: Array<{ source: string, at: number }>, now: number): Promise<OutboxEventRecord | undefined> {
    return await this.outbox.publish(source, event, deliveries, schedule, now)
  }

  async claimOutboxDeliveries (now: number, leaseMs: number, limit: number, lease: string): Promise<Array<{ delivery: OutboxDeliveryRecord, event: OutboxEventRecord }>> {
    return await this.outbox.claimDeliveries(now, leaseMs, limit, lease)
  }

  async settleOutboxDelivery (destination: string, eventId: string, lease: string, outcome: OutboxSettlement, now: number): Promise<boolean> {
    return await this.outbox.settle(destination, eventId, lease, outcome, now)
  }

  async replayOutbox (destination: string, after: number, limit: number, now: number): Promise<{ requeued: number, next?: number }> {
    return await this.outbox.replay(destination, after, limit, now)
  }

  async outboxDeliveries (destination: string, after: number, limit: number): Promise<OutboxDeliveryRecord[]> {
    return await this.outbox.list(destination, after, limit)
  }

  async outboxStatus (): Promise<OutboxDestinationStatus[]> {
    return await this.outbox.status()
  }

  async holdLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return await this.outbox.holdLease(name, owner, ttlMs)
  }

  // Statistics: one hash per day under {stats}; a query over a period reads its days together
  // (one write with auto-pipelining; a year is 366 small hashes), never the trail.
  async addReuseCounts (day: string, increments: Record<string, number>): Promise<void> {
    const key = this.key('stats', 'reuse', day)
    // issued together, they leave in one write (auto-pipelining); each increment is atomic
    await this.run(async () => await Promise.all(Object.entries(increments).map(async ([field, n]) => await this.client.hincrby(key, field, n))))
  }

  async reuseCounts (days: string[]): Promise<Record<string, number>> {
    const sum: Record<string, number> = {}
    if (days.length === 0) return sum
    const replies = await this.run(async () => await Promise.all(days.map(async (day) => await this.client.hgetall(this.key('stats', 'reuse', day)))))
    for (const counts of replies) {
      for (const [field, n] of Object.entries(counts)) sum[field] = (sum[field] ?? 0) + Number(n)
    }
    return sum
  }

  async revokeConsent (jti: string, ttlMs: number): Promise<void> {
    await this.run(async () => await this.client.set(this.hashedKey('consent-revoked', jti), '1', 'PX', px(ttlMs)))
  }

  async consentRevoked (jti: string): Promise<boolean> {
    return (await this.run(async () => await this.client.exists(this.hashedKey('consent-revoked', jti)))) === 1
  }

  async putDownloadGrant (token: string, grant: DownloadGrant, ttlMs: number): Promise<void> {
    await this.run(async () => await this.client.set(this.hashedKey('dl', token), JSON.stringify(grant), 'PX', px(ttlMs)))
  }

  async peekDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    const json = await this.run(async () => await this.client.get(this.hashedKey('dl', token)))
    return json === null ? undefined : JSON.parse(json)
  }

  async takeDownloadGrant (token: string): Promise<DownloadGrant | undefined> {
    const json = await this.run(async () => await this.client.getdel(this.hashedKey('dl', token)))
    return json === null ? undefined : JSON.parse(json)
  }

  async close (): Promise<void> {
    // QUIT lets Redis finish what it was sent; past the bound we drop the connection
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, this.quitTimeoutMs) })
    try {
      await Promise.race([this.client.quit().catch(() => {}), bound])
    } finally {
      clearTimeout(timer)
      this.client.disconnect()
    }
  }
}
