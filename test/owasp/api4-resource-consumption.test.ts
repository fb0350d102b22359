import { readdirSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../helper.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, requestToken } from '../lib/agencies.js'
import { rawRequest } from '../lib/raw-http.js'
import { bearer, buildWorld, sample } from '../lib/world.js'

/**
 * OWASP API4:2023 Unrestricted Resource Consumption. Every request costs bounded work: bodies,
 * batches, files, header sections and pages have limits answered with a 4xx problem before
 * anything is written; each agency has a request rate per route (the token endpoint one per
 * client address); a process past its event-loop delay or memory sheds load with a 503 while
 * its liveness probe still answers.
 */

function isProblem (t: Test, res: LightMyRequestResponse, status: number, code: string): void {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, 'problem+json')
  t.equal(res.json().code, code)
  t.equal(res.json().status, status)
}

/** every file below `dir` */
function filesIn (dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
  } catch {
    return []
  }
}

t.test('bodies, batches, files and pages over their limits: 413/400 problems, nothing written', async (t) => {
  const w = await buildWorld(t, {
    env: { BODY_LIMIT_BYTES: '8192', BATCH_MAX_LINES: '3', BATCH_BODY_LIMIT_BYTES: '16384', FILE_SIZE_LIMIT_BYTES: '2048' }
  })
  const issuer = bearer(w.tokens.issuer)
  const fresh = (n: number): Record<string, unknown> => {
    const doc = sample('giay-khai-sinh', (d) => d.subject.id !== w.citizen && d.subject.id !== w.otherCitizen)
    doc.documentNumber = `API4-${n}-${Date.now()}`
    return doc as unknown as Record<string, unknown>
  }
  /** a single registration of `doc`: 201 means it was not there yet */
  const registerOnce = async (doc: Record<string, unknown>) => await w.app.inject({ method: 'POST', url: '/v1/documents', headers: issuer, payload: doc })

  // one JSON body over BODY_LIMIT_BYTES
  const big = fresh(1)
  const over = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: { ...issuer, 'content-type': 'application/json' }, payload: JSON.stringify({ ...big, padding: 'x'.repeat(9000) }) })
  isProblem(t, over, 413, 'body_too_large')
  t.equal((await registerOnce(big)).statusCode, 201, 'the refused body indexed nothing')

  // a batch of more lines than BATCH_MAX_LINES: refused whole, no line indexed
  const lines = [fresh(2), fresh(3), fresh(4), fresh(5)]
  const batch = async (payload: string) => await w.app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...issuer, 'content-type': 'application/x-ndjson' }, payload })
  const tooMany = await batch(lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
  isProblem(t, tooMany, 413, 'batch_too_large')
  t.match(tooMany.json().detail, /BATCH_MAX_LINES/)
  // a batch over BATCH_BODY_LIMIT_BYTES: refused whole
  const heavy = await batch(`${JSON.stringify(lines[0])}\n${JSON.stringify({ ...lines[1], padding: 'x'.repeat(20_000) })}\n`)
  isProblem(t, heavy, 413, 'body_too_large')
  for (const line of lines) t.equal((await registerOnce(line)).statusCode, 201, `line ${String(line.documentNumber)} was not indexed by either refused batch`)

  // a file over FILE_SIZE_LIMIT_BYTES, announced or streamed without a length
  const blobsBefore = filesIn(w.app.config.blobDir)
  const target = (await registerOnce(fresh(6))).json().id as string
  const upload = async (payload: Buffer) => await w.app.inject({ method: 'PUT', url: `/v1/documents/${target}/file`, headers: { ...issuer, 'content-type': 'application/pdf' }, payload })
  isProblem(t, await upload(Buffer.alloc(4096, 0x25)), 413, 'file_too_large')
  // streamed (chunked, no length announced), over a real connection: the count stops it
  await w.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = w.app.server.address() as AddressInfo
  const streamed = await fetch(`http://127.0.0.1:${port}/v1/documents/${target}/file`, {
    method: 'PUT',
    headers: { ...issuer, 'content-type': 'application/pdf' },
    body: Readable.toWeb(Readable.from([Buffer.alloc(1500, 1), Buffer.alloc(1500, 2)])) as ReadableStream,
    duplex: 'half'
  } as RequestInit)
  t.equal(streamed.status, 413, 'a streamed file over the limit: 413')
  t.equal(((await streamed.json()) as { code: string }).code, 'file_too_large')
  t.same(filesIn(w.app.config.blobDir), blobsBefore, 'no bytes of either file were kept')
  const read = await w.app.inject({ method: 'GET', url: `/v1/documents/${target}`, headers: issuer })
  t.notOk(read.json().file, 'the document has no file')
  t.equal((await upload(Buffer.from('%PDF-1.7 small'))).statusCode, 200, 'a file within the limit is still accepted')

  // pages are capped: a client cannot ask for everything at once
  isProblem(t, await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { limit: 100_000 } }), 400, 'validation_failed')
  isProblem(t, await w.app.inject({ method: 'GET', url: '/v1/webhooks/deliveries?limit=100000', headers: bearer(w.tokens.portal) }), 400, 'validation_failed')
  isProblem(t, await w.app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: bearer(w.tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen }, limit: 100_000 } }), 400, 'validation_failed')
})

t.test('a batch of too many lines is refused while it arrives: parallel 64 MiB bodies of newlines are answered before they are sent', async (t) => {
  // BATCH_BODY_LIMIT_BYTES keeps its default (64 MiB): only the line count can stop these early
  const w = await buildWorld(t, { env: { BATCH_MAX_LINES: '1000' } })
  await w.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = w.app.server.address() as AddressInfo
  const size = w.app.config.limits.batchBytes
  const newlines = Buffer.alloc(1024 * 1024, '\n')

  /** posts `size` bytes of newlines, written only as fast as the server reads them */
  const send = async () => await new Promise<{ status: number, body: string, sentWhenAnswered: number }>((resolve, reject) => {
    let sent = 0
    let answered = false
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/documents/batch',
      headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/x-ndjson', 'content-length': String(size) }
    }, (res) => {
      answered = true
      const sentWhenAnswered = sent
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { req.destroy(); resolve({ status: res.statusCode ?? 0, body, sentWhenAnswered }) })
      res.on('error', reject)
    })
    // once it has answered, the server closes the connection under the rest of the body
    req.on('error', (err) => { if (!answered) reject(err) })
    const pump = (): void => {
      while (!answered && sent < size) {
        sent += newlines.length
        if (!req.write(newlines)) { req.once('drain', pump); return }
      }
      if (!answered) req.end()
    }
    pump()
  })

  const answers = await Promise.all([send(), send(), send()])
  for (const [i, answer] of answers.entries()) {
    t.equal(answer.status, 413, `request ${i + 1}: 413`)
    t.equal(JSON.parse(answer.body).code, 'batch_too_large')
    t.match(JSON.parse(answer.body).detail, /more than 1000 lines/)
    // the kernel's socket buffers hold a few MiB at most: the rest was never asked for
    t.ok(answer.sentWhenAnswered < size / 4, `request ${i + 1}: answered after ${answer.sentWhenAnswered} of ${size} bytes were sent`)
  }

  // the gateway is unharmed and a batch within the limits is still indexed
  const doc = sample('giay-khai-sinh', (d) => d.subject.id !== w.citizen && d.subject.id !== w.otherCitizen)
  doc.documentNumber = `API4-STREAM-${Date.now()}`
  const ok = await fetch(`http://127.0.0.1:${port}/v1/documents/batch`, {
    method: 'POST',
    headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/x-ndjson' },
    body: `${JSON.stringify(doc)}\n`
  })
  t.equal(ok.status, 200)
  t.equal(JSON.parse(await ok.text()).outcome, 'created')
})

t.test('MAX_HEADER_BYTES bounds the header section and the request line: 431 problem, the server stays up', async (t) => {
  const app = await build(t, { env: { MAX_HEADER_BYTES: '4096' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0

  const within = await rawRequest(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(2000)}\r\n\r\n`)
  t.equal(within.status, 200, 'a 2 KB header is within 4 KB')
  const header = await rawRequest(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(6000)}\r\n\r\n`)
  t.equal(header.status, 431, 'a 6 KB header is over')
  t.match(header.headers['content-type'], /^application\/problem\+json/)
  t.equal(JSON.parse(header.body).code, 'headers_too_large')
  const url = await rawRequest(port, `GET /health/live?${'q=1&'.repeat(1500)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.equal(url.status, 431, 'a 6 KB request line is over too')
  t.equal((await fetch(`http://127.0.0.1:${port}/health/live`)).status, 200, 'the server is unharmed')
})

t.test('the token endpoint is limited per client address; probes, public keys and the contract are not limited', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { env: { ...adminEnv(admin), RATE_LIMIT_PER_MINUTE: '2' } })
  const from = async (remoteAddress: string) => await app.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    remoteAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(app, admin)
    }).toString()
  })
  t.equal((await from('192.0.2.10')).statusCode, 200)
  t.equal((await from('192.0.2.10')).statusCode, 200)
  const refused = await from('192.0.2.10')
  isProblem(t, refused, 429, 'rate_limited')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After')
  t.equal((await from('192.0.2.11')).statusCode, 200, 'another client address has its own count')
  t.equal((await requestToken(app, await assertion(app, admin))).statusCode, 200, 'and so does a third')

  for (const url of ['/health/live', '/health/ready', '/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/openapi.json']) {
    const statuses = new Set<number>()
    let headers = false
    for (let i = 0; i < 4; i++) {
      const res = await app.inject({ method: 'GET', url, remoteAddress: '192.0.2.10' })
      statuses.add(res.statusCode)
      headers ||= res.headers['ratelimit-limit'] !== undefined
    }
    t.same([...statuses], [200], `${url}: never limited`)
    t.notOk(headers, `${url}: no rate-limit headers`)
  }
})

/** Polls `predicate` every 20 ms, for at most `ms`. */
async function until (predicate: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return true
}

async function shedsButLives (t: Test, app: FastifyInstance): Promise<void> {
  const [shed, live, ready] = await Promise.all([
    app.inject({ method: 'GET', url: '/v1/document-types' }),
    app.inject({ method: 'GET', url: '/health/live' }),
    app.inject({ method: 'GET', url: '/health/ready' })
  ])
  isProblem(t, shed, 503, 'overloaded')
  t.ok(Number(shed.headers['retry-after']) >= 1, 'Retry-After')
  const { requestId, ...said } = shed.json() as Record<string, unknown>
  t.type(requestId, 'string')
  t.notMatch(JSON.stringify(said), /eventLoop|heap|rss|memory|[0-9]{4,}/i, 'which limit and by how much stay in the log')
  t.equal(live.statusCode, 200, 'liveness still answers')
  t.equal(ready.statusCode, 200, 'readiness still answers (it reports the store)')
}

t.test('load shedding: past the heap limit every API request gets 503 overloaded, the probes answer', async (t) => {
  const app = await build(t, { env: { LOAD_SHED_MAX_HEAP_BYTES: '1', LOAD_SHED_SAMPLE_INTERVAL_MS: '50' } })
  const isUnderPressure = (app as unknown as { isUnderPressure: () => boolean }).isUnderPressure
  t.ok(await until(() => isUnderPressure(), 5000), 'the first sample is over 1 byte of heap')
  await shedsButLives(t, app)
})

t.test('load shedding: a blocked event loop sheds load until it recovers', async (t) => {
  const app = await build(t, { env: { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '200', LOAD_SHED_SAMPLE_INTERVAL_MS: '1000' } })
  const isUnderPressure = (app as unknown as { isUnderPressure: () => boolean }).isUnderPressure
  t.ok(await until(() => !isUnderPressure(), 10_000), 'not under pressure to begin with')
  t.equal((await app.inject({ method: 'GET', url: '/v1/document-types' })).statusCode, 401, 'served (and refused for want of a token)')
  const blockedUntil = Date.now() + 2500
  while (Date.now() < blockedUntil) { /* the event loop is stuck, as under a CPU-bound request */ }
  t.ok(await until(() => isUnderPressure(), 5000), 'the next sample sees the delay')
  await shedsButLives(t, app)
  t.ok(await until(() => !isUnderPressure(), 10_000), 'the sample after a free second is back under the limit')
  t.equal((await app.inject({ method: 'GET', url: '/v1/document-types' })).statusCode, 401, 'served again')
})
