import { connect } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, captureLogs } from './helper.js'
import type { LogCapture } from './helper.js'

/** A route with a strict body schema, standing in for any JSON endpoint. */
function echoRoute (app: FastifyInstance): void {
  app.post('/test/echo', {
    schema: {
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', maxLength: 100 },
          count: { type: 'integer', minimum: 0 },
          nested: { type: 'object', additionalProperties: false, properties: { when: { type: 'string', format: 'date' } } }
        }
      }
    }
  }, async (request) => ({ received: request.body }))
}

async function setup (t: Test, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, logs: LogCapture }> {
  const logs = captureLogs()
  const app = await build(t, { env, logs, extra: echoRoute })
  return { app, logs }
}

/** Bad input is the client's problem, not an incident: nothing at error level. */
function noErrorLogged (t: Test, logs: LogCapture): void {
  t.same(logs.lines.filter((line) => line.level >= 50), [], 'nothing logged at error level')
}

function isProblem (t: Test, res: { statusCode: number, headers: Record<string, unknown>, json: () => any }, status: number, code: string): void {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, 'problem+json')
  const body = res.json()
  t.equal(body.status, status)
  t.equal(body.code, code)
  t.equal(body.type, `urn:reuse-gateway:problem:${code}`)
  t.type(body.title, 'string')
  t.type(body.detail, 'string')
}

const post = (app: FastifyInstance, payload: string | Buffer, contentType = 'application/json') =>
  app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': contentType }, payload })

t.test('a valid body is accepted (the baseline for the cases below)', async (t) => {
  const { app, logs } = await setup(t)
  const res = await post(app, JSON.stringify({ name: 'Nguyễn Văn An', count: 2 }))
  t.equal(res.statusCode, 200)
  t.same(res.json(), { received: { name: 'Nguyễn Văn An', count: 2 } })
  noErrorLogged(t, logs)
})

t.test('malformed JSON is a 400 problem', async (t) => {
  const { app, logs } = await setup(t)
  for (const payload of ['{"name": "a"', '{name: 1}', 'nul', '{"name":"a"} trailing']) {
    isProblem(t, await post(app, payload), 400, 'malformed_json')
  }
  isProblem(t, await post(app, '   '), 400, 'empty_body')
  noErrorLogged(t, logs)
})

t.test('a wrong Content-Type is a 415 problem', async (t) => {
  const { app, logs } = await setup(t)
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
    const res = await post(app, '{"name":"a"}', type)
    isProblem(t, res, 415, 'unsupported_media_type')
    t.match(res.json().detail, /POST \/test\/echo; send Content-Type: application\/json$/, 'names the route and what it accepts')
  }
  const missing = await app.inject({ method: 'POST', url: '/test/echo', payload: '{"name":"a"}', headers: { 'content-type': '' } })
  t.ok([400, 415].includes(missing.statusCode), 'no content type: 4xx')
  noErrorLogged(t, logs)
})

t.test('a body over the limit is a 413 problem', async (t) => {
  const { app, logs } = await setup(t, { BODY_LIMIT_BYTES: '2048' })
  const res = await post(app, JSON.stringify({ name: 'x'.repeat(5000) }))
  isProblem(t, res, 413, 'body_too_large')
  t.equal(res.json().detail, 'the request body is larger than 2048 bytes (BODY_LIMIT_BYTES), the most this route accepts')

  // the token endpoint answers in RFC 6749's words, and names its own limit
  const token = await app.inject({ method: 'POST', url: '/v1/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=client_credentials&client_assertion=${'a'.repeat(20_000)}` })
  t.equal(token.statusCode, 400)
  t.match(token.json(), { error: 'invalid_request', error_description: /larger than 16384 bytes, the most this endpoint accepts/ })
  noErrorLogged(t, logs)
})

t.test('an unknown route is a 404 problem', async (t) => {
  const { app, logs } = await setup(t)
  const res = await app.inject({ method: 'GET', url: '/v1/nothing-here?cccd=001099012345' })
  isProblem(t, res, 404, 'route_not_found')
  t.notMatch(res.json().detail, /001099012345/, 'the query string is not echoed')
  isProblem(t, await app.inject({ method: 'DELETE', url: '/health/live' }), 404, 'route_not_found')
  noErrorLogged(t, logs)
})

t.test('validation failures list JSON pointers to each offending field', async (t) => {
  const { app, logs } = await setup(t)
  const res = await post(app, JSON.stringify({ count: -1, extra: true, nested: { when: '2024-02-30', other: 1 } }))
  isProblem(t, res, 400, 'validation_failed')
  const pointers = res.json().errors.map((e: { pointer: string }) => e.pointer).sort()
  t.same(pointers, ['/count', '/extra', '/name', '/nested/other', '/nested/when'])
  t.ok(res.json().errors.every((e: { in: string }) => e.in === 'body'))
  const unknown = res.json().errors.find((e: { pointer: string }) => e.pointer === '/extra')
  t.equal(unknown.detail, 'is not a known field', 'an unknown field is refused, not dropped')
  noErrorLogged(t, logs)
})

t.test('types are not coerced in a JSON body', async (t) => {
  const { app, logs } = await setup(t)
  isProblem(t, await post(app, JSON.stringify({ name: 'a', count: '3' })), 400, 'validation_failed')
  isProblem(t, await post(app, JSON.stringify({ name: 42 })), 400, 'validation_failed')
  isProblem(t, await post(app, JSON.stringify(['name'])), 400, 'validation_failed')
  noErrorLogged(t, logs)
})

t.test('deep nesting, invalid UTF-8, unpaired surrogates and prototype keys are refused', async (t) => {
  const { app, logs } = await setup(t)
  const deep = '{"name":"a","nested":' + '['.repeat(5000) + ']'.repeat(5000) + '}'
  isProblem(t, await post(app, deep), 400, 'too_deep')
  isProblem(t, await post(app, Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])), 400, 'invalid_utf8')
  isProblem(t, await post(app, '{"name":"\\ud800"}'), 400, 'invalid_unicode')
  isProblem(t, await post(app, '{"name":"a","__proto__":{"admin":true}}'), 400, 'forbidden_key')
  isProblem(t, await post(app, '{"name":"a","nested":{"constructor":{"prototype":{}}}}'), 400, 'forbidden_key')
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was polluted')
  noErrorLogged(t, logs)
})

t.test('text arrives normalized to NFC: decomposed Vietnamese equals its composed twin', async (t) => {
  const { app, logs } = await setup(t)
  const composed = 'Nguyễn Thị Hồng'
  const decomposed = composed.normalize('NFD')
  t.not(decomposed, composed)
  const res = await post(app, JSON.stringify({ name: decomposed }))
  t.equal(res.json().received.name, composed)
  noErrorLogged(t, logs)
})

t.test('request ids: a well-formed incoming X-Request-Id is kept and echoed, others replaced', async (t) => {
  const { app, logs } = await setup(t)
  const kept = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'desk-42.req-0001' } })
  t.equal(kept.headers['x-request-id'], 'desk-42.req-0001')
  const replaced = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'bad id with spaces <script>' } })
  t.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/)
  const problem = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'desk-42.req-0002' } })
  t.equal(problem.json().requestId, 'desk-42.req-0002', 'problem bodies carry the request id')
  const lines = logs.lines.filter((line) => line.requestId === 'desk-42.req-0001')
  t.ok(lines.some((line) => line.msg === 'request completed'), 'its access-log line carries its id')
  noErrorLogged(t, logs)
})

t.test('logs redact credentials and never contain a query string', async (t) => {
  const { app, logs } = await setup(t)
  await app.inject({
    method: 'GET',
    url: '/health/live?subject=001099012345',
    headers: { authorization: 'Bearer secret-token-value', cookie: 'session=abc' }
  })
  const text = logs.text()
  t.notMatch(text, /001099012345/)
  t.notMatch(text, /secret-token-value/)
  t.notMatch(text, /session=abc/)
  t.match(text, /"path":"\/health\/live"/)
  noErrorLogged(t, logs)
})

t.test('a huge header section gets a 431 problem over a real connection, and the server stays up', async (t) => {
  const { app, logs } = await setup(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let data = ''
    socket.on('data', (chunk) => { data += chunk.toString() })
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
    socket.write(`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)
  })
  t.match(raw, /^HTTP\/1\.1 431 /)
  t.match(raw, /application\/problem\+json/)
  t.match(raw, /"code":"headers_too_large"/)
  const after = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(after.status, 200, 'the process is unharmed')
  noErrorLogged(t, logs)
})

t.test('an unexpected failure is a 500 problem that leaks nothing', async (t) => {
  const logs = captureLogs()
  const app = await build(t, {
    logs,
    extra: (app) => { app.get('/test/boom', async () => { throw new Error('secret internals at /srv/db') }) }
  })
  const res = await app.inject({ method: 'GET', url: '/test/boom' })
  isProblem(t, res, 500, 'internal_error')
  t.notMatch(res.body, /secret internals/)
  t.ok(logs.lines.some((line) => line.level === 50), 'and it is logged at error level for operators')
})
