/**
 * The one Redis connection every aggregate's store shares: the ioredis client (standalone or
 * cluster), the key scheme `<prefix>{<tag>}:<rest>`, the failure policy (connectivity errors
 * become StoreUnavailableError) and what concerns the server as a whole: ping, persistence,
 * close.
 *
 * Failure policy: no offline queue and no retries of in-flight commands, so a request that needs
 * Redis while it is away fails at once with StoreUnavailableError (→ 503 + Retry-After) instead
 * of waiting; the client keeps reconnecting in the background and the gateway recovers by itself.
 */
import { Redis, Cluster } from 'ioredis'
import type { RedisOptions, ClusterOptions } from 'ioredis'
import { createHash } from 'node:crypto'
import { StoreUnavailableError } from '../errors.js'
import type { Persistence } from '../stores.js'
import { StatedError } from '../../lib/error-description.js'

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

export type Client = Redis | Cluster

/** how much of what was acknowledged survives a crash, in order: nothing, up to the last snapshot, AOF fsync no, everysec, always */
function durability (persistence: Persistence): number {
  if (!persistence.aof) return persistence.rdb ? 1 : 0
  return 2 + Math.max(0, ['no', 'everysec', 'always'].indexOf(persistence.appendfsync ?? 'no'))
}

/** a TTL for PX: whole milliseconds, at least one */
export const px = (ms: number): number => Math.max(1, Math.ceil(ms))

/** What metrics are told of each command: its name (never its arguments), seconds until its reply, whether it failed. */
export type CommandObserver = (command: string, seconds: number, failed: boolean) => void

/** the little of an ioredis command an observer reads */
interface SentCommand { name: string, args: unknown[], promise: Promise<unknown>, observed?: boolean }

/** Reply errors that mean "the server is there but cannot serve now", not a bug in our command. */
const UNAVAILABLE_REPLY = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|BUSY|NOREPLICAS|MISCONF)\b/

export class RedisConnection {
  readonly client: Client
  private readonly prefix: string
  private readonly quitTimeoutMs: number
  private readonly logger: StoreLogger | undefined
  private lastErrorLog = 0
  /** scripts' names by SHA-1, to name an EVALSHA by what it runs */
  private readonly scriptNames = new Map<string, string>()

  /** `variableKeyCommands`: the scripts called with their number of keys first (see below) */
  constructor (options: RedisStoreOptions, variableKeyCommands: string[]) {
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
        autoPipeliningIgnoredCommands: [...variableKeyCommands],
        redisOptions,
        clusterRetryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000)
      }
      this.client = new Cluster(options.clusterNodes, clusterOptions)
    } else if (options.url) {
      this.client = new Redis(options.url, redisOptions)
    } else {
      throw new StatedError('RedisStores needs a url or cluster nodes')
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

  /**
   * A key named by the SHA-256 of a caller-supplied value (a jti, a download token): keys stay
   * short, carry nothing a caller chose verbatim, and a bearer secret is never a key in clear.
   */
  hashedKey (kind: string, value: string): string {
    return this.key(`${kind}:${createHash('sha256').update(value).digest('base64url')}`)
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

  /**
   * Registers a Lua script as a command: loaded once and called by SHA (EVALSHA, falling back
   * to EVAL after a restart), not sent whole every time. Without `numberOfKeys` the caller
   * passes the number of keys first (a script whose keys vary).
   */
  script<R> (name: string, lua: string, numberOfKeys?: number, replies: 'text' | 'bytes' = 'text'): (...args: Array<string | number | Buffer>) => Promise<R> {
    this.client.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua })
    this.scriptNames.set(createHash('sha1').update(lua).digest('hex'), name)
    // ioredis defines `<name>Buffer` beside every command: the same, with replies as bytes
    const command = (this.client as unknown as Record<string, (...args: Array<string | number | Buffer>) => Promise<R>>)[replies === 'bytes' ? `${name}Buffer` : name] as (...args: Array<string | number | Buffer>) => Promise<R>
    return async (...args) => await command.apply(this.client, args)
  }

  /**
   * Tells `observer` of every command sent from now on (metrics, plugins/metrics.ts): its name
   * (a script's by the name it was registered under), how long until its reply, whether it
   * failed. Nothing is wrapped unless this is called. Returns what stops it.
   */
  observeCommands (observer: CommandObserver): () => void {
    // every command goes out through the client's sendCommand: auto-pipelined ones and scripts
    // too, and a cluster's before it picks the node
    const client = this.client as unknown as { sendCommand: (command: SentCommand, ...rest: unknown[]) => unknown }
    const send = client.sendCommand
    const scriptNames = this.scriptNames
    // scripts others defined on the client (the rate limiter's) are named as ioredis knows them
    const scriptName = (sha: string): string => {
      let name = scriptNames.get(sha)
      if (name === undefined) {
        const defined = (this.client as unknown as { scriptsSet?: Record<string, { sha?: string }> }).scriptsSet ?? {}
        name = Object.entries(defined).find(([, script]) => script.sha === sha)?.[0] ?? 'script'
        scriptNames.set(sha, name)
      }
      return name
    }
    client.sendCommand = function (this: unknown, command: SentCommand, ...rest: unknown[]) {
      // a command sent again (a cluster's redirection) is timed from its first sending
      if (!command.observed) {
        command.observed = true
        const started = performance.now()
        // a script goes out as EVALSHA of its SHA-1 (ioredis turns it into EVAL on the wire when
        // the connection has not loaded it yet, after this)
        const name = command.name === 'evalsha' ? scriptName(String(command.args[0])) : command.name.toLowerCase()
        command.promise.then(
          () => { observer(name, (performance.now() - started) / 1000, false) },
          () => { observer(name, (performance.now() - started) / 1000, true) }
        )
      }
      return send.call(this, command, ...rest)
    }
    const own = Object.hasOwn(client, 'sendCommand')
    return () => {
      if (own) client.sendCommand = send
      else delete (client as { sendCommand?: unknown }).sendCommand
    }
  }

  /** whether the store is a Redis Cluster: a script then reaches only the keys of one slot */
  get isCluster (): boolean {
    return this.client instanceof Cluster
  }

  // Registries (agencies, document types, agreements) are each one hash of JSON records: one
  // key, one slot, HGETALL lists them (there are hundreds, not millions).
  async hashRecord<T> (key: string, field: string): Promise<T | undefined> {
    const json = await this.run(async () => await this.client.hget(key, field))
    return json === null ? undefined : JSON.parse(json) as T
  }

  async hashRecords<T> (key: string): Promise<T[]> {
    const all = await this.run(async () => await this.client.hgetall(key))
    return Object.keys(all).sort().map((field) => JSON.parse(all[field] as string) as T)
  }

  /** the masters holding the data: every node of a cluster's, or the one server */
  masters (): Redis[] {
    return this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
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
      const nodes = this.masters()
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
