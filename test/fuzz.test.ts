import { randomUUID } from 'node:crypto'
import t from 'tap'
import fc from 'fast-check'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { base64url, importJWK, SignJWT } from 'jose'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { assertion, makeAgency } from './lib/agencies.js'
import { AGREEMENT_ID, CODES, DOSSIER, PDF, PROCEDURE, ROLE_CALLERS, bearer, buildWorld, fillRoute, injectBounded, problemOf, reuseQuery, servedRoutes, tokenOf } from './lib/world.js'
import type { ServedRoute, World } from './lib/world.js'

/**
 * Property-based fuzzing of every route the gateway serves (read from the app itself, so a new
 * route is fuzzed without touching this file): arbitrary JSON of any shape, valid bodies with one
 * value broken, non-JSON bytes, wrong content types, form bodies, garbage and forged tokens, huge
 * and duplicated headers, odd path parameters and query strings — sent anonymously and as an
 * agency of each role. Whatever arrives: never a 5xx, every refusal a problem with a `code`, no
 * request hangs, a refused request writes nothing but its audit event, the audit chain still
 * verifies, and no prototype is polluted.
 *
 * FUZZ_SEED and FUZZ_RUNS change the seed and the number of runs (the seed is printed).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20260301)
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
/** a request that takes longer than this is taken as hung */
const BOUND_MS = 10_000

/** Store calls that change state other than the audit trail and counters: a refused request makes none. */
const STATE_WRITES = new Set([
  'putAgency', 'registerDocument', 'amendDocument', 'revokeDocument', 'attachDocumentFile', 'putDocumentType',
  'putAgreement', 'recordReuse', 'revokeConsent', 'putDownloadGrant', 'takeDownloadGrant', 'replayOutbox',
  'putSigningKeys', 'pruneAudit'
])

/** A memory store that notes every state-changing call, whichever aggregate's store it goes to. */
function recordingStore (): { store: Stores, writes: string[] } {
  const writes: string[] = []
  const recording = <T extends object>(target: T): T => new Proxy(target, {
    get (object, property) {
      const value = Reflect.get(object, property, object) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (typeof property === 'string' && STATE_WRITES.has(property)) writes.push(property)
        return (value as (...a: unknown[]) => unknown).apply(object, args)
      }
    }
  })
  const target = new MemoryStores()
  const aggregates = new Map<PropertyKey, object>()
  const store = new Proxy(target, {
    get (object, property) {
      const value = Reflect.get(object, property, object) as unknown
      if (typeof value === 'function') return value.bind(object)
      if (typeof value !== 'object' || value === null) return value
      if (!aggregates.has(property)) aggregates.set(property, recording(value))
      return aggregates.get(property)
    }
  })
  return { store, writes }
}

/** What the store holds, as far as a caller could change it. */
async function fingerprint (w: World): Promise<string> {
  const subjects = [w.citizen, w.otherCitizen].map((id) => w.app.documents.subjectHash({ kind: 'citizen', id }))
  return JSON.stringify({
    agencies: await w.store.agencies.listAgencies(),
    agreements: await w.store.agreements.listAgreements(),
    types: await w.store.catalogue.listDocumentTypes(),
    documents: await Promise.all(subjects.map(async (s) => await w.store.documents.documentsOfSubject(s)))
  })
}

interface FuzzRequest {
  caller: string
  options: InjectOptions
}

t.comment(`fast-check seed ${SEED}, ${RUNS} runs (FUZZ_SEED / FUZZ_RUNS)`)

const { store, writes } = recordingStore()
// every request comes from one client address: far more refusals than the limit on refusals allows
const w = await buildWorld(t, { store, env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } })
const app = w.app
const routes = servedRoutes(app)

/** Valid bodies, per route, that the fuzzer breaks one value at a time. */
const birthType = (await app.inject({ method: 'GET', url: '/v1/document-types/giay-khai-sinh', headers: bearer(w.tokens.admin) })).json()
const VALID: Record<string, () => unknown> = {
  'PUT /v1/agencies/:code': () => ({ name: 'Sở Tư pháp', roles: ['issuer'], issuableTypes: ['giay-khai-sinh'], jwks: w.agencies.issuer.jwks }),
  'PUT /v1/agreements/:id': () => ({ requester: CODES.otherRequester, documentTypes: ['giay-khai-sinh'], procedureCodes: [PROCEDURE], fields: { 'giay-khai-sinh': ['fullName'] }, validFrom: '2026-01-01' }),
  'POST /v1/attestations/verify': () => ({ attestation: 'eyJhbGciOiJFZERTQSJ9.e30.AAAA' }),
  'POST /v1/audit/search': () => ({ limit: 5, subject: { kind: 'citizen', id: w.citizen }, action: 'reuse.queried' }),
  'POST /v1/consents/revoke': () => ({ consentId: randomUUID(), reason: 'rút lại' }),
  'PUT /v1/document-types/:code': () => ({ name: birthType.name, subjectKinds: birthType.subjectKinds, defaultValidity: birthType.defaultValidity, consentRequired: false, schema: birthType.schema }),
  'POST /v1/documents': () => ({ ...w.samples.birth, documentNumber: `fuzz-${randomUUID()}` }),
  'POST /v1/documents/:id/amend': () => ({ procedureCode: PROCEDURE, dossierCode: DOSSIER, data: w.samples.birth.data, reason: 'Cải chính' }),
  'POST /v1/documents/:id/revoke': () => ({ reason: 'Cấp sai' }),
  'POST /v1/portal/access-history': () => ({ subject: { kind: 'citizen', id: w.citizen }, limit: 5 }),
  'POST /v1/portal/citizen-documents': () => ({ subject: { kind: 'citizen', id: w.citizen } }),
  'POST /v1/reuse-queries': () => reuseQuery(w, ['giay-khai-sinh'], { reason: 'Đăng ký' }),
  'POST /v1/webhooks/replay': () => ({ after: 0 })
}

// Tokens and Authorization headers an attacker or a broken client sends.
const now = Math.floor(Date.now() / 1000)
const stranger = await makeAgency(CODES.issuer)
const gatewayClaims = { iss: app.config.gatewayIssuer, sub: CODES.admin, aud: app.config.gatewayIssuer, scope: 'admin', jti: randomUUID(), agency_kid: w.agencies.admin.privateKey.kid }
const sign = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> =>
  await new SignJWT(claims).setProtectedHeader({ alg: stranger.privateKey.alg, kid: stranger.privateKey.kid, typ: 'at+jwt', ...header } as { alg: string }).sign(await importJWK(stranger.privateKey, stranger.privateKey.alg))
const BAD_AUTH: string[] = [
  'Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', 'bearer abc', 'Bearer a.b', 'Bearer a.b.c', `Bearer ${'A'.repeat(20_000)}`,
  `Bearer ${w.tokens.admin.slice(0, -10)}`,
  `Bearer ${w.tokens.admin}x`,
  `Bearer ${base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${base64url.encode(JSON.stringify({ ...gatewayClaims, exp: now + 300 }))}.`,
  `Bearer ${await new SignJWT({ ...gatewayClaims, exp: now + 300 }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(new TextEncoder().encode(JSON.stringify(app.signingKeys.jwks())))}`,
  `Bearer ${await sign({ ...gatewayClaims, exp: now + 300 })}`,
  `Bearer ${await sign({ ...gatewayClaims, exp: now + 300 }, { kid: 'no-such-key' })}`,
  `Bearer ${await app.signingKeys.sign({ ...gatewayClaims, iat: now - 4000, exp: now - 3600 }, 'at+jwt')}`,
  `Bearer ${await app.signingKeys.sign({ ...gatewayClaims, aud: 'https://another-gateway.example', exp: now + 300 }, 'at+jwt')}`,
  `Bearer ${await app.signingKeys.sign({ ...gatewayClaims, iss: 'https://another-gateway.example', exp: now + 300 }, 'at+jwt')}`,
  `Bearer ${await app.signingKeys.sign({ ...gatewayClaims, scope: 42, exp: now + 300 }, 'at+jwt')}`,
  `Bearer ${await app.signingKeys.sign({ ...gatewayClaims, sub: 'not an agency', exp: now + 300 }, 'at+jwt')}`,
  `Bearer ${await app.signingKeys.sign({ ...gatewayClaims, exp: now + 300, nbf: now + 3600 }, 'at+jwt')}`,
  `Bearer ${await assertion(app, w.agencies.admin)}`
]

// ---- arbitraries ----------------------------------------------------------------------------

const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '../../etc/passwd', '%00', 'null', '1.001193', DOSSIER, CODES.requester, w.citizen, '2026-02-30', '9999-12-31T23:59:59Z', 'a'.repeat(5000), 'Nguyễn'.normalize('NFD'), '\ud800')
)
const numbers = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64))
const leaf: fc.Arbitrary<unknown> = fc.oneof(strings, numbers, fc.boolean(), fc.constant(null))
const anyJson = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' })
const value: fc.Arbitrary<unknown> = fc.oneof(leaf, anyJson, fc.array(leaf, { maxLength: 5 }), fc.dictionary(strings, leaf, { maxKeys: 4 }))
const POISON_KEYS = ['__proto__', 'constructor', 'prototype']

/** a valid body with one value replaced, one field removed or one field added, at any depth */
function mutate (body: unknown, path: number[], replacement: unknown, action: 'replace' | 'remove' | 'add', key: string): unknown {
  const copy = structuredClone(body) as Record<string, unknown>
  let node: Record<string, unknown> = copy
  for (const step of path) {
    const keys = Object.keys(node)
    if (keys.length === 0) break
    const k = keys[step % keys.length] as string
    const child = node[k]
    if (child === null || typeof child !== 'object' || Object.keys(child).length === 0) {
      if (action === 'remove') delete node[k]
      else if (action === 'replace') node[k] = replacement
      else node[key] = replacement
      return copy
    }
    node = child as Record<string, unknown>
  }
  const keys = Object.keys(node)
  if (action === 'add' || keys.length === 0) node[key] = replacement
  else if (action === 'remove') delete node[keys[0] as string]
  else node[keys[0] as string] = replacement
  return copy
}

/** JSON text with a prototype key at some depth (JSON.stringify would drop a real __proto__) */
const poisoned = fc.tuple(fc.constantFrom(...POISON_KEYS), fc.integer({ min: 0, max: 6 }), value).map(([key, depth, inner]) => {
  const core = key === 'constructor' ? `{"constructor":{"prototype":{"polluted":${JSON.stringify(inner) ?? 'true'}}}}` : `{"${key}":{"polluted":true}}`
  return '{"a":'.repeat(depth) + core + '}'.repeat(depth)
})

function bodyFor (route: ServedRoute): fc.Arbitrary<{ payload?: string | Buffer, type?: string }> {
  const valid = VALID[`${route.method} ${route.url}`]
  const json = (v: unknown): { payload: string, type: string } => ({ payload: JSON.stringify(v) ?? 'null', type: 'application/json' })
  const options: Array<fc.Arbitrary<{ payload?: string | Buffer, type?: string }>> = [
    value.map(json),
    poisoned.map((payload) => ({ payload, type: 'application/json' })),
    fc.integer({ min: 60, max: 3000 }).map((n) => ({ payload: '{"a":'.repeat(n) + '1' + '}'.repeat(n), type: 'application/json' })),
    fc.constantFrom('1e400', '-0', '123456789012345678901234567890', '{"limit":1e400}', '{"a":1,"a":2}', '"\\ud800"', '{"\\ud800":1}', '[]', 'true').map((payload) => ({ payload, type: 'application/json' })),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ payload: Buffer.from(bytes), type: 'application/json' })),
    fc.tuple(value, fc.constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'application/x-ndjson', 'application/pdf', 'image/png', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/json; charset=utf-8', 'application/problem+json', '*/*', ';;;', 'application/json, text/plain'))
      .map(([v, type]) => ({ payload: JSON.stringify(v) ?? 'x', type })),
    fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 30 }), { maxKeys: 5 }).map((form) => ({ payload: new URLSearchParams(form).toString(), type: 'application/x-www-form-urlencoded' })),
    fc.array(value, { maxLength: 4 }).map((lines) => ({ payload: lines.map((l) => JSON.stringify(l) ?? '').join('\n'), type: 'application/x-ndjson' })),
    fc.constant({})
  ]
  if (valid) {
    options.push(
      fc.tuple(fc.array(fc.nat(), { maxLength: 4 }), value, fc.constantFrom('replace', 'remove', 'add') as fc.Arbitrary<'replace' | 'remove' | 'add'>, fc.oneof(strings, fc.constantFrom('issuer', 'status', 'version', 'id', 'createdAt', 'roles', 'scope')))
        .map(([path, replacement, action, key]) => json(mutate(valid(), path, replacement, action, key))),
      fc.constant(null).map(() => json(valid()))
    )
  }
  if (route.url === '/v1/oauth/token') {
    options.push(fc.tuple(fc.constantFrom('client_credentials', 'password', ''), fc.oneof(fc.constantFrom(...BAD_AUTH.map((a) => a.replace(/^\w+ ?/, ''))), strings), fc.option(strings))
      .map(([grant, clientAssertion, scope]) => ({
        payload: new URLSearchParams({ grant_type: grant, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion, ...(scope === null ? {} : { scope }) }).toString(),
        type: 'application/x-www-form-urlencoded'
      })))
  }
  if (route.url === '/v1/documents/:id/file') {
    options.push(fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('application/pdf', 'image/jpeg', 'image/tiff')).map(([bytes, type]) => ({ payload: Buffer.concat([PDF, Buffer.from(bytes)]), type })))
  }
  return fc.oneof(...options)
}

const PARAMS: Record<string, fc.Arbitrary<string>> = {
  id: fc.oneof(fc.constantFrom(w.docs.birth, w.docs.otherIssuers, w.docs.land, '01ARZ3NDEKTSV4RRFFQ69G5FAV', AGREEMENT_ID), strings),
  code: fc.oneof(fc.constantFrom('000.00.99.H41', 'giay-khai-sinh', 'fuzz-type', 'A'.repeat(300)), strings),
  token: fc.oneof(fc.constant('A'.repeat(43)), strings),
  '*': strings
}
const query = fc.oneof(
  fc.constant(''),
  fc.dictionary(fc.oneof(fc.constantFrom('version', 'after', 'limit', 'from', 'to', 'groupBy', 'cursor', '__proto__', 'constructor[prototype][polluted]'), fc.string({ maxLength: 8 })), fc.oneof(strings, numbers.map(String)), { maxKeys: 4 })
    .map((q) => new URLSearchParams(q).toString()),
  fc.constantFrom('version=1&version=2', 'limit=-1', 'after=1e400', 'from=2026-01-01&to=2025-01-01', 'groupBy=requester&groupBy=procedure', '%zz', 'a[b][c]=1', '&&&=')
)
const callers = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ROLE_CALLERS) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_AUTH.map((_a, i) => `bad:${i}`)) })
const extraHeaders = fc.oneof(
  fc.constant({}),
  fc.constantFrom<Record<string, string | string[]>>(
    { 'x-big': 'a'.repeat(60_000) },
    { 'x-request-id': 'a'.repeat(5000) },
    { 'repr-digest': 'sha-256=:AAAA:' },
    { 'repr-digest': ['sha-256=:x:', 'sha-256=:y:'] },
    { 'content-digest': 'garbage' },
    { accept: 'application/xml' },
    { 'accept-encoding': 'gzip;q=2, *;q=-1' },
    { 'x-forwarded-for': '1.2.3.4, <script>' },
    { 'content-length': '5' }
  ),
  fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.string({ unit: 'grapheme-ascii', maxLength: 200 }), { maxKeys: 3 })
)

const request: fc.Arbitrary<FuzzRequest> = fc.constantFrom(...routes).chain((route) => fc.record({
  route: fc.constant(route),
  method: fc.oneof({ weight: 9, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') }),
  params: fc.record({ id: PARAMS.id as fc.Arbitrary<string>, code: PARAMS.code as fc.Arbitrary<string>, token: PARAMS.token as fc.Arbitrary<string>, '*': PARAMS['*'] as fc.Arbitrary<string> }),
  query,
  body: bodyFor(route),
  caller: callers,
  duplicateAuth: fc.nat({ max: 9 }).map((n) => n === 0),
  headers: extraHeaders
}).map(({ route, method, params, query, body, caller, duplicateAuth, headers }) => {
  const url = fillRoute(route.url, params) + (query ? `?${query}` : '')
  const authorization = caller.startsWith('bad:') ? BAD_AUTH[Number(caller.slice(4))] : (tokenOf(w, caller as never) ? `Bearer ${tokenOf(w, caller as never)}` : undefined)
  const all: Record<string, string | string[]> = { ...headers }
  if (authorization !== undefined) all.authorization = duplicateAuth ? [authorization, `Bearer ${w.tokens.admin}`] : authorization
  if (body.type !== undefined) all['content-type'] = body.type
  return {
    caller,
    options: { method: method as InjectOptions['method'], url, headers: all, ...(body.payload !== undefined && method !== 'GET' && method !== 'HEAD' ? { payload: body.payload } : {}) }
  }
}))

/** Sends one request and checks what every answer must be; returns the response. */
async function check (req: FuzzRequest): Promise<LightMyRequestResponse> {
  writes.length = 0
  const before = await fingerprint(w)
  const res = await injectBounded(app, req.options, BOUND_MS)
  const what = `${req.options.method} ${String(req.options.url).slice(0, 120)} as ${req.caller}`
  if (res.statusCode >= 500) throw new Error(`${what}: ${res.statusCode} ${res.body.slice(0, 300)}`)
  if (res.statusCode >= 400) {
    // a HEAD answer has the headers of a problem and no body
    const problem = req.options.method === 'HEAD'
      ? { ok: String(res.headers['content-type']).startsWith('application/problem+json'), code: 'head', why: `content type ${String(res.headers['content-type'])}` }
      : problemOf(res, String(req.options.url))
    if (!problem.ok) throw new Error(`${what}: ${res.statusCode} is not a problem (${problem.why}): ${res.body.slice(0, 200)}`)
    if (writes.length > 0) throw new Error(`${what}: refused with ${res.statusCode} ${problem.code} but wrote ${writes.join(', ')}`)
    if (await fingerprint(w) !== before) throw new Error(`${what}: refused with ${res.statusCode} ${problem.code} but the store changed`)
  }
  return res
}

t.test('the route list comes from the app and holds the known routes', async (t) => {
  t.ok(routes.length >= 30, `${routes.length} routes`)
  const listed = routes.map((r) => `${r.method} ${r.url}`)
  for (const known of ['POST /v1/oauth/token', 'POST /v1/documents', 'GET /v1/documents/:id', 'POST /v1/documents/:id/revoke', 'PUT /v1/documents/:id/file', 'POST /v1/reuse-queries', 'GET /v1/files/:token', 'PUT /v1/agencies/:code', 'PUT /v1/agreements/:id', 'POST /v1/audit/search', 'POST /v1/portal/citizen-documents', 'POST /v1/webhooks/replay', 'GET /health/ready']) {
    t.ok(listed.includes(known), known)
  }
  for (const key of Object.keys(VALID)) t.ok(listed.includes(key), `a valid body is known for a served route: ${key}`)
})

t.test('every route, any input, any caller: never a 5xx, always a problem, never a partial write', async (t) => {
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(request, async (req) => {
    const res = await check(req)
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }), { seed: SEED, numRuns: RUNS, endOnFailure: true })
  t.comment(`statuses: ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ')}`)
  t.ok([...statuses.keys()].some((s) => s < 300), 'some requests got through')
  t.ok([...statuses.keys()].some((s) => s === 400), 'some were refused as malformed')
})

t.test('prototype keys at any depth are a 400 forbidden_key on every JSON route, and pollute nothing', async (t) => {
  const jsonRoutes = routes.filter((r) => ['POST', 'PUT'].includes(r.method) && !['/v1/oauth/token', '/v1/documents/:id/file', '/v1/documents/batch'].includes(r.url))
  t.ok(jsonRoutes.length >= 10)
  await fc.assert(fc.asyncProperty(fc.constantFrom(...jsonRoutes), poisoned, fc.constantFrom('admin', 'issuer', 'requester', 'portal', 'auditor'), async (route, payload, caller) => {
    const authorized = await injectBounded(app, { method: route.method as 'POST', url: fillRoute(route.url, { id: w.docs.birth, code: '000.00.99.H41' }), headers: { ...bearer(w.tokens[caller as 'admin']), 'content-type': 'application/json' }, payload })
    // refused by authorization first (401/403) or by the parser (400 forbidden_key); never accepted
    if (authorized.statusCode === 400) {
      if (authorized.json().code !== 'forbidden_key') throw new Error(`${route.url}: ${authorized.body}`)
    } else if (authorized.statusCode !== 403 && authorized.statusCode !== 401) {
      throw new Error(`${route.url} as ${caller}: ${authorized.statusCode} ${authorized.body.slice(0, 200)}`)
    }
  }), { seed: SEED, numRuns: Math.max(50, Math.floor(RUNS / 3)), endOnFailure: true })
  // one admin route for certain: the parser, not authorization, refuses it
  const res = await app.inject({ method: 'PUT', url: '/v1/agreements/poisoned', headers: { ...bearer(w.tokens.admin), 'content-type': 'application/json' }, payload: `{"requester":"${CODES.requester}","fields":{"constructor":{"prototype":{"polluted":true}}}}` })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'forbidden_key')
  const batch = await app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/x-ndjson' }, payload: '{"__proto__":{"polluted":true}}\n' })
  t.equal(batch.statusCode, 200)
  t.equal(JSON.parse(batch.body.trim()).problem.code, 'forbidden_key', 'a batch line with a prototype key is rejected on its own')
  const form = await app.inject({ method: 'POST', url: '/v1/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '__proto__[polluted]=true&constructor[prototype][polluted]=true&grant_type=client_credentials' })
  t.equal(form.statusCode, 400, 'a form with prototype keys is an invalid request')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')
  t.equal((Object.prototype as Record<string, unknown>).polluted, undefined)
  t.same(Object.getOwnPropertyNames(Object.prototype).filter((name) => name === 'polluted'), [])
})

t.test('a batch of refused requests leaves the store as it was, and the audit chain verifies', async (t) => {
  const before = await fingerprint(w)
  const agencies = (await store.agencies.listAgencies()).length
  const agreements = (await store.agreements.listAgreements()).length
  const refusedOnly = request.filter((r) => r.caller.startsWith('bad:') || r.caller === 'anonymous')
  let sent = 0
  await fc.assert(fc.asyncProperty(refusedOnly, async (req) => {
    const res = await check(req)
    sent++
    if (res.statusCode < 400 && !['/health', '/.well-known', '/docs', '/openapi', '/console', '/v1/oauth/token'].some((p) => String(req.options.url).startsWith(p))) {
      throw new Error(`${String(req.options.url)} answered ${res.statusCode} to a caller without a valid token`)
    }
  }), { seed: SEED + 1, numRuns: Math.max(50, Math.floor(RUNS / 3)), endOnFailure: true })
  t.ok(sent > 0)
  t.equal(await fingerprint(w), before, 'nothing created, changed or removed')
  t.equal((await store.agencies.listAgencies()).length, agencies)
  t.equal((await store.agreements.listAgreements()).length, agreements)
  const verify = await app.inject({ method: 'GET', url: '/v1/audit/verify', headers: bearer(w.tokens.auditor) })
  t.equal(verify.statusCode, 200)
  t.equal(verify.json().ok, true, 'the audit chain verifies after the fuzzing')
})

t.test('regressions found by the fuzzer', async (t) => {
  // a file upload without a body reached the blob store with nothing to store (500); an empty
  // body took the version's one file slot for good
  const land = `/v1/documents/${w.docs.land}/file`
  const bare = await app.inject({ method: 'PUT', url: land, headers: bearer(w.tokens.issuer) })
  t.equal(bare.statusCode, 415)
  t.equal(bare.json().code, 'unsupported_media_type')
  const empty = await app.inject({ method: 'PUT', url: land, headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/pdf' }, payload: '' })
  t.equal(empty.statusCode, 400)
  t.equal(empty.json().code, 'empty_body')
  const real = await app.inject({ method: 'PUT', url: land, headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/pdf' }, payload: PDF })
  t.equal(real.statusCode, 200, 'the real file is still accepted afterwards')
  t.equal(real.json().file.size, PDF.length)

  // a gateway-signed token whose scope is not a string crashed the authorization layer (500)
  const odd = await app.signingKeys.sign({ ...gatewayClaims, jti: randomUUID(), scope: ['admin'], iat: now, exp: now + 300 }, 'at+jwt')
  const res = await app.inject({ method: 'GET', url: '/v1/agencies', headers: bearer(odd) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'claim_invalid')
  t.match(String(res.headers['www-authenticate']), /^Bearer /)

  // URLs Fastify cannot route were answered in its own JSON shape, not as problems
  const long = await app.inject({ method: 'GET', url: `/v1/documents/${'A'.repeat(500)}`, headers: bearer(w.tokens.issuer) })
  t.equal(long.statusCode, 414)
  t.equal(problemOf(long).code, 'path_parameter_too_long')
  t.notMatch(long.body, /AAAAAAAAAA/, 'the path is not echoed')
  const broken = await app.inject({ method: 'GET', url: '/v1/documents/%E0%A4%A', headers: bearer(w.tokens.issuer) })
  t.equal(broken.statusCode, 400)
  t.equal(problemOf(broken).code, 'bad_url')
})
