import t from 'tap'
import { build } from './helper.js'
import { VERSION } from '../src/lib/version.js'

t.test('liveness and readiness on the embedded store', async (t) => {
  const app = await build(t)
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok', store: 'memory', version: VERSION })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', store: 'memory', version: VERSION })
  t.equal(ready.headers['cache-control'], 'no-store')
})

t.test('readiness fails first while the process drains, and the process still serves', async (t) => {
  const app = await build(t)
  app.lifecycle.draining = true
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().status, 'draining')
  t.equal(ready.headers['retry-after'], '1')
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200, 'requests are still answered while draining')
})

t.test('once closing, requests still arriving get a 503 problem and Connection: close', async (t) => {
  const app = await build(t)
  app.lifecycle.closing = true
  const res = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(res.json().code, 'shutting_down')
  t.equal(res.headers.connection, 'close')
  app.lifecycle.closing = false
})

t.test('/docs serves Swagger UI and /openapi.json the contract', async (t) => {
  const app = await build(t)
  const docs = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
  t.match(docs.body, /swagger/i)
  const spec = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(spec.statusCode, 200)
  t.equal(spec.json().openapi, '3.1.0')
  t.ok(spec.json().paths['/health/ready'])
})
