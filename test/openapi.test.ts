import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { build } from './helper.js'

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
