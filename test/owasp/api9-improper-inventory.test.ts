// OWASP API Security Top 10 (2023) — API9: Improper Inventory Management.
// The published contract is the inventory: every route the server answers (read from the app)
// is in openapi.yaml with its method, and every operation there is served; the production
// configuration serves the same routes and no debug or test ones; the documentation serves
// exactly the committed contract; every protected operation says so and documents its 401;
// unpublished versions and paths are 404 problems.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { MemoryStores } from '../../src/store/index.js'
import { generateGatewayKey, writeKeyFile } from '../../src/services/signing-keys.js'
import { build } from '../helper.js'
import { problemOf, servedRoutes } from '../lib/world.js'

interface Operation { security?: unknown[], responses?: Record<string, unknown> }
const contract = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, Operation>>, servers?: Array<{ url: string }> }
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace']

/** The documentation itself (Swagger UI and the machine-readable contract) and the web console: pages, not API operations. */
const DOCUMENTATION = /^\/(docs(\/.*)?|openapi\.json|console(\/.*)?)$/
/** Operations anyone may call without a token. */
const PUBLIC = new Set(['GET /health/live', 'GET /health/ready', 'GET /.well-known/jwks.json', 'GET /.well-known/oauth-authorization-server', 'POST /v1/oauth/token'])

const documented = Object.entries(contract.paths).flatMap(([path, operations]) =>
  Object.keys(operations).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`)).sort()
const toOpenApi = (url: string): string => url.replace(/:([A-Za-z]+)/g, '{$1}')

const app = await build(t, { env: { OUTBOX_WORKER: 'false' } })

t.test('every served route is in openapi.yaml, and every documented operation is served', async (t) => {
  const served = servedRoutes(app).filter((r) => !DOCUMENTATION.test(r.url)).map((r) => `${r.method} ${toOpenApi(r.url)}`).sort()
  t.ok(served.length >= 25, `${served.length} API routes`)
  for (const route of served) t.ok(documented.includes(route), `${route} is documented`)
  for (const operation of documented) t.ok(served.includes(operation), `${operation} is served`)
  t.same(served, documented)
  const documentation = servedRoutes(app).filter((r) => DOCUMENTATION.test(r.url))
  t.ok(documentation.every((r) => r.method === 'GET'), 'the documentation routes only read')
})

t.test('the production configuration serves the same inventory, and nothing for debugging or tests', async (t) => {
  const keys = join(mkdtempSync(join(tmpdir(), 'rg-keys-')), 'signing-keys.json')
  await writeKeyFile(keys, [await generateGatewayKey('EdDSA')])
  const production = await build(t, {
    store: new MemoryStores(),
    env: { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1', SUBJECT_PEPPER: 'p'.repeat(48), GATEWAY_ISSUER: 'https://gateway.example.gov.vn', SIGNING_KEYS_FILE: keys, ALLOW_NO_PERSISTENCE: 'true', OUTBOX_WORKER: 'false' }
  })
  const routes = servedRoutes(production).map((r) => `${r.method} ${r.url}`)
  t.same(routes, servedRoutes(app).map((r) => `${r.method} ${r.url}`), 'the same routes as in development and test')
  for (const route of routes) {
    t.notMatch(route, /\/(debug|tests?|internal|metrics|pprof|heapdump|env|config|seed|reset|demo|__\w*)(\/|$)/i, `${route} is not a debugging or test route`)
  }
  for (const url of ['/debug', '/debug/pprof', '/metrics', '/v1/test', '/v1/internal/state', '/.env', '/v1/config', '/v1/admin', '/v1/demo', '/server-status']) {
    const res = await production.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(problemOf(res).code, 'route_not_found')
  }
})

// (that this document is the committed openapi.yaml, byte for byte, is openapi.test.ts's)
t.test('the documentation serves the contract generated from the routes, and nothing else', async (t) => {
  const generated = JSON.parse(JSON.stringify(app.swagger()))
  const json = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(json.statusCode, 200)
  t.same(json.json(), generated, '/openapi.json is the contract')
  const viaDocs = await app.inject({ method: 'GET', url: '/docs/json' })
  t.same(viaDocs.json(), generated, 'Swagger UI shows the same document')
  t.same(parse(String((await app.inject({ method: 'GET', url: '/docs/yaml' })).body)), generated)
  const ui = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(ui.statusCode, 200)
  t.match(String(ui.headers['content-type']), /text\/html/)
  for (const url of ['/docs/../../package.json', '/docs/static/..%2f..%2f..%2fpackage.json', '/docs/%2e%2e/%2e%2e/package.json', '/docs/static/../../../README.md']) {
    const file = await app.inject({ method: 'GET', url })
    t.not(file.statusCode, 200, `${url}: the documentation serves its own files only`)
    t.notMatch(file.body, /"devDependencies"|Reuse gateway/)
  }
  t.notOk(contract.servers?.some((s) => /localhost|127\.0\.0\.1|internal|staging/.test(s.url)), 'no internal or staging server is published')
})

t.test('every protected operation declares its security and documents its 401; only the public ones do not', async (t) => {
  for (const [path, operations] of Object.entries(contract.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!METHODS.includes(method)) continue
      const name = `${method.toUpperCase()} ${path}`
      if (PUBLIC.has(name)) {
        t.notOk(operation.security?.length, `${name} is public`)
      } else {
        t.ok(operation.security?.length, `${name} declares the access token it needs`)
        t.ok(operation.responses?.['401'], `${name} documents its 401`)
      }
    }
  }
})

t.test('unpublished versions, methods and paths are 404 problems', async (t) => {
  const cases: Array<[string, string]> = [
    ['GET', '/v0/documents'], ['GET', '/v2/discovery'], ['POST', '/v2/reuse-queries'], ['GET', '/api/v1/discovery'],
    ['DELETE', '/v1/documents/01ARZ3NDEKTSV4RRFFQ69G5FAV'], ['DELETE', '/v1/agencies/000.00.12.H41'], ['PATCH', '/v1/agreements/x'],
    ['GET', '/v1/documents'], ['GET', '/v1/reuse-queries'], ['OPTIONS', '/v1/reuse-queries'], ['GET', '/v1/discovery/'], ['GET', '/V1/discovery']
  ]
  for (const [method, url] of cases) {
    const res = await app.inject({ method: method as 'GET', url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(problemOf(res).code, 'route_not_found', `${method} ${url}`)
  }
})
