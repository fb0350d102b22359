import { envSchema } from 'env-schema'

/**
 * Configuration comes from the environment only, is validated once at start, and a bad value
 * stops the process with a message naming the variable. Every variable is documented in
 * README.md; development defaults make `npm start` work with nothing set.
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
  subjectPepper: string
  auditLogFile: string | undefined
  portalWebhookUrl: string | undefined
  limits: {
    bodyBytes: number
    fileBytes: number
    batchLines: number
  }
  timeouts: {
    requestMs: number
    keepAliveMs: number
    shutdownMs: number
    shutdownDrainDelayMs: number
  }
}

export class ConfigError extends Error {
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
    SUBJECT_PEPPER: { type: 'string', minLength: 32 },
    AUDIT_LOG_FILE: { type: 'string', minLength: 1 },
    PORTAL_WEBHOOK_URL: { type: 'string', pattern: '^https?://[^\\s]+$' },
    BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 104857600, default: 1048576 },
    FILE_SIZE_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 20971520 },
    BATCH_MAX_LINES: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
    REQUEST_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 600000, default: 30000 },
    KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 600000, default: 72000 },
    SHUTDOWN_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 },
    SHUTDOWN_DRAIN_DELAY_MS: { type: 'integer', minimum: 0, maximum: 600000, default: 0 }
  }
} as const

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
  SUBJECT_PEPPER?: string
  AUDIT_LOG_FILE?: string
  PORTAL_WEBHOOK_URL?: string
  BODY_LIMIT_BYTES: number
  FILE_SIZE_LIMIT_BYTES: number
  BATCH_MAX_LINES: number
  REQUEST_TIMEOUT_MS: number
  KEEP_ALIVE_TIMEOUT_MS: number
  SHUTDOWN_TIMEOUT_MS: number
  SHUTDOWN_DRAIN_DELAY_MS: number
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
    raw = envSchema<RawEnv>({ schema, data, dotenv: false })
  } catch (err) {
    // ajv says e.g. "env/PORT must be <= 65535"; keep its words, they name the variable
    const message = (err as Error).message.replace(/env\//g, '')
    throw new ConfigError(`invalid configuration: ${message}`)
  }

  const production = raw.NODE_ENV === 'production'
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

  return {
    nodeEnv: raw.NODE_ENV,
    host: raw.HOST,
    port: raw.PORT,
    logLevel: raw.LOG_LEVEL,
    gatewayIssuer: (raw.GATEWAY_ISSUER ?? `http://localhost:${raw.PORT}`).replace(/\/+$/, ''),
    redis,
    subjectPepper: raw.SUBJECT_PEPPER ?? DEVELOPMENT_PEPPER,
    auditLogFile: raw.AUDIT_LOG_FILE,
    portalWebhookUrl: raw.PORTAL_WEBHOOK_URL,
    limits: {
      bodyBytes: raw.BODY_LIMIT_BYTES,
      fileBytes: raw.FILE_SIZE_LIMIT_BYTES,
      batchLines: raw.BATCH_MAX_LINES
    },
    timeouts: {
      requestMs: raw.REQUEST_TIMEOUT_MS,
      keepAliveMs: raw.KEEP_ALIVE_TIMEOUT_MS,
      shutdownMs: raw.SHUTDOWN_TIMEOUT_MS,
      shutdownDrainDelayMs: raw.SHUTDOWN_DRAIN_DELAY_MS
    }
  }
}
