import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ROOT_CONTEXT, context } from '@opentelemetry/api'
import { suppressTracing } from '@opentelemetry/core'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'

/**
 * OpenTelemetry traces. This process starts tracing as server.ts does (src/tracing.ts), with an
 * in-memory exporter, BEFORE it loads any module of the gateway: the instrumentations patch
 * ioredis and http as they are imported, which is why everything of the gateway below is a
 * dynamic import. Real gateway processes show the environment's side: off by default (the SDK
 * not even loaded), and on with OTEL_* exporting OTLP/HTTP to a receiver on loopback.
 */
const exporter = new InMemorySpanExporter()
const { startTracing } = await import('../src/tracing.js')
const tracing = await startTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
t.teardown(async () => await tracing.shutdown())

const { loadConfig, tracingWanted } = await import('../src/config.js')
const { buildWorld, bearer, reuseQuery, sample } = await import('./lib/world.js')
const { captureLogs } = await import('./helper.js')
const { startTestRedis } = await import('./lib/redis-server.js')
const { testRedisStore } = await import('./lib/redis-store.js')
const { startReceiver } = await import('./lib/webhook-receiver.js')
const { startGateway } = await import('./lib/gateway-process.js')

/** tracing on for the app's configuration (the SDK itself was started above, with its exporter) */
const TRACED = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }

/** a caller's span, as a W3C traceparent carries it */
function callerSpan (): { traceId: string, spanId: string, traceparent: string } {
  const traceId = randomBytes(16).toString('hex')
  const spanId = randomBytes(8).toString('hex')
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` }
}

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

/** the spans of a trace once `done` holds on them (spans are exported as they end) */
async function traceSpans (traceId: string, done: (spans: ReadableSpan[]) => boolean, ms = 10_000): Promise<ReadableSpan[]> {
  const deadline = Date.now() + ms
  for (;;) {
    const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId)
    if (done(spans)) return spans
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${spans.map((s) => s.name).join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** every span's parent is in the trace, or is the caller's span: nothing still open */
const complete = (callerSpanId: string) => (spans: ReadableSpan[]): boolean =>
  spans.length > 0 && spans.every((s) => parentOf(s) === callerSpanId || spans.some((p) => p.spanContext().spanId === parentOf(s)))

/** the names of a span's ancestors in its trace, nearest first */
function ancestry (span: ReadableSpan, spans: ReadableSpan[]): ReadableSpan[] {
  const out: ReadableSpan[] = []
  let parent = parentOf(span)
  while (parent !== undefined) {
    const found = spans.find((s) => s.spanContext().spanId === parent)
    if (!found) break
    out.push(found)
    parent = parentOf(found)
  }
  return out
}

t.test('the OTEL_* variables turn tracing on as the SDK reads them, and a bad one stops the start', async (t) => {
  const cases: Array<[Record<string, string>, boolean]> = [
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'otlp, console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, false],
    [{ OTEL_TRACES_EXPORTER: 'none,otlp' }, false],
    [{ OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    [{ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_SERVICE_NAME: 'gw', OTEL_TRACES_SAMPLER: 'always_on' }, false]
  ]
  for (const [env, on] of cases) {
    t.equal(tracingWanted(env), on, JSON.stringify(env))
    t.equal(loadConfig({ NODE_ENV: 'test', ...env }).tracing, on, 'and the configuration says the same')
  }
  t.throws(() => loadConfig({ NODE_ENV: 'test', OTEL_TRACES_EXPORTER: 'jaeger' }), { name: 'ConfigError', message: /OTEL_TRACES_EXPORTER/ })
  t.throws(() => loadConfig({ NODE_ENV: 'test', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), { name: 'ConfigError', message: /OTEL_EXPORTER_OTLP_ENDPOINT/ })
  t.throws(() => loadConfig({ NODE_ENV: 'test', OTEL_SDK_DISABLED: 'yes' }), { name: 'ConfigError', message: /OTEL_SDK_DISABLED/ })
})

t.test('a reuse query on Redis is one trace: the caller\'s, from the route through the store and Redis to the signatures', async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const store = await testRedisStore(t, redis)
  const logs = captureLogs()
  const w = await buildWorld(t, { store, env: TRACED, logs })
  const base = await w.app.listen({ host: '127.0.0.1', port: 0 })
  const caller = callerSpan()

  const res = await fetch(`${base}/v1/reuse-queries`, {
    method: 'POST',
    headers: { ...bearer(w.tokens.requester), 'content-type': 'application/json', traceparent: caller.traceparent },
    body: JSON.stringify(reuseQuery(w))
  })
  t.equal(res.status, 200)
  const answer = await res.json() as { results: Array<{ documents: unknown[] }> }
  t.equal(answer.results[0]?.documents.length, 2, 'two birth certificates found and released')

  const spans = await traceSpans(caller.traceId, (spans) => spans.some((s) => s.kind === 1 && parentOf(s) === caller.spanId) && complete(caller.spanId)(spans))
  const server = spans.find((s) => s.kind === 1 && parentOf(s) === caller.spanId) as ReadableSpan
  t.ok(server, 'the HTTP server span is a child of the caller\'s span')
  t.equal(server.name, 'POST /v1/reuse-queries', 'named after the route template')
  t.equal(server.attributes['http.route'], '/v1/reuse-queries')
  const below = (span: ReadableSpan): boolean => ancestry(span, spans).includes(server)

  const route = spans.find((s) => s.attributes['http.route'] === '/v1/reuse-queries' && s.instrumentationScope.name === '@fastify/otel' && s.name === 'request')
  t.ok(route && below(route), 'the route\'s span (@fastify/otel) is under the server span')
  const read = spans.find((s) => s.name === 'store documents.documentsOfSubject')
  t.ok(read && below(read), 'the store call reading the citizen\'s documents is in the trace')
  const commands = spans.filter((s) => s.instrumentationScope.name === '@opentelemetry/instrumentation-ioredis')
  t.ok(commands.length > 0, `Redis commands are spans (${commands.map((s) => s.name).join(', ')})`)
  t.ok(commands.some((c) => read !== undefined && ancestry(c, spans).includes(read)), 'the store call\'s Redis commands are its children')
  t.ok(commands.every((c) => c.attributes['db.statement'] === undefined || c.attributes['db.statement'] === c.name), 'a command span names the command, never its arguments')
  const attestations = spans.filter((s) => s.name === 'sign reuse-attestation+jwt')
  t.equal(attestations.length, 2, 'one signing span per attestation')
  t.ok(attestations.every(below), 'the signatures are in the same trace, under the server span')
  const receipt = spans.find((s) => s.name === 'sign reuse-receipt+jwt')
  t.ok(receipt && below(receipt), 'and so is the receipt\'s')
  t.ok(spans.every((s) => s === server || below(s)), 'every span of the trace hangs from the server span')
  t.notOk(JSON.stringify(spans.map((s) => s.attributes)).includes(w.citizen), 'no span attribute holds the citizen\'s identifier')

  const lines = logs.lines.filter((line) => line.trace_id === caller.traceId)
  t.ok(lines.length > 0, 'the request\'s log lines carry its trace id')
  t.ok(lines.every((line) => typeof line.span_id === 'string' && /^[0-9a-f]{16}$/.test(line.span_id)), 'and a span id')
  t.ok(lines.some((line) => line.msg === 'request completed'), 'the access log line too')

  const search = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { action: 'reuse.queried', limit: 10 } })
  const events = search.json().events as Array<{ traceId?: string, spanId?: string }>
  t.equal(events.length, 1)
  t.equal(events[0]?.traceId, caller.traceId, 'the audit event of the query carries its trace id')
  t.ok(spans.some((s) => s.spanContext().spanId === events[0]?.spanId), 'and the span it was recorded in')
  const verify = await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: bearer(w.tokens.auditor) })
  t.equal(verify.json().ok, true, 'the trace id is covered by the event hash, and the chain still verifies')
})

t.test('on the embedded store, an injected request continues the caller\'s trace too, with the store calls as spans', async (t) => {
  const w = await buildWorld(t, { env: TRACED })
  const caller = callerSpan()
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { ...bearer(w.tokens.requester), traceparent: caller.traceparent }, payload: reuseQuery(w) })
  t.equal(res.statusCode, 200)
  const spans = await traceSpans(caller.traceId, (spans) => spans.some((s) => s.name === 'request') && complete(caller.spanId)(spans))
  const request = spans.find((s) => s.name === 'request') as ReadableSpan
  t.equal(parentOf(request), caller.spanId, 'the request span\'s parent is the caller\'s span')
  t.ok(spans.some((s) => s.name === 'store documents.documentsOfSubject' && ancestry(s, spans).includes(request)), 'the store call is under it')
  t.ok(spans.some((s) => s.name === 'sign reuse-attestation+jwt' && ancestry(s, spans).includes(request)), 'and so is the signature')
})

t.test('a download link\'s token and a query string stay out of the spans, as out of the logs', async (t) => {
  const w = await buildWorld(t, { env: TRACED })
  const caller = callerSpan()
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  const link = (res.json().results[0].documents as Array<{ download?: string }>).find((d) => d.download)?.download as string
  const base = await w.app.listen({ host: '127.0.0.1', port: 0 })
  const file = await fetch(`${base}${link}?q=secret-value`, { headers: { ...bearer(w.tokens.requester), traceparent: caller.traceparent } })
  t.equal(file.status, 200)
  await file.arrayBuffer()
  const spans = await traceSpans(caller.traceId, (spans) => spans.some((s) => s.kind === 1))
  const text = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes })))
  t.notOk(text.includes(link.split('/').pop() as string), 'the token is in no span')
  t.notOk(text.includes('secret-value'), 'nor the query string')
  t.ok(spans.some((s) => s.attributes['url.path'] === '/v1/files/[redacted]'), 'the path is shown redacted')
})

t.test('a webhook delivery continues the trace of the request that made the change, and carries a traceparent', async (t) => {
  const receiver = await startReceiver()
  t.teardown(async () => await receiver.close())
  const w = await buildWorld(t, { env: { ...TRACED, OUTBOX_WORKER: 'true', OUTBOX_POLL_MS: '50', PORTAL_WEBHOOK_URL: receiver.url } })
  const caller = callerSpan()
  const doc = sample('giay-khai-sinh', (d) => d.subject.id !== w.citizen && d.subject.id !== w.otherCitizen)
  const indexed = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: { ...bearer(w.tokens.issuer), traceparent: caller.traceparent }, payload: doc })
  t.equal(indexed.statusCode, 201)
  const id = indexed.json().id as string
  const [delivery] = (await receiver.until((got) => got.some((d) => d.body.id === `${id}.1.indexed`))).filter((d) => d.body.id === `${id}.1.indexed`)
  const traceparent = String(delivery?.headers.traceparent)
  t.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'the delivery carries a W3C traceparent')
  t.equal(traceparent.split('-')[1], caller.traceId, 'in the trace of the request that indexed the document')

  const spans = await traceSpans(caller.traceId, (spans) => spans.some((s) => s.name === 'outbox delivery'))
  const deliverySpan = spans.find((s) => s.name === 'outbox delivery') as ReadableSpan
  t.equal(deliverySpan.attributes['reuse_gateway.outbox.event'], `${id}.1.indexed`)
  const sent = traceparent.split('-')[2]
  t.ok(sent === deliverySpan.spanContext().spanId || ancestry(spans.find((s) => s.spanContext().spanId === sent) as ReadableSpan, spans).includes(deliverySpan), 'the traceparent sent is the delivery span (or the HTTP client span under it)')
  const search = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { action: 'document.indexed', documentId: id, limit: 10 } })
  const recorded = search.json().events[0] as { traceId: string, spanId: string }
  t.equal(recorded.traceId, caller.traceId, 'the indexing audit event carries the trace')
  t.equal(parentOf(deliverySpan), recorded.spanId, 'the delivery span\'s parent is the span the change was recorded in')
  t.notOk(receiver.received.some((d) => d.body.id !== `${id}.1.indexed` && d.headers.traceparent?.includes(caller.traceId)), 'deliveries of other changes are not in this trace')

  // a change recorded outside any trace: its delivery starts a trace of its own
  const other = sample('giay-khai-sinh', (d) => ![w.citizen, w.otherCitizen, doc.subject.id].includes(d.subject.id))
  const untraced = await context.with(suppressTracing(ROOT_CONTEXT), async () => await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: other }))
  t.equal(untraced.statusCode, 201)
  const otherId = untraced.json().id as string
  const plain = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { action: 'document.indexed', documentId: otherId, limit: 10 } })
  t.notOk('traceId' in plain.json().events[0], 'its audit event names no trace')
  const [own] = (await receiver.until((got) => got.some((d) => d.body.id === `${otherId}.1.indexed`))).filter((d) => d.body.id === `${otherId}.1.indexed`)
  const ownTrace = String(own?.headers.traceparent).split('-')[1] as string
  t.match(ownTrace, /^[0-9a-f]{32}$/, 'its delivery still carries a traceparent')
  const ownSpans = await traceSpans(ownTrace, (spans) => spans.some((s) => s.name === 'outbox delivery'))
  t.equal(parentOf(ownSpans.find((s) => s.name === 'outbox delivery') as ReadableSpan), undefined, 'the delivery span is the root of a trace of its own')
})

// ---------------------------------------------------------------------------------------------
// real gateway processes: the environment decides

interface Export { spans: Array<{ traceId: string, name: string, scope: string }>, serviceName: string | undefined }

/** an OTLP/HTTP (JSON) traces receiver on loopback */
async function otlpReceiver (): Promise<{ url: string, exports: Export[], close: () => Promise<void> }> {
  const exports: Export[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: Array<{ resource: { attributes: Array<{ key: string, value: { stringValue?: string } }> }, scopeSpans: Array<{ scope: { name: string }, spans: Array<{ traceId: string, name: string }> }> }> }
        for (const resource of body.resourceSpans) {
          exports.push({
            serviceName: resource.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
            spans: resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => ({ traceId: span.traceId, name: span.name, scope: scope.scope.name })))
          })
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exports, close: async () => await new Promise<void>((resolve) => server.close(() => resolve())) }
}

const PROBE = ['--import', './test/lib/otel-probe.mjs']
const sdkLoaded = (stderr: string): boolean | undefined => {
  const m = /otel-sdk-loaded=(true|false)/.exec(stderr)
  return m ? m[1] === 'true' : undefined
}

/** a gateway process, one traced request to it, then a graceful stop */
async function gatewayRun (env: Record<string, string>): Promise<{ stderr: string, traceId: string, probeTraceId: string, refusedTraceId: string, status: number }> {
  const gateway = await startGateway(env, { nodeArgs: PROBE })
  const caller = callerSpan()
  const res = await fetch(`${gateway.url}/.well-known/jwks.json`, { headers: { traceparent: caller.traceparent } })
  await res.arrayBuffer()
  // a load balancer's probe, which is not traced
  const prober = callerSpan()
  await (await fetch(`${gateway.url}/health/ready`, { headers: { traceparent: prober.traceparent } })).arrayBuffer()
  // a refused token: audited, so the store is written to in the request's trace
  const refused = callerSpan()
  await (await fetch(`${gateway.url}/v1/document-types`, { headers: { traceparent: refused.traceparent, authorization: 'Bearer not-a-token' } })).arrayBuffer()
  const exit = await gateway.stop()
  if (exit.code !== 0) throw new Error(`gateway exited with ${String(exit.code)}: ${gateway.stderr()}`)
  return { stderr: gateway.stderr(), traceId: caller.traceId, probeTraceId: prober.traceId, refusedTraceId: refused.traceId, status: res.status }
}

t.test('with no OTEL_* variable, the gateway loads no OpenTelemetry SDK: no span can be made', async (t) => {
  const run = await gatewayRun({})
  t.equal(sdkLoaded(run.stderr), false, 'the SDK module was never loaded')
})

t.test('OTEL_SDK_DISABLED=true wins over an endpoint: nothing loaded, nothing exported', async (t) => {
  const otlp = await otlpReceiver()
  t.teardown(otlp.close)
  const run = await gatewayRun({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })
  t.equal(sdkLoaded(run.stderr), false)
  t.same(otlp.exports, [], 'the receiver got nothing')
})

t.test('with OTEL_EXPORTER_OTLP_ENDPOINT, a gateway process on Redis exports its spans over OTLP/HTTP, in the caller\'s trace', async (t) => {
  const otlp = await otlpReceiver()
  t.teardown(otlp.close)
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const run = await gatewayRun({ REDIS_URL: redis.url, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'reuse-gateway-test' })
  t.equal(run.status, 200)
  t.equal(sdkLoaded(run.stderr), true, 'the SDK was loaded')
  const spans = otlp.exports.flatMap((e) => e.spans)
  t.ok(spans.some((s) => s.traceId === run.traceId && s.name === 'GET /.well-known/jwks.json'), 'the server span reached the receiver, in the caller\'s trace (exported at shutdown)')
  t.ok(otlp.exports.every((e) => e.serviceName === 'reuse-gateway-test'), 'OTEL_SERVICE_NAME names the service')
  t.notOk(spans.some((s) => s.traceId === run.probeTraceId), 'a health probe is not traced')
  const refused = spans.filter((s) => s.traceId === run.refusedTraceId)
  t.ok(refused.some((s) => s.scope === '@opentelemetry/instrumentation-ioredis'), `the refusal's audit append reached Redis in its trace: ioredis, imported by the app after tracing started, is instrumented (${refused.map((s) => s.name).join(', ')})`)
})
