import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'

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

/**
 * Security headers (helmet, set for an API). Registered before every route (Swagger UI's
 * included) so that every answer carries them, 404s and errors too.
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
}

export default fp(securityPlugin, { name: 'security' })
