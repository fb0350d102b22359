// OWASP API Security Top 10 (2023) — API5: Broken Function Level Authorization.
// Every route the gateway serves (read from the app: a route missing from the table below fails
// the test) × every kind of caller (nobody, and an agency holding each role): who may call it,
// who gets 401 and who 403 — the whole matrix, run. A refused call is audited and changes nothing.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { assertion, makeAgency, register, tokenFor } from '../lib/agencies.js'
import { refusalsOnRecord } from '../lib/refusals.js'
import { AGREEMENT, AGREEMENT_ID, CODES, DOSSIER, ISSUABLE, PDF, PROCEDURE, ROLE_CALLERS, bearer, buildWorld, downloadLink, fillRoute, problemOf, reuseQuery, sample, servedRoutes, tokenOf } from '../lib/world.js'
import type { RoleCaller } from '../lib/world.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CONSOLE_DIR } from '../../src/routes/console/index.js'
import { ensureConsoleBuilt } from '../lib/console.js'

type Policy = 'public' | 'any agency' | Array<Exclude<RoleCaller, 'anonymous'>>

/** what a cell sends: a valid request, so that an allowed caller gets the route's success status */
interface CellRequest { url?: string, payload?: string | Buffer | Record<string, unknown>, headers?: Record<string, string> }

/**
 * Who may call what (SPEC §2, §5), and what an allowed caller gets: the route's exact success
 * status for the request `send` makes (a refused caller sends the same valid request).
 * `any agency`: any valid access token; `public`: no token at all.
 */
interface Row { who: Policy, ok: number, send?: () => Promise<CellRequest> | CellRequest }

// the matrix is run from one client address: more refusals than the limit on refusals allows
const w = await buildWorld(t, { env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } })
const json = (payload: Record<string, unknown>): CellRequest => ({ payload, headers: { 'content-type': 'application/json' } })
const HOOK = 'http://127.0.0.1:9/hook'

// what the valid requests need: a webhook for every caller (the webhook routes answer for one),
// results of the issuer's own to amend, revoke and attach a file to, an attestation, a link
for (const name of ['issuer', 'requester', 'portal', 'auditor'] as const) {
  await register(w.app, w.tokens.admin, w.agencies[name], [name], { webhookUrl: HOOK, ...(name === 'issuer' ? { issuableTypes: ISSUABLE.issuer } : {}) })
}
await register(w.app, w.tokens.admin, w.agencies.admin, ['admin'], { webhookUrl: HOOK })
const indexSpare = async (n: number): Promise<string> => {
  const doc = { ...sample('giay-khai-sinh'), subject: { kind: 'citizen' as const, id: w.citizen }, documentNumber: `API5-${n}` }
  const res = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: doc })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().id as string
}
const spare = { amend: await indexSpare(1), revoke: await indexSpare(2), file: await indexSpare(3) }
const reused = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
const attestation = reused.json().results[0].documents[0].attestation as string
const link = await downloadLink(w)
const birthType = (await w.app.inject({ method: 'GET', url: '/v1/document-types/giay-khai-sinh', headers: bearer(w.tokens.admin) })).json()
const { code: _code, schemaVersion: _schemaVersion, ...birthTypePut } = birthType

// the console's script, by the name the build gave it
ensureConsoleBuilt()
const consoleScript = (JSON.parse(readFileSync(join(CONSOLE_DIR, 'manifest.json'), 'utf8')) as { script: string }).script

const TABLE: Record<string, Row> = {
  'GET /.well-known/jwks.json': { who: 'public', ok: 200 },
  'GET /.well-known/oauth-authorization-server': { who: 'public', ok: 200 },
  'GET /docs': { who: 'public', ok: 200 },
  'GET /docs/': { who: 'public', ok: 200 },
  'GET /docs/*': { who: 'public', ok: 200, send: () => ({ url: '/docs/static/index.css' }) },
  'GET /docs/json': { who: 'public', ok: 200 },
  // swagger-ui sends its index page's readers to /docs/
  'GET /docs/static/index.html': { who: 'public', ok: 302 },
  'GET /docs/static/swagger-initializer.js': { who: 'public', ok: 200 },
  'GET /docs/yaml': { who: 'public', ok: 200 },
  'GET /console': { who: 'public', ok: 200 },
  'GET /console/': { who: 'public', ok: 308 },
  'GET /console/assets/:file': { who: 'public', ok: 200, send: () => ({ url: `/console/assets/${consoleScript}` }) },
  'GET /console/settings.json': { who: 'public', ok: 200 },
  'GET /health/live': { who: 'public', ok: 200 },
  'GET /health/ready': { who: 'public', ok: 200 },
  'GET /openapi.json': { who: 'public', ok: 200 },
  'POST /v1/oauth/token': {
    who: 'public',
    ok: 200,
    send: async () => ({
      payload: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(w.app, w.agencies.requester) }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' }
    })
  },
  'GET /v1/agencies': { who: ['admin'], ok: 200 },
  'GET /v1/agencies/:code': { who: ['admin'], ok: 200 },
  'POST /v1/agencies/:code/keys/refresh': { who: ['admin'], ok: 200 },
  'PUT /v1/agencies/:code': { who: ['admin'], ok: 200, send: () => json({ name: `Agency ${CODES.issuer}`, roles: ['issuer'], issuableTypes: ISSUABLE.issuer, jwks: w.agencies.issuer.jwks, webhookUrl: HOOK }) },
  'GET /v1/agreements': { who: ['admin'], ok: 200 },
  'PUT /v1/agreements/:id': { who: ['admin'], ok: 200, send: () => ({ url: `/v1/agreements/${AGREEMENT_ID}`, ...json(AGREEMENT) }) },
  'PUT /v1/document-types/:code': { who: ['admin'], ok: 200, send: () => json(birthTypePut) },
  'GET /v1/document-types': { who: 'any agency', ok: 200 },
  'GET /v1/document-types/:code': { who: 'any agency', ok: 200 },
  'GET /v1/discovery': { who: 'any agency', ok: 200 },
  'POST /v1/attestations/verify': { who: 'any agency', ok: 200, send: () => json({ attestation }) },
  'GET /v1/webhooks/deliveries': { who: 'any agency', ok: 200 },
  'GET /v1/webhooks/status': { who: ['admin'], ok: 200 },
  'POST /v1/webhooks/replay': { who: 'any agency', ok: 202, send: () => json({ after: 0 }) },
  'POST /v1/documents': { who: ['issuer'], ok: 201, send: () => json({ ...sample('giay-khai-sinh'), subject: { kind: 'citizen', id: w.citizen }, documentNumber: 'API5-4' }) },
  'POST /v1/documents/batch': {
    who: ['issuer'],
    ok: 200,
    send: () => ({ payload: JSON.stringify({ ...sample('giay-khai-sinh'), subject: { kind: 'citizen', id: w.citizen }, documentNumber: 'API5-5' }) + '\n', headers: { 'content-type': 'application/x-ndjson' } })
  },
  'GET /v1/documents/:id': { who: ['issuer'], ok: 200 },
  'POST /v1/documents/:id/amend': {
    who: ['issuer'],
    ok: 201,
    send: () => ({ url: `/v1/documents/${spare.amend}/amend`, ...json({ procedureCode: PROCEDURE, dossierCode: DOSSIER, data: sample('giay-khai-sinh').data, reason: 'Cải chính' }) })
  },
  'POST /v1/documents/:id/revoke': { who: ['issuer'], ok: 200, send: () => ({ url: `/v1/documents/${spare.revoke}/revoke`, ...json({ reason: 'Cấp sai' }) }) },
  'PUT /v1/documents/:id/file': { who: ['issuer'], ok: 200, send: () => ({ url: `/v1/documents/${spare.file}/file`, payload: PDF, headers: { 'content-type': 'application/pdf' } }) },
  'POST /v1/reuse-queries': { who: ['requester'], ok: 200, send: () => json(reuseQuery(w)) },
  'GET /v1/files/:token': { who: ['requester'], ok: 200, send: () => ({ url: link }) },
  'POST /v1/consents/revoke': { who: ['portal'], ok: 204, send: () => json({ consentId: randomUUID() }) },
  'POST /v1/portal/citizen-documents': { who: ['portal'], ok: 200, send: () => json({ subject: { kind: 'citizen', id: w.citizen } }) },
  'POST /v1/portal/access-history': { who: ['portal'], ok: 200, send: () => json({ subject: { kind: 'citizen', id: w.citizen } }) },
  'POST /v1/audit/search': { who: ['auditor'], ok: 200, send: () => json({ limit: 10 }) },
  'GET /v1/audit/export': { who: ['auditor'], ok: 200 },
  'GET /v1/audit/checkpoints': { who: ['auditor'], ok: 200 },
  'GET /v1/audit/verify': { who: ['auditor'], ok: 200 },
  'GET /v1/stats/reuse': { who: ['auditor'], ok: 200, send: () => ({ url: '/v1/stats/reuse?groupBy=agency' }) }
}

function allowed (policy: Policy, caller: RoleCaller): boolean {
  if (policy === 'public') return true
  if (caller === 'anonymous') return false
  return policy === 'any agency' || policy.includes(caller)
}

t.test('every served route is in the table, and every route of the table is served', async (t) => {
  const served = servedRoutes(w.app).map((r) => `${r.method} ${r.url}`)
  for (const route of served) t.ok(TABLE[route], `${route} has an expected outcome per role`)
  for (const route of Object.keys(TABLE)) t.ok(served.includes(route), `${route} is served`)
})

t.test('the whole matrix: route × caller', async (t) => {
  const snapshot = async (): Promise<string> => JSON.stringify([await w.store.agencies.listAgencies(), await w.store.agreements.listAgreements(), await w.store.catalogue.listDocumentTypes()])
  // repeated refusals are summarized per interval: every tally closed before, and after
  await w.app.refusals.flush()
  const refusedBefore = (await w.app.audit.search({ action: 'access.refused', limit: 1000 })).events.length
  let refusals = 0
  let cells = 0
  for (const route of servedRoutes(w.app)) {
    const row = TABLE[`${route.method} ${route.url}`]
    if (!row) continue
    for (const caller of ROLE_CALLERS) {
      cells++
      const token = tokenOf(w, caller)
      const request = row.send ? await row.send() : {}
      const url = request.url ?? fillRoute(route.url, { id: w.docs.birth, code: route.url.startsWith('/v1/document-types') ? 'giay-khai-sinh' : CODES.issuer })
      const before = allowed(row.who, caller) ? '' : await snapshot()
      const res = await w.app.inject({
        method: route.method as 'GET',
        url,
        headers: { ...request.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(request.payload !== undefined ? { payload: request.payload } : {})
      })
      const cell = `${route.method} ${route.url} as ${caller}: ${res.statusCode}`
      if (allowed(row.who, caller)) {
        t.equal(res.statusCode, row.ok, `${cell} — allowed${res.statusCode >= 400 ? ` (${problemOf(res, url).code ?? res.body.slice(0, 200)})` : ''}`)
        continue
      }
      refusals++
      const code = problemOf(res, url).code
      if (caller === 'anonymous') {
        t.equal(res.statusCode, 401, `${cell} — needs a token`)
        t.equal(code, 'token_missing', cell)
        t.match(String(res.headers['www-authenticate']), /^Bearer realm="reuse-gateway"/, cell)
      } else {
        t.equal(res.statusCode, 403, `${cell} — lacks the scope`)
        t.equal(code, 'insufficient_scope', cell)
        t.match(String(res.headers['www-authenticate']), /error="insufficient_scope"/, cell)
      }
      t.equal(await snapshot(), before, `${cell} — changed nothing`)
    }
  }
  t.equal(cells, Object.keys(TABLE).length * ROLE_CALLERS.length, 'every cell was run')
  await w.app.refusals.flush()
  const recorded = (await w.app.audit.search({ action: 'access.refused', limit: 1000 })).events
  const added = recorded.slice(0, recorded.length - refusedBefore)
  t.equal(refusalsOnRecord(added), refusals, 'every refusal is on record, repeated ones in their summary')
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
