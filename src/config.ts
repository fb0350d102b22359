import { readFileSync } from 'node:fs'
import { envSchema } from 'env-schema'
import { Keyring, parseKeyFile, parseKeyList } from './lib/encryption.js'
import { OutboundRefusedError, allowEntryProblem, checkOutboundUrl, outboundPolicy } from './lib/outbound.js'
import type { OutboundSettings } from './lib/outbound.js'
import { StatedError } from './lib/error-description.js'

/**
 * Configuration comes from the environment only, is validated once at start, and a bad value
 * stops the process with a message naming the variable. Every variable is documented in
 * docs/configuration.md; development defaults make `npm start` work with nothing set.
 */

export type NodeEnv = 'development' | 'test' | 'production'

export interface Config {
  nodeEnv: NodeEnv
  host: string
  port: number
  logLevel: string
  /** the gateway's id: `iss` of what it signs, `aud` it expects in client assertions */
  gatewayIssuer: string
  redis:
    | { mode: 'memory' }
    | { mode: 'standalone', url: string, keyPrefix: string, commandTimeoutMs: number, quitTimeoutMs: number }
    | { mode: 'cluster', nodes: Array<{ host: string, port: number }>, keyPrefix: string, commandTimeoutMs: number, quitTimeoutMs: number }
  /** start in production on a Redis whose persistence loses acknowledged writes in a crash (warned, not refused) */
  allowNoPersistence: boolean
  subjectPepper: string
  signing: {
    /** JWKS file with the gateway's private keys; absent: keys kept in the store (not in production) */
    keysFile: string | undefined
    /** algorithm of keys the gateway generates */
    alg: 'EdDSA' | 'ES256'
    /** how long a replaced key stays published */
    retentionMs: number
  }
  accessTokenTtlSeconds: number
  /** how long past its exp an access token is still accepted (clock skew between processes and hosts) */
  accessTokenClockSkewSeconds: number
  /** the first admin agency, from configuration */
  admin: { code: string, jwks: { keys: Array<Record<string, unknown>> } } | undefined
  /** where the first-run demo writes its agencies' key pairs */
  demoDir: string
  auditLogFile: string | undefined
  audit: {
    checkpointIntervalMs: number
    /** retention in days (the archive's when there is one, else the store's); 0 keeps everything */
    retentionDays: number
    /** the archive tier (PostgreSQL): undefined keeps the whole trail in the store */
    archive: {
      url: string
      /** days of events the store keeps; older ones are archived */
      hotDays: number
      intervalMs: number
      /** apply the archive's pending schema migrations at start */
      migrateAtStart: boolean
    } | undefined
  }
  portalWebhookUrl: string | undefined
  outbox: {
    /** whether this process delivers (fan-out and webhooks); any number of processes may */
    worker: boolean
    pollMs: number
    /** attempts before a delivery is dead-lettered */
    maxAttempts: number
    /** first retry delay; doubled each attempt (with jitter) up to retryMaxMs */
    retryBaseMs: number
    retryMaxMs: number
    /** how long a receiver has to answer */
    timeoutMs: number
    /** deliveries in flight at once in this process */
    concurrency: number
  }
  /** where digitized files are kept (content-addressed) */
  blobDir: string
  /** encryption at rest of document data and files; absent: stored in clear */
  encryption: Keyring | undefined
  limits: {
    batchBytes: number
    bodyBytes: number
    fileBytes: number
    batchLines: number
    /** the request line and header section together (Node's maxHeaderSize); past it: 431 */
    headerBytes: number
  }
  timeouts: {
    requestMs: number
    keepAliveMs: number
    shutdownMs: number
    shutdownDrainDelayMs: number
  }
  /** requests per agency (or, before authentication, per client address) and route */
  rateLimit: {
    /** requests a minute on one route; 0: no rate limits */
    perMinute: number
    /** the counting window; limits are scaled to it */
    windowMs: number
    /** per route group (the route's OpenAPI tag, kebab-case): requests a minute */
    routes: Record<string, number>
    /** per agency code: requests a minute on each route */
    agencies: Record<string, number>
  }
  /** refused requests (authentication, authorization, token requests) per client address */
  refusals: {
    /** refusals a minute one client address may get before it is answered 429; 0: no limit */
    limitPerMinute: number
    /** repeated refusals (same address, action and reason) are audited as one event per interval */
    auditIntervalMs: number
  }
  /** load shedding: past any of these (0: not checked) requests get a 503 */
  loadShedding: {
    maxEventLoopDelayMs: number
    maxHeapBytes: number
    maxRssBytes: number
    sampleIntervalMs: number
  }
  /** where the gateway may send requests of its own (jwksUri, webhooks): lib/outbound.ts */
  outbound: OutboundSettings
  /** Prometheus metrics on a listener of their own (plugins/metrics.ts); undefined: no metrics at all */
  metrics: { host: string, port: number } | undefined
  /** OpenTelemetry traces, as the OTEL_* variables say (tracingWanted): src/tracing.ts */
  tracing: boolean
  /** the web console (/console) */
  console: {
    /** the reform's target reuse rate, drawn as a line on the console's charts (per cent) */
    reuseTargetPercent: number
  }
}

export class ConfigError extends StatedError {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** the pepper used when none is configured; refused in production */
export const DEVELOPMENT_PEPPER = 'development-only-subject-pepper-do-not-use-in-production'

const schema = {
  type: 'object',
  properties: {
    NODE_ENV: { type: 'string', enum: ['development', 'test', 'production'], default: 'development' },
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3000 },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    GATEWAY_ISSUER: { type: 'string', pattern: '^https?://[^\\s]+$' },
    REDIS_URL: { type: 'string', pattern: '^rediss?://[^\\s]*$' },
    REDIS_CLUSTER_NODES: { type: 'string', pattern: '^[^\\s,:]+:[0-9]{1,5}(,[^\\s,:]+:[0-9]{1,5})*$' },
    REDIS_KEY_PREFIX: { type: 'string', pattern: '^[A-Za-z0-9:_.-]{0,32}$', default: 'rg:' },
    REDIS_COMMAND_TIMEOUT_MS: { type: 'integer', minimum: 50, maximum: 60000, default: 1000 },
    REDIS_QUIT_TIMEOUT_MS: { type: 'integer', minimum: 0, maximum: 60000, default: 2000 },
    ALLOW_NO_PERSISTENCE: { type: 'boolean', default: false },
    SUBJECT_PEPPER: { type: 'string', minLength: 32 },
    SIGNING_KEYS_FILE: { type: 'string', minLength: 1 },
    SIGNING_KEY_ALG: { type: 'string', enum: ['EdDSA', 'ES256'], default: 'EdDSA' },
    SIGNING_KEY_RETENTION_DAYS: { type: 'integer', minimum: 1, maximum: 3650, default: 400 },
    ACCESS_TOKEN_TTL_SECONDS: { type: 'integer', minimum: 30, maximum: 3600, default: 300 },
    // SPEC §6: the clock-skew tolerance on a JWT is at most 60 s
    ACCESS_TOKEN_CLOCK_SKEW_SECONDS: { type: 'integer', minimum: 0, maximum: 60, default: 60 },
    ADMIN_AGENCY_CODE: { type: 'string', pattern: '^[0-9A-Z]{3}\\.[0-9A-Z]{2}\\.[0-9A-Z]{2}\\.[A-Z][0-9]{2}$' },
    ADMIN_AGENCY_JWKS: { type: 'string', minLength: 2 },
    DEMO_DIR: { type: 'string', minLength: 1, default: '.demo' },
    AUDIT_LOG_FILE: { type: 'string', minLength: 1 },
    AUDIT_CHECKPOINT_INTERVAL_MS: { type: 'integer', minimum: 1000, maximum: 86400000, default: 60000 },
    AUDIT_RETENTION_DAYS: { type: 'integer', minimum: 0, maximum: 36500, default: 0 },
    AUDIT_ARCHIVE_URL: { type: 'string', pattern: '^postgres(ql)?://[^\\s]+$' },
    AUDIT_HOT_DAYS: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
    AUDIT_ARCHIVE_INTERVAL_MS: { type: 'integer', minimum: 1000, maximum: 86400000, default: 60000 },
    AUDIT_ARCHIVE_MIGRATE: { type: 'boolean', default: true },
    PORTAL_WEBHOOK_URL: { type: 'string', pattern: '^https?://[^\\s]+$' },
    OUTBOX_WORKER: { type: 'boolean', default: true },
    OUTBOX_POLL_MS: { type: 'integer', minimum: 10, maximum: 60000, default: 1000 },
    OUTBOX_MAX_ATTEMPTS: { type: 'integer', minimum: 1, maximum: 100, default: 15 },
    OUTBOX_RETRY_BASE_MS: { type: 'integer', minimum: 10, maximum: 3600000, default: 2000 },
    OUTBOX_RETRY_MAX_MS: { type: 'integer', minimum: 10, maximum: 86400000, default: 3600000 },
    OUTBOX_CONCURRENCY: { type: 'integer', minimum: 1, maximum: 256, default: 8 },
    WEBHOOK_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 120000, default: 10000 },
    BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 104857600, default: 1048576 },
    FILE_SIZE_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 20971520 },
    BATCH_MAX_LINES: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
    BATCH_BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 67108864 },
    BLOB_DIR: { type: 'string', minLength: 1, default: 'data/blobs' },
    ENCRYPTION_KEYS: { type: 'string', minLength: 1 },
    ENCRYPTION_KEYS_FILE: { type: 'string', minLength: 1 },
    REQUEST_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 600000, default: 30000 },
    KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 600000, default: 72000 },
    SHUTDOWN_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 },
    SHUTDOWN_DRAIN_DELAY_MS: { type: 'integer', minimum: 0, maximum: 600000, default: 0 },
    MAX_HEADER_BYTES: { type: 'integer', minimum: 1024, maximum: 1048576, default: 16384 },
    RATE_LIMIT_PER_MINUTE: { type: 'integer', minimum: 0, maximum: 100000000, default: 600 },
    RATE_LIMIT_WINDOW_MS: { type: 'integer', minimum: 100, maximum: 3600000, default: 60000 },
    RATE_LIMIT_ROUTES: { type: 'string', pattern: '^[a-z][a-z-]*=[0-9]{1,9}(,[a-z][a-z-]*=[0-9]{1,9})*$' },
    RATE_LIMIT_AGENCIES: { type: 'string', pattern: '^[0-9A-Z]{3}\\.[0-9A-Z]{2}\\.[0-9A-Z]{2}\\.[A-Z][0-9]{2}=[0-9]{1,9}(,[0-9A-Z]{3}\\.[0-9A-Z]{2}\\.[0-9A-Z]{2}\\.[A-Z][0-9]{2}=[0-9]{1,9})*$' },
    AUTH_FAILURE_LIMIT_PER_MINUTE: { type: 'integer', minimum: 0, maximum: 100000000, default: 60 },
    AUTH_FAILURE_AUDIT_INTERVAL_MS: { type: 'integer', minimum: 100, maximum: 3600000, default: 60000 },
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: { type: 'integer', minimum: 0, maximum: 600000 },
    LOAD_SHED_MAX_HEAP_BYTES: { type: 'integer', minimum: 0, default: 0 },
    LOAD_SHED_MAX_RSS_BYTES: { type: 'integer', minimum: 0, default: 0 },
    LOAD_SHED_SAMPLE_INTERVAL_MS: { type: 'integer', minimum: 10, maximum: 60000, default: 1000 },
    OUTBOUND_ALLOWED_HOSTS: { type: 'string', minLength: 1 },
    OUTBOUND_ALLOW_HTTP: { type: 'boolean' },
    METRICS_PORT: { type: 'integer', minimum: 0, maximum: 65535 },
    METRICS_HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    // OpenTelemetry: read by its SDK itself (src/tracing.ts); here to be checked and documented
    OTEL_SDK_DISABLED: { type: 'string', pattern: '^\\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\\s*$' },
    OTEL_TRACES_EXPORTER: { type: 'string', pattern: '^\\s*(otlp|zipkin|console|none)\\s*(,\\s*(otlp|zipkin|console|none)\\s*)*$' },
    OTEL_EXPORTER_OTLP_ENDPOINT: { type: 'string', pattern: '^https?://[^\\s]+$' },
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: { type: 'string', pattern: '^https?://[^\\s]+$' },
    OTEL_EXPORTER_OTLP_PROTOCOL: { type: 'string', enum: ['http/protobuf', 'http/json', 'grpc'] },
    OTEL_EXPORTER_OTLP_HEADERS: { type: 'string' },
    OTEL_SERVICE_NAME: { type: 'string' },
    OTEL_RESOURCE_ATTRIBUTES: { type: 'string' },
    OTEL_TRACES_SAMPLER: { type: 'string', enum: ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] },
    OTEL_TRACES_SAMPLER_ARG: { type: 'string' },
    OTEL_PROPAGATORS: { type: 'string' },
    REUSE_TARGET_PERCENT: { type: 'number', minimum: 0, maximum: 100, default: 30 }
  }
} as const

/** the names of the variables the gateway reads, each documented in docs/configuration.md */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.keys(schema.properties)

interface RawEnv {
  NODE_ENV: NodeEnv
  HOST: string
  PORT: number
  LOG_LEVEL: string
  GATEWAY_ISSUER?: string
  REDIS_URL?: string
  REDIS_CLUSTER_NODES?: string
  REDIS_KEY_PREFIX: string
  REDIS_COMMAND_TIMEOUT_MS: number
  REDIS_QUIT_TIMEOUT_MS: number
  ALLOW_NO_PERSISTENCE: boolean
  SUBJECT_PEPPER?: string
  SIGNING_KEYS_FILE?: string
  SIGNING_KEY_ALG: 'EdDSA' | 'ES256'
  SIGNING_KEY_RETENTION_DAYS: number
  ACCESS_TOKEN_TTL_SECONDS: number
  ACCESS_TOKEN_CLOCK_SKEW_SECONDS: number
  ADMIN_AGENCY_CODE?: string
  ADMIN_AGENCY_JWKS?: string
  DEMO_DIR: string
  AUDIT_LOG_FILE?: string
  AUDIT_CHECKPOINT_INTERVAL_MS: number
  AUDIT_RETENTION_DAYS: number
  AUDIT_ARCHIVE_URL?: string
  AUDIT_HOT_DAYS: number
  AUDIT_ARCHIVE_INTERVAL_MS: number
  AUDIT_ARCHIVE_MIGRATE: boolean
  PORTAL_WEBHOOK_URL?: string
  OUTBOX_WORKER: boolean
  OUTBOX_POLL_MS: number
  OUTBOX_MAX_ATTEMPTS: number
  OUTBOX_RETRY_BASE_MS: number
  OUTBOX_RETRY_MAX_MS: number
  OUTBOX_CONCURRENCY: number
  WEBHOOK_TIMEOUT_MS: number
  BODY_LIMIT_BYTES: number
  FILE_SIZE_LIMIT_BYTES: number
  BATCH_MAX_LINES: number
  BATCH_BODY_LIMIT_BYTES: number
  BLOB_DIR: string
  ENCRYPTION_KEYS?: string
  ENCRYPTION_KEYS_FILE?: string
  REQUEST_TIMEOUT_MS: number
  KEEP_ALIVE_TIMEOUT_MS: number
  SHUTDOWN_TIMEOUT_MS: number
  SHUTDOWN_DRAIN_DELAY_MS: number
  MAX_HEADER_BYTES: number
  RATE_LIMIT_PER_MINUTE: number
  RATE_LIMIT_WINDOW_MS: number
  RATE_LIMIT_ROUTES?: string
  RATE_LIMIT_AGENCIES?: string
  AUTH_FAILURE_LIMIT_PER_MINUTE: number
  AUTH_FAILURE_AUDIT_INTERVAL_MS: number
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS?: number
  LOAD_SHED_MAX_HEAP_BYTES: number
  LOAD_SHED_MAX_RSS_BYTES: number
  LOAD_SHED_SAMPLE_INTERVAL_MS: number
  OUTBOUND_ALLOWED_HOSTS?: string
  OUTBOUND_ALLOW_HTTP?: boolean
  METRICS_PORT?: number
  METRICS_HOST: string
  OTEL_SDK_DISABLED?: string
  OTEL_TRACES_EXPORTER?: string
  OTEL_EXPORTER_OTLP_ENDPOINT?: string
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string
  REUSE_TARGET_PERCENT: number
}

/**
 * Whether the standard OpenTelemetry variables turn traces on, as its SDK reads them: an exporter
 * named in OTEL_TRACES_EXPORTER (its first one not `none`), or else an OTLP endpoint set; never
 * with OTEL_SDK_DISABLED=true. Off by default: then the SDK is not even loaded.
 */
export function tracingWanted (env: Pick<RawEnv, 'OTEL_SDK_DISABLED' | 'OTEL_TRACES_EXPORTER' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'>): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '' && name !== 'null')
  if (exporters.length > 0) return exporters[0] !== 'none'
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

/** ADMIN_AGENCY_JWKS is the JWKS itself (JSON) or the path of a file holding it. */
function readJwks (value: string): { keys: Array<Record<string, unknown>> } {
  let text = value
  if (!value.trimStart().startsWith('{')) {
    try {
      text = readFileSync(value, 'utf8')
    } catch {
      throw new ConfigError(`invalid configuration: ADMIN_AGENCY_JWKS: cannot read file ${value}`)
    }
  }
  let jwks: unknown
  try {
    jwks = JSON.parse(text)
  } catch {
    throw new ConfigError('invalid configuration: ADMIN_AGENCY_JWKS is not JSON')
  }
  const keys = (jwks as { keys?: unknown }).keys
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError('invalid configuration: ADMIN_AGENCY_JWKS must be a JWKS: {"keys": [...]}')
  return { keys }
}

/** ENCRYPTION_KEYS (`id:base64key,…`) or ENCRYPTION_KEYS_FILE (a JWKS of oct keys): the first key encrypts. */
function readEncryptionKeys (list: string | undefined, file: string | undefined): Keyring | undefined {
  if (list && file) throw new ConfigError('invalid configuration: set ENCRYPTION_KEYS or ENCRYPTION_KEYS_FILE, not both')
  if (!list && !file) return undefined
  let text = list as string
  if (file) {
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new ConfigError(`invalid configuration: ENCRYPTION_KEYS_FILE: cannot read file ${file}`)
    }
  }
  try {
    return new Keyring(file ? parseKeyFile(text, `ENCRYPTION_KEYS_FILE ${file}`) : parseKeyList(text))
  } catch (err) {
    // the messages name key ids and positions, never key material
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`)
  }
}

/** Reads and validates the configuration; throws ConfigError naming the offending variable. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as it does for most tools that read the environment.
  const data: Record<string, string> = {}
  for (const key of Object.keys(schema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') data[key] = value
  }

  let raw: RawEnv
  try {
    raw = envSchema<RawEnv>({ schema, data, dotenv: false, env: false })
  } catch (err) {
    // ajv says e.g. "env/PORT must be <= 65535"; keep its words, they name the variable
    const message = (err as Error).message.replace(/env\//g, '')
    throw new ConfigError(`invalid configuration: ${message}`)
  }

  const production = raw.NODE_ENV === 'production'
  if (raw.AUDIT_ARCHIVE_URL && raw.AUDIT_RETENTION_DAYS > 0 && raw.AUDIT_RETENTION_DAYS <= raw.AUDIT_HOT_DAYS) {
    throw new ConfigError(`invalid configuration: AUDIT_RETENTION_DAYS (${raw.AUDIT_RETENTION_DAYS}) must be longer than AUDIT_HOT_DAYS (${raw.AUDIT_HOT_DAYS}): events are archived after the hot window and dropped from the archive after retention`)
  }
  if (raw.REDIS_URL && raw.REDIS_CLUSTER_NODES) {
    throw new ConfigError('invalid configuration: set REDIS_URL or REDIS_CLUSTER_NODES, not both')
  }
  if (production && !raw.REDIS_URL && !raw.REDIS_CLUSTER_NODES) {
    throw new ConfigError('invalid configuration: REDIS_URL or REDIS_CLUSTER_NODES is required when NODE_ENV=production (the embedded store keeps nothing across restarts)')
  }
  if (production && !raw.SUBJECT_PEPPER) {
    throw new ConfigError('invalid configuration: SUBJECT_PEPPER is required when NODE_ENV=production (at least 32 characters of secret)')
  }
  if (production && !raw.GATEWAY_ISSUER) {
    throw new ConfigError('invalid configuration: GATEWAY_ISSUER is required when NODE_ENV=production (the public https URL of this gateway)')
  }

  if (production && !raw.SIGNING_KEYS_FILE) {
    throw new ConfigError('invalid configuration: SIGNING_KEYS_FILE is required when NODE_ENV=production (create one with: reuse-gateway signing-keys generate --out FILE)')
  }
  if (Boolean(raw.ADMIN_AGENCY_CODE) !== Boolean(raw.ADMIN_AGENCY_JWKS)) {
    throw new ConfigError('invalid configuration: ADMIN_AGENCY_CODE and ADMIN_AGENCY_JWKS go together')
  }
  const admin = raw.ADMIN_AGENCY_CODE && raw.ADMIN_AGENCY_JWKS
    ? { code: raw.ADMIN_AGENCY_CODE, jwks: readJwks(raw.ADMIN_AGENCY_JWKS) }
    : undefined

  const redisCommon = {
    keyPrefix: raw.REDIS_KEY_PREFIX,
    commandTimeoutMs: raw.REDIS_COMMAND_TIMEOUT_MS,
    quitTimeoutMs: raw.REDIS_QUIT_TIMEOUT_MS
  }
  let redis: Config['redis'] = { mode: 'memory' }
  if (raw.REDIS_URL) redis = { mode: 'standalone', url: raw.REDIS_URL, ...redisCommon }
  if (raw.REDIS_CLUSTER_NODES) {
    const nodes = raw.REDIS_CLUSTER_NODES.split(',').map((node) => {
      const i = node.lastIndexOf(':')
      return { host: node.slice(0, i), port: Number(node.slice(i + 1)) }
    })
    redis = { mode: 'cluster', nodes, ...redisCommon }
  }

  const outbound = outboundSettings(raw)

  return {
    nodeEnv: raw.NODE_ENV,
    host: raw.HOST,
    port: raw.PORT,
    logLevel: raw.LOG_LEVEL,
    gatewayIssuer: (raw.GATEWAY_ISSUER ?? listeningUrl(raw.HOST, raw.PORT)).replace(/\/+$/, ''),
    redis,
    allowNoPersistence: raw.ALLOW_NO_PERSISTENCE,
    subjectPepper: raw.SUBJECT_PEPPER ?? DEVELOPMENT_PEPPER,
    signing: {
      keysFile: raw.SIGNING_KEYS_FILE,
      alg: raw.SIGNING_KEY_ALG,
      retentionMs: raw.SIGNING_KEY_RETENTION_DAYS * 86_400_000
    },
    accessTokenTtlSeconds: raw.ACCESS_TOKEN_TTL_SECONDS,
    accessTokenClockSkewSeconds: raw.ACCESS_TOKEN_CLOCK_SKEW_SECONDS,
    admin,
    demoDir: raw.DEMO_DIR,
    auditLogFile: raw.AUDIT_LOG_FILE,
    audit: {
      checkpointIntervalMs: raw.AUDIT_CHECKPOINT_INTERVAL_MS,
      retentionDays: raw.AUDIT_RETENTION_DAYS,
      archive: raw.AUDIT_ARCHIVE_URL
        ? { url: raw.AUDIT_ARCHIVE_URL, hotDays: raw.AUDIT_HOT_DAYS, intervalMs: raw.AUDIT_ARCHIVE_INTERVAL_MS, migrateAtStart: raw.AUDIT_ARCHIVE_MIGRATE }
        : undefined
    },
    portalWebhookUrl: raw.PORTAL_WEBHOOK_URL,
    outbox: {
      worker: raw.OUTBOX_WORKER,
      pollMs: raw.OUTBOX_POLL_MS,
      maxAttempts: raw.OUTBOX_MAX_ATTEMPTS,
      retryBaseMs: raw.OUTBOX_RETRY_BASE_MS,
      retryMaxMs: Math.max(raw.OUTBOX_RETRY_MAX_MS, raw.OUTBOX_RETRY_BASE_MS),
      timeoutMs: raw.WEBHOOK_TIMEOUT_MS,
      concurrency: raw.OUTBOX_CONCURRENCY
    },
    blobDir: raw.BLOB_DIR,
    encryption: readEncryptionKeys(raw.ENCRYPTION_KEYS, raw.ENCRYPTION_KEYS_FILE),
    limits: {
      batchBytes: raw.BATCH_BODY_LIMIT_BYTES,
      bodyBytes: raw.BODY_LIMIT_BYTES,
      fileBytes: raw.FILE_SIZE_LIMIT_BYTES,
      batchLines: raw.BATCH_MAX_LINES,
      headerBytes: raw.MAX_HEADER_BYTES
    },
    timeouts: {
      requestMs: raw.REQUEST_TIMEOUT_MS,
      keepAliveMs: raw.KEEP_ALIVE_TIMEOUT_MS,
      shutdownMs: raw.SHUTDOWN_TIMEOUT_MS,
      shutdownDrainDelayMs: raw.SHUTDOWN_DRAIN_DELAY_MS
    },
    rateLimit: {
      perMinute: raw.RATE_LIMIT_PER_MINUTE,
      windowMs: raw.RATE_LIMIT_WINDOW_MS,
      routes: pairs(raw.RATE_LIMIT_ROUTES),
      agencies: pairs(raw.RATE_LIMIT_AGENCIES)
    },
    refusals: {
      limitPerMinute: raw.AUTH_FAILURE_LIMIT_PER_MINUTE,
      auditIntervalMs: raw.AUTH_FAILURE_AUDIT_INTERVAL_MS
    },
    loadShedding: {
      // off by default under test: test runs share their CPUs and a stall there is no overload
      maxEventLoopDelayMs: raw.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS ?? (raw.NODE_ENV === 'test' ? 0 : 1000),
      maxHeapBytes: raw.LOAD_SHED_MAX_HEAP_BYTES,
      maxRssBytes: raw.LOAD_SHED_MAX_RSS_BYTES,
      sampleIntervalMs: raw.LOAD_SHED_SAMPLE_INTERVAL_MS
    },
    outbound,
    metrics: metricsSettings(raw),
    tracing: tracingWanted(raw),
    console: { reuseTargetPercent: raw.REUSE_TARGET_PERCENT }
  }
}

/**
 * The URL the gateway answers at on HOST and PORT, as the start banner prints it: the default
 * issuer, so that a strict OAuth client discovering from that URL finds the same `issuer` in the
 * metadata (RFC 8414 §3.3). A wildcard address is reached through loopback.
 */
export function listeningUrl (host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`
}

/** `a=1,b=2` → {a: 1, b: 2} (the schema has checked the shape) */
function pairs (value: string | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  for (const pair of value ? value.split(',') : []) {
    const [name, limit] = pair.split('=')
    out[name as string] = Number(limit)
  }
  return out
}

/** METRICS_*: a listener of its own, never the API's port (0 picks a free port, as PORT=0 does) */
function metricsSettings (raw: RawEnv): Config['metrics'] {
  if (raw.METRICS_PORT === undefined) return undefined
  if (raw.METRICS_PORT !== 0 && raw.METRICS_PORT === raw.PORT) {
    throw new ConfigError(`invalid configuration: METRICS_PORT (${raw.METRICS_PORT}) must differ from PORT: metrics are served on a listener of their own, never on the public API`)
  }
  return { host: raw.METRICS_HOST, port: raw.METRICS_PORT }
}

/** OUTBOUND_*: every allow-list entry well-formed, and the portal's webhook URL allowed by it. */
function outboundSettings (raw: RawEnv): OutboundSettings {
  const production = raw.NODE_ENV === 'production'
  const allowedHosts = raw.OUTBOUND_ALLOWED_HOSTS?.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  for (const entry of allowedHosts ?? []) {
    const problem = allowEntryProblem(entry)
    if (problem) throw new ConfigError(`invalid configuration: OUTBOUND_ALLOWED_HOSTS: ${problem}`)
  }
  const settings = { allowedHosts, allowHttp: raw.OUTBOUND_ALLOW_HTTP ?? !production, defaultLoopback: !production }
  if (raw.PORTAL_WEBHOOK_URL) {
    try {
      checkOutboundUrl(outboundPolicy(settings), raw.PORTAL_WEBHOOK_URL)
    } catch (err) {
      if (!(err instanceof OutboundRefusedError)) throw err
      throw new ConfigError(`invalid configuration: PORTAL_WEBHOOK_URL ${err.message} (OUTBOUND_ALLOWED_HOSTS, OUTBOUND_ALLOW_HTTP)`)
    }
  }
  return settings
}
