import { Redis, Cluster } from 'ioredis'
import type { RedisOptions, ClusterOptions } from 'ioredis'
import { StoreUnavailableError } from './errors.js'
import type { AgencyRecord, Persistence, SigningKeySetRecord, Store } from './store.js'
import { createHash } from 'node:crypto'

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

  constructor (options: RedisStoreOptions) {
    this.prefix = options.keyPrefix
    this.quitTimeoutMs = options.quitTimeoutMs
    this.logger = options.logger
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
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
        redisOptions,
        clusterRetryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000)
      }
      this.client = new Cluster(options.clusterNodes, clusterOptions)
    } else if (options.url) {
      this.client = new Redis(options.url, redisOptions)
    } else {
      throw new Error('RedisStore needs a url or cluster nodes')
    }
    // Without a listener ioredis would print every reconnection failure; log them, once a few seconds.
    this.client.on('error', (err: Error) => {
      const now = Date.now()
      if (now - this.lastErrorLog > 5000) {
        this.lastErrorLog = now
        this.logger?.warn({ err: { message: err.message } }, 'redis connection error')
      }
    })
    this.client.on('ready', () => this.logger?.info('redis connection ready'))
  }

  /**
   * Opens the connection. It does not fail when Redis is not there yet: the gateway starts,
   * reports not-ready, and becomes ready once the client gets through.
   */
  async connect (): Promise<void> {
    try {
      await this.client.connect()
    } catch (err) {
      this.logger?.warn({ err: { message: (err as Error).message } }, 'redis not reachable at start; retrying in the background')
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
    // ReplyError is the server rejecting a command: only a few of those mean "unavailable"
    if (err.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(err.message)) return err
    return new StoreUnavailableError('the store is unavailable', { cause: err })
  }

  async ping (): Promise<void> {
    await this.run(async () => {
      if (this.client instanceof Cluster) {
        await Promise.all(this.client.nodes('master').map(async (node) => await node.ping()))
        if (this.client.status !== 'ready') throw new Error(`cluster ${this.client.status}`)
      } else {
        await this.client.ping()
      }
    })
  }

  async persistence (): Promise<Persistence> {
    return await this.run(async () => {
      const node = this.client instanceof Cluster ? this.client.nodes('master')[0] : this.client
      if (!node) throw new Error('no cluster node')
      const [, aof] = await node.config('GET', 'appendonly') as [string, string]
      const [, fsync] = await node.config('GET', 'appendfsync') as [string, string]
      const [, save] = await node.config('GET', 'save') as [string, string]
      const result: Persistence = { aof: aof === 'yes', rdb: (save ?? '').trim() !== '' }
      if (result.aof) result.appendfsync = fsync
      return result
    })
  }

  // All agencies live in one hash: one key, one slot, HGETALL lists them (there are hundreds, not millions).
  private get agenciesKey (): string { return this.key('agencies') }

  async getAgency (code: string): Promise<AgencyRecord | undefined> {
    const json = await this.run(async () => await this.client.hget(this.agenciesKey, code))
    return json === null ? undefined : JSON.parse(json)
  }

  async listAgencies (): Promise<AgencyRecord[]> {
    const all = await this.run(async () => await this.client.hgetall(this.agenciesKey))
    return Object.keys(all).sort().map((code) => JSON.parse(all[code] as string))
  }

  async putAgency (agency: AgencyRecord): Promise<{ created: boolean }> {
    const added = await this.run(async () => await this.client.hset(this.agenciesKey, agency.code, JSON.stringify(agency)))
    return { created: added === 1 }
  }

  async claimOnce (namespace: string, id: string, ttlMs: number): Promise<boolean> {
    // the id is hashed: keys stay short and carry nothing a caller chose verbatim
    const digest = createHash('sha256').update(id).digest('base64url')
    const key = this.key(`once:${namespace}:${digest}`)
    const set = await this.run(async () => await this.client.set(key, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'))
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
    const script = `
      local current = tonumber(redis.call('HGET', KEYS[1], 'revision') or '0')
      if current ~= tonumber(ARGV[1]) then return 0 end
      redis.call('HSET', KEYS[1], 'revision', tonumber(ARGV[1]) + 1, 'keys', ARGV[2])
      return 1`
    const done = await this.run(async () => await this.client.eval(script, 1, this.signingKeysKey, String(expectedRevision), JSON.stringify(keys)))
    return done === 1
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
