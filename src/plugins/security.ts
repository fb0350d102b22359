import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'

/**
 * What every answer carries: an API answers JSON, so its pages load nothing, are framed nowhere
 * and are never cached (they carry personal data); browsers keep to https. Helmet (below) and
 * http-frame.ts set them on the answers that go through the hooks; the answers given before any
 * hook runs (errors.ts: a URL the router refuses, a request the HTTP parser cannot read) set
 * this list, which is what helmet sends with its options below (test/http-edges.test.ts).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
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
 * The web console (/console, routes/console): its own script and stylesheet from here only (no
 * inline script, no eval, no inline style sheet), fetches to this origin only (the API), charts
 * drawn on canvas, CSV and NDJSON saved through blob URLs; framed nowhere, no form posts.
 */
export const CONSOLE_POLICY = [
  "default-src 'none'", "base-uri 'none'", "connect-src 'self'", "font-src 'self'", "form-action 'none'", "frame-ancestors 'none'",
  "img-src 'self' data: blob:", "manifest-src 'self'", "object-src 'none'", "script-src 'self'", "script-src-attr 'none'", "style-src 'self'"
].join('; ')

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
    if (request.url === '/console' || request.url.startsWith('/console/') || request.url.startsWith('/console?')) {
      reply.header('content-security-policy', CONSOLE_POLICY)
      return
    }
    if (request.url !== '/docs' && !request.url.startsWith('/docs/')) return
    docs ??= docsPolicy((app as unknown as { swaggerCSP?: { script: string[], style: string[] } }).swaggerCSP)
    reply.header('content-security-policy', docs)
  })
}

export default fp(securityPlugin, { name: 'security' })
