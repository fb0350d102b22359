import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { FILE_MEDIA_TYPES } from '../src/services/documents.js'
import { build } from './helper.js'
import { servedRoutes } from './lib/world.js'

/**
 * openapi.yaml is the published contract: it must be exactly what the running server generates.
 * `UPDATE_OPENAPI=1 npm test` rewrites it after a deliberate change.
 */
const file = new URL('../openapi.yaml', import.meta.url)

t.test('the committed openapi.yaml is what the server generates', async (t) => {
  const app = await build(t)
  const generated = app.swagger({ yaml: true })
  if (process.env.UPDATE_OPENAPI === '1') {
    writeFileSync(file, generated)
    t.comment('openapi.yaml rewritten')
  }
  const committed = readFileSync(file, 'utf8')
  t.equal(committed, generated, 'openapi.yaml is stale: run UPDATE_OPENAPI=1 npm test and commit it')
})

t.test('the document is OpenAPI 3.1 and every error response is a problem', async (t) => {
  const app = await build(t)
  const doc = app.swagger() as unknown as {
    openapi: string
    components: { schemas: Record<string, unknown> }
    paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>>
  }
  t.equal(doc.openapi, '3.1.0')
  t.ok(doc.components.schemas.Problem, 'Problem is a named component')
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (Number(status) >= 400 && !path.startsWith('/health') && !(path === '/v1/oauth/token' && status !== '503')) {
          t.ok(response.content?.['application/problem+json'], `${method.toUpperCase()} ${path} ${status} is application/problem+json`)
        }
      }
    }
  }
})

// --- what every operation declares, checked against the routes the server really serves ---

interface Operation {
  operationId?: string
  security?: unknown[]
  parameters?: Array<{ name: string, in: string, $ref?: string }>
  requestBody?: { content: Record<string, { schema?: { type?: string, format?: string } }> }
  responses: Record<string, { headers?: Record<string, unknown>, content?: Record<string, unknown> }>
}
interface Contract {
  paths: Record<string, Record<string, Operation>>
  webhooks?: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Record<string, unknown>>, headers?: Record<string, unknown>, parameters?: Record<string, { name: string }> }
}
const contract = parse(readFileSync(file, 'utf8')) as Contract
const toOpenApi = (url: string): string => url.replace(/:([A-Za-z]+)/g, '{$1}')
const headerNames = (response: { headers?: Record<string, unknown> } | undefined): string[] => Object.keys(response?.headers ?? {}).map((h) => h.toLowerCase())

t.test('every served operation has a stable operationId and declares every status the gateway may answer', async (t) => {
  const app = await build(t, { env: { OUTBOX_WORKER: 'false' } })
  // the docs and the web console are pages for people, not API operations
  const served = servedRoutes(app).filter((r) => !/^\/(docs(\/.*)?|openapi\.json|console(\/.*)?)$/.test(r.url))
  t.ok(served.length >= 25)
  const ids = new Set<string>()
  for (const route of served) {
    const name = `${route.method} ${route.url}`
    const operation = contract.paths[toOpenApi(route.url)]?.[route.method.toLowerCase()]
    if (!operation) { t.fail(`${name} is not in openapi.yaml`); continue }
    t.match(operation.operationId, /^[a-z]+[A-Z][A-Za-z]*$/, `${name} has a camelCase verbNoun operationId`)
    t.notOk(ids.has(operation.operationId as string), `${name}: ${operation.operationId} is unique`)
    ids.add(operation.operationId as string)
    const statuses = Object.keys(operation.responses)
    const isPublic = operation.security !== undefined && operation.security.length === 0
    t.ok(statuses.some((s) => /^4/.test(s)), `${name} declares a 4xx`)
    for (const status of ['431', '500']) t.ok(statuses.includes(status), `${name} declares ${status}`)
    t.ok(statuses.includes('503'), `${name} declares 503`)
    if (['POST', 'PUT', 'PATCH'].includes(route.method)) {
      for (const status of ['413', '415']) t.ok(statuses.includes(status), `${name} has a body: declares ${status}`)
    }
    if (route.url.includes(':')) t.ok(statuses.includes('414'), `${name} has a path parameter: declares 414`)
    if (!isPublic || route.url === '/v1/oauth/token') t.ok(statuses.includes('429'), `${name} declares 429`)
    for (const [status, response] of Object.entries(operation.responses)) {
      const headers = headerNames(response)
      if (status !== '431') t.ok(headers.includes('x-request-id'), `${name} ${status} declares X-Request-Id`)
      if (status === '429' || status === '503') t.ok(headers.includes('retry-after'), `${name} ${status} declares Retry-After`)
      if (!isPublic && (status === '401' || status === '403')) t.ok(headers.includes('www-authenticate'), `${name} ${status} declares WWW-Authenticate`)
      if (statuses.includes('429') && /^2/.test(status)) {
        for (const header of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) t.ok(headers.includes(header), `${name} ${status} declares ${header}`)
      }
    }
  }
  t.equal(contract.paths['/v1/oauth/token']?.post?.security?.length, 0, 'the token endpoint says it needs no access token')
})

t.test('a generated client can upload a file and knows what a download serves', async (t) => {
  const upload = contract.paths['/v1/documents/{id}/file']?.put as Operation
  t.same(Object.keys(upload.requestBody?.content ?? {}).sort(), [...FILE_MEDIA_TYPES].sort(), 'the upload takes the media types the server parses')
  for (const media of Object.values(upload.requestBody?.content ?? {})) t.same(media.schema, { type: 'string', format: 'binary', description: 'the bytes themselves' })
  t.ok(upload.parameters?.some((p) => p.in === 'header' && p.name.toLowerCase() === 'repr-digest'), 'Repr-Digest is a declared request header')
  const download = contract.paths['/v1/files/{token}']?.get as Operation
  t.same(Object.keys(download.responses['200']?.content ?? {}).sort(), [...FILE_MEDIA_TYPES].sort(), 'a download is in one of the media types an upload may have')
  t.ok(headerNames(download.responses['200']).includes('repr-digest'))
  t.ok(headerNames(download.responses['200']).includes('digest'))
  t.ok(headerNames(contract.paths['/v1/reuse-queries']?.post?.responses['200']).includes('reuse-receipt'))
})

t.test('the webhooks the gateway sends are in the document, signed with Reuse-Signature', async (t) => {
  t.same(Object.keys(contract.webhooks ?? {}).sort(), ['documentAnnouncement', 'reuseNotice'])
  for (const [name, item] of Object.entries(contract.webhooks ?? {})) {
    const operation = item.post as Operation
    const headers = (operation.parameters ?? []).map((p) => contract.components.parameters?.[String(p.$ref).split('/').pop() as string]?.name)
    t.same(headers, ['Reuse-Signature', 'Reuse-Event-Id', 'Reuse-Event-Cursor', 'Reuse-Delivery-Attempt', 'traceparent'], `${name} declares the delivery headers (traceparent with tracing on)`)
    t.ok(operation.requestBody?.content['application/json'], `${name} has a JSON body`)
  }
  t.ok(contract.components.schemas.WebhookAnnouncement)
  t.ok(contract.components.schemas.WebhookNotice)
})
