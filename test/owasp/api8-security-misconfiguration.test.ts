import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from '../lib/agencies.js'
import { rawRequest } from '../lib/raw-http.js'
import { fillRoute, servedRoutes } from '../lib/world.js'

/**
 * OWASP API8:2023 Security Misconfiguration. Every answer, success or failure, from a route or
 * from no route at all, carries the headers an API should (HSTS, nosniff, no framing, a
 * content-security policy that loads nothing, no caching of answers that may carry personal
 * data, no X-Powered-By); no failure tells how the gateway is built; TRACE echoes nothing; there
 * is no CORS, so browsers on other origins get no access.
 */

type Headers = Record<string, string | string[] | number | undefined>

function securityHeaders (t: Test, headers: Headers, what: string, options: { docs?: boolean, public?: boolean } = {}): void {
  t.match(String(headers['strict-transport-security']), /max-age=\d{7,}/, `${what}: HSTS`)
  t.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(headers['x-frame-options'], 'DENY', `${what}: not framed`)
  const csp = String(headers['content-security-policy'])
  t.match(csp, /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`)
  if (!options.docs) t.match(csp, /default-src 'none'/, `${what}: CSP loads nothing`)
  t.equal(headers['x-powered-by'], undefined, `${what}: no X-Powered-By`)
  t.equal(headers['access-control-allow-origin'], undefined, `${what}: no CORS`)
  // public metadata (the gateway's keys, its OAuth metadata) may be cached; nothing else
  if (!options.docs && !options.public) t.match(String(headers['cache-control']), /no-store/, `${what}: not cached`)
}

/** A 4xx/5xx body tells the caller what to do, not how the gateway is built. */
function leaksNothing (t: Test, body: string, what: string): void {
  t.notMatch(body, /\bat .+:\d+:\d+|node_modules|\/src\/|\.ts\b|\.js\b|Error:|FST_|ECONN|ioredis|stack/i, `${what}: no stack, path or library name`)
}

async function gateway (t: Test, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, token: string }> {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, {
    env: { ...adminEnv(admin), ...env },
    extra: (app) => { app.get('/test/boom', { schema: { tags: ['documents'] } }, async () => { throw new Error('secret internals at /srv/app/db.js:12:3') }) }
  })
  return { app, token: await tokenFor(app, admin) }
}

t.test('every route, asked without credentials, answers with the security headers', async (t) => {
  const { app } = await gateway(t)
  const routes = servedRoutes(app).filter((route) => !route.url.startsWith('/test/'))
  t.ok(routes.length > 20, `${routes.length} routes`)
  for (const route of routes) {
    const res = await app.inject({ method: route.method as 'GET', url: fillRoute(route.url), ...(route.method === 'GET' || route.method === 'HEAD' ? {} : { payload: {} }) })
    const docs = route.url.startsWith('/docs')
    // the console's page and settings hold nothing personal: asked again each time (no-cache), never kept unasked
    const publicPage = (route.url.startsWith('/.well-known/') || route.url.startsWith('/console')) && res.statusCode < 400
    securityHeaders(t, res.headers, `${route.method} ${route.url} (${res.statusCode})`, { docs, public: publicPage })
    if (res.statusCode >= 400) leaksNothing(t, res.body, `${route.method} ${route.url}`)
  }
})

t.test('every kind of answer carries them: success, refusals, 404, 413, 415, 429, 500, 503, the token endpoint\'s errors', async (t) => {
  const { app, token } = await gateway(t, { RATE_LIMIT_PER_MINUTE: '1000', RATE_LIMIT_ROUTES: 'agencies=1', BODY_LIMIT_BYTES: '1024' })
  const auth = { authorization: `Bearer ${token}` }
  const issuer = await makeAgency('000.00.12.H41')
  const created = await register(app, token, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  const issuerToken = await tokenFor(app, issuer)
  const answers: Array<[string, { statusCode: number, headers: Headers, body: string }, number]> = [
    ['created', created, 201],
    ['ok', await app.inject({ method: 'GET', url: '/v1/document-types', headers: auth }), 200],
    ['no token', await app.inject({ method: 'GET', url: '/v1/document-types' }), 401],
    ['forged token', await app.inject({ method: 'GET', url: '/v1/document-types', headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' } }), 401],
    ['wrong scope', await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${issuerToken}` } }), 403],
    ['no such route', await app.inject({ method: 'GET', url: '/v1/nothing-here' }), 404],
    ['no such document', await app.inject({ method: 'GET', url: '/v1/documents/01J00000000000000000000000', headers: { authorization: `Bearer ${issuerToken}` } }), 404],
    ['malformed JSON', await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'application/json' }, payload: '{"type": "giay-khai-sinh",' }), 400],
    ['too large', await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(2000) }) }), 413],
    ['wrong media type', await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'text/xml' }, payload: '<x/>' }), 415],
    ['token endpoint error', await app.inject({ method: 'POST', url: '/v1/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password&username=a&password=b' }), 400],
    ['internal error', await app.inject({ method: 'GET', url: '/test/boom' }), 500]
  ]
  await app.inject({ method: 'GET', url: '/v1/agencies', headers: auth })
  answers.push(['rate limited', await app.inject({ method: 'GET', url: '/v1/agencies', headers: auth }), 429])
  const shedding = await build(t, { env: { LOAD_SHED_MAX_HEAP_BYTES: '1', LOAD_SHED_SAMPLE_INTERVAL_MS: '20' } })
  let overloaded = await shedding.inject({ method: 'GET', url: '/v1/document-types' })
  for (let i = 0; i < 100 && overloaded.statusCode !== 503; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    overloaded = await shedding.inject({ method: 'GET', url: '/v1/document-types' })
  }
  answers.push(['overloaded', overloaded, 503])

  for (const [what, res, status] of answers) {
    t.equal(res.statusCode, status, `${what}: ${status}`)
    securityHeaders(t, res.headers, what)
    if (status >= 400) leaksNothing(t, res.body, what)
  }
  t.notMatch(answers.find(([what]) => what === 'internal error')?.[1].body ?? '', /secret internals/)
})

t.test('a connection-level refusal (431) carries them too', async (t) => {
  const app = await build(t, { env: { MAX_HEADER_BYTES: '2048' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const answer = await rawRequest(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(4096)}\r\n\r\n`)
  t.equal(answer.status, 431)
  securityHeaders(t, answer.headers, '431')
  leaksNothing(t, answer.body, '431')
})

t.test('Swagger UI at /docs works under its own policy: scripts and styles from here only, never framed', async (t) => {
  const { app } = await gateway(t)
  const page = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(page.statusCode, 200)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.match(csp, /style-src 'self'/)
  t.match(csp, /frame-ancestors 'none'/)
  for (const src of page.body.match(/(?:src|href)="([^"]+)"/g) ?? []) {
    t.notMatch(src, /^(?:src|href)="(?:https?:)?\/\//, `${src}: served from here`)
  }
  securityHeaders(t, page.headers, '/docs', { docs: true })
})

t.test('TRACE echoes nothing; OPTIONS and cross-origin requests get no CORS grant', async (t) => {
  const { app, token } = await gateway(t)
  const trace = await app.inject({ method: 'TRACE' as 'GET', url: '/v1/document-types', headers: { authorization: `Bearer ${token}`, 'x-secret': 'echo-me-not' } })
  t.ok(trace.statusCode === 404 || trace.statusCode === 405, `TRACE: ${trace.statusCode}`)
  t.match(String(trace.headers['content-type']), /^application\/problem\+json/)
  t.notMatch(trace.body, /echo-me-not|Bearer/, 'the request is not echoed')
  securityHeaders(t, trace.headers, 'TRACE')

  const preflight = await app.inject({ method: 'OPTIONS', url: '/v1/reuse-queries', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } })
  t.ok(preflight.statusCode >= 400, `preflight refused (${preflight.statusCode})`)
  for (const header of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-allow-credentials']) {
    t.equal(preflight.headers[header], undefined, `preflight: no ${header}`)
  }
  const crossOrigin = await app.inject({ method: 'GET', url: '/v1/document-types', headers: { origin: 'https://evil.example', authorization: `Bearer ${token}` } })
  t.equal(crossOrigin.statusCode, 200)
  t.equal(crossOrigin.headers['access-control-allow-origin'], undefined, 'a cross-origin read is not granted to browsers')
  t.equal(crossOrigin.headers['access-control-allow-credentials'], undefined)
})
