import t from 'tap'
import type { Test } from 'tap'
import { build, captureLogs } from './helper.js'
import { rawRequest } from './lib/raw-http.js'
import type { RawAnswer } from './lib/raw-http.js'

/**
 * Answers given before any route runs — a URL the router cannot take, an expectation the server
 * cannot meet, a target the HTTP parser cannot read — are refusals like any other: a problem
 * body (none for HEAD), the security headers, a request id where there is a request.
 */
const logs = captureLogs()
const app = await build(t, { logs })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as { port: number }).port

/** what every answer carries, as a plain 404 shows it: every header but the per-answer ones */
const frame = await app.inject({ method: 'GET', url: '/no-such-route' })
const PER_ANSWER = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'x-request-id', 'transfer-encoding'])
const shared = Object.entries(frame.headers).filter(([name]) => !PER_ANSWER.has(name))

function carriesTheFrame (t: Test, headers: Record<string, unknown>, what: string): void {
  t.ok(shared.length >= 6, 'the reference answer has its security headers')
  for (const [name, value] of shared) t.equal(headers[name], value, `${what}: ${name}`)
}

function problemOf (t: Test, answer: RawAnswer | { body: string, headers: Record<string, unknown> }, status: number, code: string): Record<string, unknown> {
  t.match(String(answer.headers['content-type']), /^application\/problem\+json/, 'problem+json')
  const body = JSON.parse(answer.body) as Record<string, unknown>
  t.match(body, { status, code, type: `urn:reuse-gateway:problem:${code}` })
  return body
}

t.test('a URL the router refuses (400 bad_url, 414) carries the security headers and the request id', async (t) => {
  for (const [url, status, code] of [
    ['/v1/documents/%E0%A4%A', 400, 'bad_url'],
    [`/v1/documents/${'A'.repeat(500)}`, 414, 'path_parameter_too_long']
  ] as const) {
    const res = await app.inject({ method: 'GET', url, headers: { 'x-request-id': `trace-${status}-0001` } })
    t.equal(res.statusCode, status)
    problemOf(t, res, status, code)
    carriesTheFrame(t, res.headers, code)
    t.equal(res.headers['x-request-id'], `trace-${status}-0001`, 'the caller\'s request id, echoed')
    t.equal(res.json().requestId, `trace-${status}-0001`)
  }
})

t.test('an Expect other than 100-continue is a 417 problem, over a real connection', async (t) => {
  const body = '{"subject":{}}'
  const answer = await rawRequest(port, `POST /v1/reuse-queries HTTP/1.1\r\nHost: gateway\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
  t.equal(answer.status, 417)
  const problem = problemOf(t, answer, 417, 'expectation_failed')
  t.match(String(problem.detail), /100-continue/, 'says which expectation the gateway meets')
  carriesTheFrame(t, answer.headers, '417')
  t.match(answer.headers['x-request-id'], /\S/, 'a request id')
  t.equal(problem.requestId, answer.headers['x-request-id'])

  // 100-continue is still met: the body is asked for and the request goes on to its route
  const continued = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: gateway\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
  t.match(continued.raw, /^HTTP\/1\.1 (100 Continue\r\n\r\nHTTP\/1\.1 )?200 /, 'answered by the route')
  t.equal((await fetch(`http://127.0.0.1:${port}/health/live`)).status, 200, 'the server is unharmed')
})

t.test('HEAD answers carry no body, even when the target cannot be parsed', async (t) => {
  for (const request of [
    'HEAD /a\x01b HTTP/1.1\r\nHost: gateway\r\n\r\n',
    'HEAD /v1/documents/%E0%A4%A HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n'
  ]) {
    const answer = await rawRequest(port, request)
    t.equal(answer.status, 400)
    t.match(answer.headers['content-type'], /^application\/problem\+json/, 'the type the GET would have')
    t.equal(answer.body, '', `no body: ${JSON.stringify(request.split('\r\n')[0])}`)
    carriesTheFrame(t, answer.headers, 'HEAD')
  }
  // behind an earlier request in the same packet of a kept-alive connection, as a client that
  // pipelines sends it: the request that failed is the HEAD, not the packet's first
  const pipelined = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\nHEAD /a\x01b HTTP/1.1\r\nHost: gateway\r\n\r\n')
  t.notMatch(pipelined.raw, /"code":"bad_request"/, 'no problem body for the pipelined HEAD')
  // the same broken target with GET still says what is wrong
  const get = await rawRequest(port, 'GET /a\x01b HTTP/1.1\r\nHost: gateway\r\n\r\n')
  problemOf(t, get, 400, 'bad_request')
  const pipelinedGet = await rawRequest(port, 'HEAD /health/live HTTP/1.1\r\nHost: gateway\r\n\r\nGET /a\x01b HTTP/1.1\r\nHost: gateway\r\n\r\n')
  t.match(pipelinedGet.raw, /"code":"bad_request"/, 'a pipelined GET behind a HEAD gets its body')
})

t.test('answers written on the socket itself (400, 431) carry a request id, in the header and the body', async (t) => {
  for (const [request, status, code] of [
    ['GET /a\x01b HTTP/1.1\r\nHost: gateway\r\n\r\n', 400, 'bad_request'],
    [`GET /health/live HTTP/1.1\r\nHost: gateway\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large']
  ] as const) {
    const answer = await rawRequest(port, request)
    t.equal(answer.status, status)
    const problem = problemOf(t, answer, status, code)
    t.match(answer.headers['x-request-id'], /^[0-9a-f-]{36}$/, `${status}: a request id of its own`)
    t.equal(problem.requestId, answer.headers['x-request-id'], `${status}: the same in the body`)
    carriesTheFrame(t, answer.headers, String(status))
  }
})

t.test('none of this is an incident: nothing logged at error level', async (t) => {
  t.same(logs.lines.filter((line) => line.level >= 50), [])
})
