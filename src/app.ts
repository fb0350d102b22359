import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import Fastify, { LogController } from 'fastify'
import type { FastifyHttpOptions, FastifyInstance } from 'fastify'
import { pino } from 'pino'
import type { DestinationStream, LoggerOptions } from 'pino'
import type { Config } from './config.js'
import errorsPlugin, { clientErrorHandler, frameworkErrors } from './plugins/errors.js'
import httpFramePlugin from './plugins/http-frame.js'
import lifecyclePlugin from './plugins/lifecycle.js'
import openapiPlugin from './plugins/openapi.js'
import storePlugin from './plugins/store.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import securityPlugin from './plugins/security.js'
import loadSheddingPlugin from './plugins/load-shedding.js'
import metricsPlugin from './plugins/metrics.js'
import { buildValidatorFactory, loadApiSchemas } from './plugins/validation.js'
import auditPlugin from './plugins/audit.js'
import auditArchivePlugin from './plugins/audit-archive.js'
import refusalsPlugin from './plugins/refusals.js'
import authPlugin from './plugins/auth.js'
import documentsPlugin from './plugins/documents.js'
import readsPlugin from './plugins/reads.js'
import statsPlugin from './plugins/stats.js'
import reusePlugin from './plugins/reuse.js'
import documentRoutes from './routes/documents/index.js'
import documentTypeRoutes from './routes/document-types/index.js'
import reuseRoutes from './routes/reuse/index.js'
import portalRoutes from './routes/portal/index.js'
import webhookRoutes from './routes/webhooks/index.js'
import outboxPlugin from './plugins/outbox.js'
import statsRoutes from './routes/stats/index.js'
import auditRoutes from './routes/audit/index.js'
import agencyRoutes from './routes/agencies/index.js'
import healthRoutes from './routes/health/index.js'
import oauthRoutes from './routes/oauth/index.js'
import wellKnownRoutes from './routes/well-known/index.js'
import consoleRoutes from './routes/console/index.js'
import { createStores } from './store/index.js'
import { registerAgency } from './services/agencies.js'
import { errorLogging } from './lib/error-description.js'
import { redactedPath } from './lib/request-path.js'
import { traceLogFields } from './lib/trace-context.js'
import type { Stores } from './store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface BuildOptions {
  /** use this store instead of creating one from the configuration (the caller then closes it) */
  store?: Stores
  /** where log lines go (default: standard output) */
  logStream?: DestinationStream
}

/** An incoming X-Request-Id is kept when it looks like an id, so a trace spans the caller and us. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/

export function genRequestId (request: IncomingMessage): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

export function loggerOptions (config: Config): LoggerOptions {
  // an error is logged as its class, code, Redis command name and stack frames: never the
  // command's arguments or a message that may quote data (lib/error-description.ts)
  const errors = errorLogging()
  return {
    level: config.logLevel,
    hooks: errors.hooks,
    // credentials and anything that may carry personal data never reach a log line
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
        'headers.authorization', 'headers.cookie', 'body', 'req.body'
      ],
      censor: '[redacted]'
    },
    serializers: {
      ...errors.serializers,
      // the path only: a query string is never logged, whatever a client put in it; nor is a
      // download link's token, a credential in the path
      req (request: { method: string, url: string, hostname?: string, ip?: string }) {
        return { method: request.method, path: redactedPath(request.url), remoteAddress: request.ip }
      }
    },
    // with tracing on, a line written inside a span names its trace_id and span_id
    ...(config.tracing ? { mixin: traceLogFields } : {})
  }
}

/** what the log of standard output holds before it is written, at most (bytes) */
export const LOG_BUFFER_BYTES = 8192
/** how often what is left in that buffer is written anyway (ms): a line held by a write in flight */
export const LOG_FLUSH_MS = 100

/**
 * Standard output, written asynchronously and in blocks: the lines of one turn of the event
 * loop (under load, of many requests) go out in one write once the turn is over, instead of a
 * system call per line (several per cent of a reuse query's time). A line is never held longer
 * than the turn it was written in, unless a write is still in flight (then at most LOG_FLUSH_MS);
 * pino writes what is left when the process exits, a crash included. The audit log is not
 * buffered here (plugins/audit.ts).
 */
function standardOutput (): DestinationStream {
  const out = pino.destination({ fd: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS })
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    try { out.flush() } catch {} // a stream already closed (the process is ending) has nothing left to write
  }
  return {
    write (line: string): void {
      out.write(line)
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    }
  }
}

/** Builds the gateway: Fastify options and registration order, nothing else. */
export async function buildApp (config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const fastifyOptions: FastifyHttpOptions<Server> = {
    logger: { ...loggerOptions(config), stream: options.logStream ?? standardOutput() },
    genReqId: genRequestId,
    requestIdHeader: false,
    // one access-log line per request, written by http-frame.ts once it is answered
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    bodyLimit: config.limits.bodyBytes,
    // the request line and headers together; past it the connection gets a 431 (errors.ts)
    http: { maxHeaderSize: config.limits.headerBytes },
    requestTimeout: config.timeouts.requestMs,
    keepAliveTimeout: config.timeouts.keepAliveMs,
    connectionTimeout: config.timeouts.requestMs,
    return503OnClosing: false,
    clientErrorHandler,
    frameworkErrors,
    // the JSON parser is ours (validation.ts: prototype keys are a 400 forbidden_key); should
    // Fastify's own ever parse a body, it refuses them too
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    trustProxy: false,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    // the factory's declared type is @fastify/ajv-compiler's own; ours has the call shape Fastify uses
    schemaController: { compilersFactory: { buildValidator: buildValidatorFactory() as never } }
  }
  const app = Fastify(fastifyOptions)
  app.decorate('config', config)
  for (const schema of loadApiSchemas()) app.addSchema(schema)

  // external plugins: security headers first, so every route gets them
  await app.register(securityPlugin)
  await app.register(openapiPlugin)

  // application plugins
  await app.register(errorsPlugin)
  await app.register(httpFramePlugin)
  await app.register(lifecyclePlugin)
  // Prometheus metrics (METRICS_PORT): before the plugins whose services report to them
  await app.register(metricsPlugin)
  // before the store and authentication: an overloaded process does no work for a request
  await app.register(loadSheddingPlugin)
  const store = options.store ?? await createStores(config, app.log)
  await app.register(storePlugin, { store, closeWithApp: options.store === undefined })
  await app.register(authPlugin)
  await app.register(auditArchivePlugin)
  await app.register(auditPlugin)
  // the first admin, from configuration: audited like any registration, so after the audit trail
  const admin = config.admin
  if (admin) {
    // a store that does not answer yet holds the process until it does, as the signing keys do
    await app.lifecycle.whenStoreAnswers('registering the admin agency from configuration', async () => {
      const { created, unchanged } = await registerAgency(app, admin.code, { name: 'Gateway administrator (from configuration)', roles: ['admin'], jwks: admin.jwks }, 'configuration')
      app.log.info({ agency: admin.code, created, unchanged }, 'admin agency from configuration registered')
    })
  }
  await app.register(refusalsPlugin)
  await app.register(documentsPlugin)
  await app.register(readsPlugin)
  await app.register(outboxPlugin)
  await app.register(statsPlugin)
  await app.register(reusePlugin)
  // after authentication (the agency is the key), before the routes it limits
  await app.register(rateLimitPlugin)

  // routes
  await app.register(healthRoutes)
  await app.register(wellKnownRoutes)
  await app.register(oauthRoutes)
  await app.register(agencyRoutes)
  await app.register(auditRoutes)
  await app.register(documentTypeRoutes)
  await app.register(documentRoutes)
  await app.register(reuseRoutes)
  await app.register(portalRoutes)
  await app.register(webhookRoutes)
  await app.register(statsRoutes)
  // the web console: a page and its files, talking to the routes above
  await app.register(consoleRoutes)

  return app
}
