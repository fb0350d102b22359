import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { problemResponses } from '../lib/openapi.js'
import { ProblemError } from '../lib/problem.js'

/**
 * What every answer carries, the connection-level ones written by errors.ts included: an API
 * answers JSON, so its pages load nothing, are framed nowhere and are never cached (they carry
 * personal data); browsers keep to https.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

/** Swagger UI at /docs runs its own scripts and styles (by hash), from here only; still framed nowhere. */
function docsPolicy (csp: { script: string[], style: string[] } | undefined): string {
  return [
    "default-src 'self'", "base-uri 'self'", "font-src 'self' data:", "frame-ancestors 'none'", "img-src 'self' data:",
    "object-src 'none'", `script-src 'self' ${csp?.script.join(' ') ?? ''}`.trim(), "script-src-attr 'none'",
    `style-src 'self' ${csp?.style.join(' ') ?? ''}`.trim(), "form-action 'self'"
  ].join('; ')
}

/** Probes answer whatever the load: an orchestrator must not kill or unroute a busy process for it. */
const NOT_SHED = /^\/health\//

/**
 * Security headers (helmet, set for an API) and load shedding (under-pressure): past the
 * configured event-loop delay, heap or RSS a request gets a 503 `overloaded` with Retry-After
 * before any work is done for it; which limit was hit stays in the log.
 */
async function securityPlugin (app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"], frameAncestors: ["'none'"] }
    },
    frameguard: { action: 'deny' },
    hsts: { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' }
  })
  // registered before Swagger UI so that its routes get these hooks too; its hashes are read once it is there
  let docs: string | undefined
  app.addHook('onRequest', async (request, reply) => {
    if (request.url !== '/docs' && !request.url.startsWith('/docs/')) return
    docs ??= docsPolicy((app as unknown as { swaggerCSP?: { script: string[], style: string[] } }).swaggerCSP)
    reply.header('content-security-policy', docs)
  })

  // the published contract: every route but the probes may answer 503 when the gateway sheds load
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { response?: Record<string, unknown> } | undefined
    if (schema?.response && !NOT_SHED.test(route.url)) schema.response[503] ??= problemResponses(503)[503]
  })

  const shedding = app.config.loadShedding
  let lastLog = 0
  await app.register(underPressure, {
    maxEventLoopDelay: shedding.maxEventLoopDelayMs,
    maxHeapUsedBytes: shedding.maxHeapBytes,
    maxRssBytes: shedding.maxRssBytes,
    sampleInterval: shedding.sampleIntervalMs,
    pressureHandler: async (request: FastifyRequest, _reply: unknown, type: string, value: number | undefined) => {
      if (NOT_SHED.test(request.routeOptions.url ?? request.url)) return
      const now = Date.now()
      if (now - lastLog > 5000) {
        lastLog = now
        request.log.warn({ pressure: type, value }, 'shedding load: requests get 503 until the process recovers')
      }
      throw new ProblemError(503, 'overloaded', 'the gateway is overloaded right now; retry shortly', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(2 * shedding.sampleIntervalMs / 1000))) }
      })
    }
  })
}

export default fp(securityPlugin, { name: 'security' })
