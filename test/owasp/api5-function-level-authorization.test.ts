// OWASP API Security Top 10 (2023) — API5: Broken Function Level Authorization.
// Every route the gateway serves (read from the app: a route missing from the table below fails
// the test) × every kind of caller (nobody, and an agency holding each role): who may call it,
// who gets 401 and who 403 — the whole matrix, run. A refused call is audited and changes nothing.
import t from 'tap'
import { makeAgency, register, tokenFor } from '../lib/agencies.js'
import { ROLE_CALLERS, buildWorld, fillRoute, problemOf, servedRoutes, tokenOf } from '../lib/world.js'
import type { RoleCaller } from '../lib/world.js'

type Policy = 'public' | 'any agency' | Array<Exclude<RoleCaller, 'anonymous'>>

/** Who may call what (SPEC §2, §5). `any agency`: any valid access token; `public`: no token at all. */
const TABLE: Record<string, Policy> = {
  'GET /.well-known/jwks.json': 'public',
  'GET /.well-known/oauth-authorization-server': 'public',
  'GET /docs': 'public',
  'GET /docs/': 'public',
  'GET /docs/*': 'public',
  'GET /docs/json': 'public',
  'GET /docs/static/index.html': 'public',
  'GET /docs/static/swagger-initializer.js': 'public',
  'GET /docs/yaml': 'public',
  'GET /health/live': 'public',
  'GET /health/ready': 'public',
  'GET /openapi.json': 'public',
  'POST /v1/oauth/token': 'public',
  'GET /v1/agencies': ['admin'],
  'GET /v1/agencies/:code': ['admin'],
  'PUT /v1/agencies/:code': ['admin'],
  'GET /v1/agreements': ['admin'],
  'PUT /v1/agreements/:id': ['admin'],
  'PUT /v1/document-types/:code': ['admin'],
  'GET /v1/document-types': 'any agency',
  'GET /v1/document-types/:code': 'any agency',
  'GET /v1/discovery': 'any agency',
  'POST /v1/attestations/verify': 'any agency',
  'GET /v1/webhooks/deliveries': 'any agency',
  'POST /v1/webhooks/replay': 'any agency',
  'POST /v1/documents': ['issuer'],
  'POST /v1/documents/batch': ['issuer'],
  'GET /v1/documents/:id': ['issuer'],
  'POST /v1/documents/:id/amend': ['issuer'],
  'POST /v1/documents/:id/revoke': ['issuer'],
  'PUT /v1/documents/:id/file': ['issuer'],
  'POST /v1/reuse-queries': ['requester'],
  'GET /v1/files/:token': ['requester'],
  'POST /v1/consents/revoke': ['portal'],
  'POST /v1/portal/citizen-documents': ['portal'],
  'POST /v1/portal/access-history': ['portal'],
  'POST /v1/audit/search': ['auditor'],
  'GET /v1/audit/export': ['auditor'],
  'GET /v1/audit/verify': ['auditor'],
  'GET /v1/stats/reuse': ['auditor']
}

function allowed (policy: Policy, caller: RoleCaller): boolean {
  if (policy === 'public') return true
  if (caller === 'anonymous') return false
  return policy === 'any agency' || policy.includes(caller)
}

const w = await buildWorld(t)

t.test('every served route is in the table, and every route of the table is served', async (t) => {
  const served = servedRoutes(w.app).map((r) => `${r.method} ${r.url}`)
  for (const route of served) t.ok(TABLE[route], `${route} has an expected outcome per role`)
  for (const route of Object.keys(TABLE)) t.ok(served.includes(route), `${route} is served`)
})

t.test('the whole matrix: route × caller', async (t) => {
  const before = JSON.stringify([await w.store.listAgencies(), await w.store.listAgreements(), await w.store.listDocumentTypes()])
  const refusedBefore = (await w.app.audit.search({ action: 'access.refused', limit: 1000 })).events.length
  let refusals = 0
  let cells = 0
  for (const route of servedRoutes(w.app)) {
    const policy = TABLE[`${route.method} ${route.url}`]
    if (!policy) continue
    for (const caller of ROLE_CALLERS) {
      cells++
      const token = tokenOf(w, caller)
      // an empty JSON object: enough to get past authorization into validation, never a valid change
      const body = ['POST', 'PUT'].includes(route.method) && route.url !== '/v1/documents/:id/file'
        ? (route.url === '/v1/oauth/token' ? { payload: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } } : { payload: '{}', headers: { 'content-type': 'application/json' } })
        : { headers: {} }
      const url = fillRoute(route.url, { id: w.docs.birth, code: route.url.startsWith('/v1/document-types') ? 'giay-khai-sinh' : '000.00.12.H41', token: 'A'.repeat(43), '*': 'index.css' })
      const res = await w.app.inject({
        method: route.method as 'GET',
        url,
        headers: { ...body.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body.payload !== undefined ? { payload: body.payload } : {})
      })
      const cell = `${route.method} ${route.url} as ${caller}: ${res.statusCode}`
      t.ok(res.statusCode < 500, cell)
      const code = res.statusCode >= 400 ? problemOf(res, url).code : undefined
      if (allowed(policy, caller)) {
        t.ok(res.statusCode !== 401 && code !== 'insufficient_scope', `${cell} — allowed`)
      } else if (caller === 'anonymous') {
        refusals++
        t.equal(res.statusCode, 401, `${cell} — needs a token`)
        t.equal(code, 'token_missing', cell)
        t.match(String(res.headers['www-authenticate']), /^Bearer realm="reuse-gateway"/, cell)
      } else {
        refusals++
        t.equal(res.statusCode, 403, `${cell} — lacks the scope`)
        t.equal(code, 'insufficient_scope', cell)
        t.match(String(res.headers['www-authenticate']), /error="insufficient_scope"/, cell)
      }
    }
  }
  t.equal(cells, Object.keys(TABLE).length * ROLE_CALLERS.length, 'every cell was run')
  const refusedAfter = (await w.app.audit.search({ action: 'access.refused', limit: 1000 })).events.length
  t.equal(refusedAfter - refusedBefore, refusals, 'every refusal is on record')
  t.equal(JSON.stringify([await w.store.listAgencies(), await w.store.listAgreements(), await w.store.listDocumentTypes()]), before, 'no refused call changed anything')
})

t.test('a scope asked for narrows the token: an agency with two roles can hold a token for one', async (t) => {
  const both = await makeAgency('000.00.31.H41')
  await register(w.app, w.tokens.admin, both, ['issuer', 'requester'], { issuableTypes: ['giay-khai-sinh'] })
  const narrow = await tokenFor(w.app, both, 'documents:reuse')
  const res = await w.app.inject({ method: 'GET', url: `/v1/documents/${w.docs.birth}`, headers: { authorization: `Bearer ${narrow}` } })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'insufficient_scope')
})

t.test('a role removed from an agency takes its functions away on the next request', async (t) => {
  const list = async (): Promise<number> => (await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: { authorization: `Bearer ${w.tokens.auditor}` }, payload: { limit: 1 } })).statusCode
  t.equal(await list(), 200)
  const res = await w.app.inject({ method: 'PUT', url: `/v1/agencies/${w.agencies.auditor.code}`, headers: { authorization: `Bearer ${w.tokens.admin}` }, payload: { name: 'Thanh tra tỉnh', roles: ['requester'], jwks: w.agencies.auditor.jwks } })
  t.equal(res.statusCode, 200)
  t.equal(await list(), 403, 'the token still names audit:read, the agency no longer holds it')
})
