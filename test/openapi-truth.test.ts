// The published contract says what the server does, checked from the server's side: what it
// answers is declared (status, media type, every header it adds), what the schemas refuse the
// server refuses with `validation_failed`, and the webhooks it sends match the document's
// `webhooks` section, signed as the Reuse-Signature parameter says.
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import t from 'tap'
import { parse } from 'yaml'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { compactVerify, createLocalJWKSet } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { register } from './lib/agencies.js'
import { CODES, PDF, bearer, buildWorld, downloadLink, reuseQuery } from './lib/world.js'
import { startReceiver } from './lib/webhook-receiver.js'
import type { ReceivedDelivery } from './lib/webhook-receiver.js'

interface Response { headers?: Record<string, unknown>, content?: Record<string, unknown> }
interface Operation { responses: Record<string, Response>, parameters?: Array<{ $ref?: string, name?: string }> }
interface Contract {
  paths: Record<string, Record<string, Operation>>
  webhooks: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Record<string, unknown>>, parameters: Record<string, { name: string, schema: Record<string, unknown> }> }
}
const contract = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')) as Contract

// a validator of the published schemas as a third party would build one: the document itself
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false })
addFormats(ajv)
ajv.addSchema({ ...contract, $id: 'contract' })
const accepts = (component: string, value: unknown): boolean => ajv.validate({ $ref: `contract#/components/schemas/${component}` }, value) as boolean

/** What every answer may carry without the contract naming it: HTTP's own and the security headers. */
const UNDECLARED_OK = new Set([
  'content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding', 'vary', 'cache-control', 'pragma',
  'content-security-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy', 'origin-agent-cluster', 'referrer-policy',
  'strict-transport-security', 'x-content-type-options', 'x-dns-prefetch-control', 'x-download-options', 'x-frame-options',
  'x-permitted-cross-domain-policies', 'x-xss-protection'
])

t.test('every header, status and media type the gateway answers is declared for that operation', async (t) => {
  const w = await buildWorld(t, { env: { RATE_LIMIT_ROUTES: 'stats=1' } })
  const checked: string[] = []
  const check = (method: string, path: string, res: LightMyRequestResponse): void => {
    const name = `${method} ${path} ${res.statusCode}`
    checked.push(name)
    const response = contract.paths[path]?.[method.toLowerCase()]?.responses[String(res.statusCode)]
    if (!response) { t.fail(`${name} is not declared`); return }
    const declared = Object.keys(response.headers ?? {}).map((h) => h.toLowerCase())
    for (const header of Object.keys(res.headers)) {
      if (!UNDECLARED_OK.has(header)) t.ok(declared.includes(header), `${name} declares the ${header} it sends`)
    }
    const type = String(res.headers['content-type'] ?? '').split(';')[0] as string
    if (res.statusCode !== 204) t.ok(Object.keys(response.content ?? {}).includes(type), `${name} declares its media type ${type}`)
  }
  const inject = async (method: 'GET' | 'POST' | 'PUT', path: string, url: string, options: { token?: string, headers?: Record<string, string>, payload?: unknown } = {}): Promise<LightMyRequestResponse> => {
    const res = await w.app.inject({ method, url, headers: { ...bearer(options.token), ...options.headers }, ...(options.payload !== undefined ? { payload: options.payload as string } : {}) })
    check(method, path, res)
    return res
  }

  const query = await inject('POST', '/v1/reuse-queries', '/v1/reuse-queries', { token: w.tokens.requester, payload: reuseQuery(w) })
  t.equal(query.statusCode, 200)
  t.ok(query.headers['reuse-receipt'])
  const download = await inject('GET', '/v1/files/{token}', await downloadLink(w), { token: w.tokens.requester })
  t.equal(download.statusCode, 200)
  t.equal(download.headers['content-type'], 'application/pdf')
  t.ok(download.headers['repr-digest'])
  const digest = `sha-256=:${createHash('sha256').update(PDF).digest('base64')}:`
  const upload = await inject('PUT', '/v1/documents/{id}/file', `/v1/documents/${w.docs.otherCitizenBirth}/file`, { token: w.tokens.issuer, headers: { 'content-type': 'image/png', 'repr-digest': digest }, payload: PDF })
  t.equal(upload.statusCode, 200)
  t.equal((await inject('GET', '/v1/documents/{id}', `/v1/documents/${w.docs.birth}`)).statusCode, 401)
  const forbidden = await inject('GET', '/v1/agencies', '/v1/agencies', { token: w.tokens.requester })
  t.equal(forbidden.statusCode, 403)
  t.match(forbidden.headers['www-authenticate'], /insufficient_scope/)
  t.equal((await inject('GET', '/v1/stats/reuse', '/v1/stats/reuse', { token: w.tokens.auditor })).statusCode, 200)
  const limited = await inject('GET', '/v1/stats/reuse', '/v1/stats/reuse', { token: w.tokens.auditor })
  t.equal(limited.statusCode, 429)
  t.ok(limited.headers['retry-after'])
  t.equal((await inject('POST', '/v1/consents/revoke', '/v1/consents/revoke', { token: w.tokens.portal, payload: { consentId: 'c-1' } })).statusCode, 204)
  t.equal((await inject('POST', '/v1/documents', '/v1/documents', { token: w.tokens.issuer, headers: { 'content-type': 'text/plain' }, payload: 'x' })).statusCode, 415)
  t.equal((await inject('GET', '/health/ready', '/health/ready')).statusCode, 200)
  t.equal((await inject('GET', '/.well-known/jwks.json', '/.well-known/jwks.json')).statusCode, 200)
  t.equal((await inject('POST', '/v1/oauth/token', '/v1/oauth/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password' })).statusCode, 400)
  // refused reuse queries carry their receipt, declared on each refusal that has one
  const refused = await inject('POST', '/v1/reuse-queries', '/v1/reuse-queries', { token: w.tokens.requester, payload: reuseQuery(w, ['giay-chung-nhan-ket-hon']) })
  t.equal(refused.statusCode, 403)
  t.ok(refused.headers['reuse-receipt'], 'a 403 with its receipt')
  const invalid = await inject('POST', '/v1/reuse-queries', '/v1/reuse-queries', { token: w.tokens.requester, payload: { ...reuseQuery(w), documentTypes: [] } })
  t.equal(invalid.statusCode, 400)
  t.ok(invalid.headers['reuse-receipt'], 'a 400 with its receipt')
  const unread = await inject('POST', '/v1/reuse-queries', '/v1/reuse-queries', { token: w.tokens.requester, headers: { 'content-type': 'text/plain' }, payload: 'x' })
  t.equal(unread.statusCode, 415)
  t.notOk(unread.headers['reuse-receipt'], 'no receipt over a body the gateway did not read')
  // refusals before any route runs are declared on every operation
  t.equal((await inject('GET', '/health/ready', '/health/ready', { headers: { expect: 'teapot' } })).statusCode, 417)
  t.equal((await inject('GET', '/v1/documents/{id}', '/v1/documents/%E0%A4%A')).statusCode, 400)
  t.equal(checked.length, 17, 'every answer above was checked')
})

t.test('an agency with neither jwks nor jwksUri, or both, is refused by the schema the document publishes', async (t) => {
  const w = await buildWorld(t)
  const code = '000.00.88.H41'
  const keys = w.agencies.requester.jwks
  const cases: Array<[string, Record<string, unknown>]> = [
    ['neither', { name: 'Sở Y tế', roles: ['requester'] }],
    ['both', { name: 'Sở Y tế', roles: ['requester'], jwks: keys, jwksUri: 'https://keys.so-yte.gov.vn/jwks.json' }]
  ]
  for (const [which, body] of cases) {
    t.notOk(accepts('AgencyPut', body), `${which}: the published AgencyPut refuses it`)
    const res = await w.app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: bearer(w.tokens.admin), payload: body })
    t.equal(res.statusCode, 400, which)
    t.equal(res.json().code, 'validation_failed', `${which}: refused by the schema, as the document says`)
  }
  t.equal((await w.app.inject({ method: 'GET', url: `/v1/agencies/${code}`, headers: bearer(w.tokens.admin) })).statusCode, 404, 'nothing was registered')
  for (const body of [{ name: 'Sở Y tế', roles: ['requester'], jwks: keys }, { name: 'Sở Y tế', roles: ['requester'], jwksUri: 'https://keys.so-yte.gov.vn/jwks.json' }]) {
    t.ok(accepts('AgencyPut', body), 'one of the two is what the schema asks')
  }
  t.equal((await w.app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: bearer(w.tokens.admin), payload: { name: 'Sở Y tế', roles: ['requester'], jwks: keys } })).statusCode, 201)
})

t.test('a defaultValidity that is not an ISO 8601 duration is refused by the schema the document publishes', async (t) => {
  const w = await buildWorld(t)
  const published = (contract.components.schemas.DocumentTypePut as { properties: { defaultValidity: { pattern: string } } }).properties.defaultValidity.pattern
  const pattern = new RegExp(published, 'u')
  const type = (validity: unknown): Record<string, unknown> => ({ name: { vi: 'Giấy thử', en: 'Test paper' }, subjectKinds: ['citizen'], defaultValidity: validity, consentRequired: false, schema: { type: 'object', properties: {} } })
  for (const bad of ['6 months', 'P', 'P6', 'PT6H', 'p6m', 'P6M ']) {
    t.notOk(pattern.test(bad), `${bad}: not in the published pattern`)
    t.notOk(accepts('DocumentTypePut', type(bad)))
    const res = await w.app.inject({ method: 'PUT', url: '/v1/document-types/giay-thu', headers: bearer(w.tokens.admin), payload: type(bad) })
    t.equal(res.statusCode, 400, bad)
    t.equal(res.json().code, 'validation_failed', `${bad}: refused by the schema`)
    t.equal(res.json().errors?.[0]?.pointer, '/defaultValidity')
  }
  for (const good of ['P6M', 'P1Y', 'P2W', 'P90D', 'P1Y6M', null]) {
    t.ok(accepts('DocumentTypePut', type(good)), `${String(good)} is in the published schema`)
    const res = await w.app.inject({ method: 'PUT', url: '/v1/document-types/giay-thu', headers: bearer(w.tokens.admin), payload: type(good) })
    t.ok(res.statusCode === 200 || res.statusCode === 201, `${String(good)} is accepted`)
  }
})

t.test('the webhooks the gateway sends are what the document\'s webhooks section says', async (t) => {
  const portal = await startReceiver()
  const requesterHook = await startReceiver()
  t.teardown(async () => { await portal.close(); await requesterHook.close() })
  const w = await buildWorld(t, { env: { OUTBOX_WORKER: 'true', PORTAL_WEBHOOK_URL: portal.url, OUTBOX_POLL_MS: '30' } })
  await register(w.app, w.tokens.admin, w.agencies.requester, ['requester'], { webhookUrl: requesterHook.url })
  t.equal((await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })).statusCode, 200)
  const revoked = await w.app.inject({ method: 'POST', url: `/v1/documents/${w.docs.birth}/revoke`, headers: bearer(w.tokens.issuer), payload: { reason: 'cấp nhầm' } })
  t.equal(revoked.statusCode, 200)
  const fact = `${w.docs.birth}.1.revoked`
  const announcements = await portal.until((got) => got.some((d) => d.body.id === fact))
  const notices = await requesterHook.until((got) => got.some((d) => d.body.id === fact))
  t.ok(announcements.some((d) => d.body.type === 'document.indexed'), 'indexing was announced too')

  const jwks = createLocalJWKSet((await w.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
  const parameters = (webhook: string): Array<{ name: string, required?: boolean, schema: Record<string, unknown> }> =>
    ((contract.webhooks[webhook]?.post as Operation).parameters ?? []).map((p) => contract.components.parameters[String(p.$ref).split('/').pop() as string] as { name: string, required?: boolean, schema: Record<string, unknown> })
  const check = async (webhook: string, component: string, delivery: ReceivedDelivery): Promise<void> => {
    const name = `${webhook} ${delivery.body.id}`
    t.ok(accepts(component, delivery.body), `${name}: the body is a ${component}`)
    for (const parameter of parameters(webhook)) {
      const value = delivery.headers[parameter.name.toLowerCase()]
      // a header declared optional (traceparent, sent with tracing on) is checked where it is sent
      if (!parameter.required && value === undefined) continue
      t.type(value, 'string', `${name} carries ${parameter.name}`)
      t.ok(ajv.validate(parameter.schema, parameter.schema.type === 'integer' ? Number(value) : value), `${name}: ${parameter.name} is as declared`)
    }
    t.equal(delivery.headers['reuse-event-id'], delivery.body.id)
    // verified as the Reuse-Signature description says: the body's base64url between the two dots
    const [header, , signature] = String(delivery.headers['reuse-signature']).split('.')
    const verified = await compactVerify(`${header}.${Buffer.from(delivery.raw).toString('base64url')}.${signature}`, jwks)
    t.equal(verified.protectedHeader.typ, 'reuse-webhook+jws', `${name}: signed by the gateway`)
  }
  for (const delivery of announcements) await check('documentAnnouncement', 'WebhookAnnouncement', delivery)
  for (const delivery of notices) await check('reuseNotice', 'WebhookNotice', delivery)
  const notice = notices.find((d) => d.body.id === fact)?.body as { recipient?: string, reuses?: unknown[] }
  t.equal(notice.recipient, CODES.requester)
  t.equal(notice.reuses?.length, 1)
  t.notOk(accepts('WebhookNotice', { ...notice, subject: { kind: 'citizen', id: w.citizen } }), 'a notice never carries the subject')
})
