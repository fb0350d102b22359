import t from 'tap'
import type { Test } from 'tap'
import type { AddressInfo } from 'node:net'
import { register as globalRegistry } from 'prom-client'
import { MemoryStores, RedisStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { generateDocuments } from '../src/sample-data/generate.js'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, requestToken, tokenFor } from './lib/agencies.js'
import { archiveDatabase } from './lib/audit-archive-world.js'
import { postgresBinaries, startTestPostgres } from './lib/postgres-server.js'
import { startTestRedis } from './lib/redis-server.js'
import { startTestCluster } from './lib/redis-cluster.js'
import { testRedisStore } from './lib/redis-store.js'
import { startReceiver } from './lib/webhook-receiver.js'
import { startGateway } from './lib/gateway-process.js'
import { bearer, buildWorld, reuseQuery } from './lib/world.js'
import type { World } from './lib/world.js'
import { AuditArchiver } from '../src/services/audit-archiver.js'
import { PostgresAuditArchive } from '../src/store/postgres/audit-archive.js'

/**
 * Prometheus metrics as an operator scrapes them: on a port of their own (never the API's), every
 * family there from the first scrape, each moving as a short load runs — on Redis and on the
 * embedded store — and no label value that names a citizen, a subject hash, a document or a token.
 */

interface Sample { name: string, labels: Record<string, string>, value: number }

/** the samples of a scrape in the Prometheus text format, and the families it declares */
function parseScrape (text: string): { samples: Sample[], families: Set<string> } {
  const samples: Sample[] = []
  const families = new Set<string>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line)
    if (type) families.add(type[1] as string)
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, name, value] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[name as string] = value as string
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return { samples, families }
}

/** the sum of the samples of `name` whose labels include `labels` */
function total (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)
}

async function scrape (url: string): Promise<{ text: string, samples: Sample[], families: Set<string> }> {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`scrape: ${res.status}`)
  const text = await res.text()
  return { text, ...parseScrape(text) }
}

async function waitFor (what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms
  while (!await check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** every family docs/metrics.md lists, but the audit archive's (only with an archive) */
const FAMILIES = [
  'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes',
  'reuse_gateway_http_requests_total', 'reuse_gateway_http_request_duration_seconds',
  'reuse_gateway_reuse_queries_total', 'reuse_gateway_tokens_issued_total', 'reuse_gateway_tokens_refused_total',
  'reuse_gateway_audit_append_duration_seconds',
  'reuse_gateway_outbox_queued_deliveries', 'reuse_gateway_outbox_oldest_queued_age_seconds', 'reuse_gateway_outbox_dead_letters', 'reuse_gateway_outbox_deliveries_total',
  'reuse_gateway_redis_command_duration_seconds', 'reuse_gateway_redis_command_errors_total',
  'reuse_gateway_load_shed_requests_total', 'reuse_gateway_rate_limited_requests_total'
]
const ARCHIVE_FAMILIES = ['reuse_gateway_audit_oldest_unarchived_age_seconds', 'reuse_gateway_audit_archive_hot_window_seconds']

/** nothing personal, nothing secret, nothing per document in any label value (nor anywhere in the scrape) */
function assertNothingPersonal (t: Test, w: World, text: string, extra: string[] = []): void {
  const secrets = [
    w.citizen, w.otherCitizen,
    w.app.documents.subjectHash({ kind: 'citizen', id: w.citizen }), w.app.documents.subjectHash({ kind: 'citizen', id: w.otherCitizen }),
    ...Object.values(w.docs), ...Object.values(w.tokens), ...extra
  ]
  const { samples } = parseScrape(text)
  const values = new Set(samples.flatMap((s) => Object.values(s.labels)))
  t.same(secrets.filter((secret) => [...values].some((value) => value.includes(secret))), [], 'no label value holds a citizen id, a subject hash, a document id or a token')
  t.same(secrets.filter((secret) => text.includes(secret)), [], 'nor does anything else in the scrape')
  t.same([...values].filter((value) => /[0-9]{12}/.test(value) || /[0-9a-f]{32}/i.test(value)), [], 'no label value looks like a citizen id or a hash')
}

const fresh = [...generateDocuments(60, { seed: 4242 })].filter((d) => d.type === 'giay-khai-sinh')

async function loadRun (t: Test, store: Stores): Promise<World> {
  const receiver = await startReceiver()
  t.teardown(async () => await receiver.close())
  const w = await buildWorld(t, {
    store,
    env: {
      METRICS_PORT: '0',
      // deliveries to the portal: one retry a second later, then a dead letter
      OUTBOX_WORKER: 'true', OUTBOX_POLL_MS: '30', OUTBOX_MAX_ATTEMPTS: '2', OUTBOX_RETRY_BASE_MS: '1000', WEBHOOK_TIMEOUT_MS: '2000', PORTAL_WEBHOOK_URL: receiver.url,
      RATE_LIMIT_ROUTES: 'stats=2', AUTH_FAILURE_LIMIT_PER_MINUTE: '4'
    }
  })
  const url = w.app.metrics?.url as string
  t.match(url, /^http:\/\/127\.0\.0\.1:[0-9]+\/metrics$/, 'metrics listen on loopback by default, on a port of their own')

  await w.app.listen({ port: 0, host: '127.0.0.1' })
  const api = `http://127.0.0.1:${(w.app.server.address() as AddressInfo).port}`
  t.not(new URL(url).port, new URL(api).port)
  t.equal((await fetch(`${api}/metrics`)).status, 404, 'the API port has no /metrics')
  t.equal((await fetch(url.replace(/\/metrics$/, '/health/live'))).status, 404, 'the metrics port serves /metrics only')
  t.equal((await fetch(url, { method: 'POST' })).status, 405)

  const before = await scrape(url)
  t.same(FAMILIES.filter((family) => !before.families.has(family)), [], 'every family is there from the first scrape')
  t.same(ARCHIVE_FAMILIES.filter((family) => before.families.has(family)), [], 'the audit archive\'s only with an archive')

  // the load: reuse queries (found, nothing found, status only, denied), tokens (issued, refused),
  // a rate-limited request, refusals past the address's limit, a delivery that fails until it is
  // a dead letter, one that is delivered, and a Redis command that fails
  const requester = bearer(w.tokens.requester)
  const ask = async (headers: Record<string, string>, payload: Record<string, unknown>): Promise<number> =>
    (await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers, payload })).statusCode
  t.equal(await ask(requester, reuseQuery(w)), 200)
  t.equal(await ask(requester, { ...reuseQuery(w, ['giay-chung-nhan-quyen-su-dung-dat']), subject: { kind: 'citizen', id: w.otherCitizen } }), 200)
  t.equal(await ask(requester, reuseQuery(w, ['giay-khai-sinh'], { mode: 'status' })), 200)
  t.equal(await ask(bearer(w.tokens.otherRequester), reuseQuery(w)), 403)
  t.equal(await ask(requester, reuseQuery(w, ['giay-khong-co-trong-danh-muc'])), 403)
  await tokenFor(w.app, w.agencies.auditor)
  t.equal((await requestToken(w.app, 'not.a.jwt')).statusCode, 401)
  const stats = async (): Promise<number> => (await w.app.inject({ method: 'GET', url: '/v1/stats/reuse', headers: bearer(w.tokens.auditor) })).statusCode
  const statsCodes = [await stats(), await stats(), await stats()]
  t.same(statsCodes, [200, 200, 429], 'the third stats request of the window is rate limited')
  const anonymous: number[] = []
  for (let i = 0; i < 6 && !anonymous.includes(429); i++) anonymous.push((await w.app.inject({ method: 'GET', url: '/v1/agencies' })).statusCode)
  t.equal(anonymous.at(-1), 429, 'refused requests past the address\'s limit are rate limited')
  t.equal((await w.app.inject({ method: 'GET', url: '/v1/documents/01J00000000000000000000000', headers: bearer(w.tokens.issuer) })).statusCode, 404)

  receiver.behaviour = () => 503
  const index = async (doc: object | undefined): Promise<string> => {
    const res = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: doc as object })
    t.equal(res.statusCode, 201)
    return res.json().id as string
  }
  const failing = await index(fresh[0])
  let queuedSeen = false
  await waitFor('a failed delivery waiting for its retry', async () => {
    const { samples } = await scrape(url)
    queuedSeen = total(samples, 'reuse_gateway_outbox_queued_deliveries', { destination: 'portal' }) >= 1 &&
      total(samples, 'reuse_gateway_outbox_oldest_queued_age_seconds', { destination: 'portal' }) > 0 &&
      total(samples, 'reuse_gateway_outbox_deliveries_total', { result: 'failed' }) >= 1
    return queuedSeen
  })
  t.ok(queuedSeen, 'while it waits: a backlog for the portal, its age, a failed attempt')
  await waitFor('the dead letter', async () => total((await scrape(url)).samples, 'reuse_gateway_outbox_dead_letters', { destination: 'portal' }) >= 1)
  receiver.behaviour = () => 204
  const delivered = total((await scrape(url)).samples, 'reuse_gateway_outbox_deliveries_total', { result: 'delivered' })
  const fine = await index(fresh[1])
  await waitFor('the delivery', async () => total((await scrape(url)).samples, 'reuse_gateway_outbox_deliveries_total', { result: 'delivered' }) > delivered)
  if (store instanceof RedisStores) await t.rejects(store.client.call('NO-SUCH-COMMAND'), { name: 'ReplyError' })

  const after = await scrape(url)
  const moved = (name: string, labels: Record<string, string> = {}): number => total(after.samples, name, labels) - total(before.samples, name, labels)
  t.ok(moved('reuse_gateway_http_requests_total', { route: '/v1/reuse-queries', method: 'POST', status_class: '2xx' }) >= 3, 'requests by route template')
  t.ok(moved('reuse_gateway_http_requests_total', { route: '/v1/reuse-queries', method: 'POST', status_class: '4xx' }) >= 2)
  t.ok(moved('reuse_gateway_http_requests_total', { route: '/v1/documents/:id', method: 'GET', status_class: '4xx' }) >= 1, 'a path parameter counts under its template')
  t.ok(moved('reuse_gateway_http_request_duration_seconds_count', { route: '/v1/reuse-queries', method: 'POST' }) >= 5, 'and their latency')
  t.equal(total(after.samples, 'reuse_gateway_http_requests_total', { route: 'unmatched' }), 1, 'a request no route matched counts as unmatched, not under its URL')
  t.equal(moved('reuse_gateway_reuse_queries_total', { outcome: 'found', mode: 'full', document_type: 'giay-khai-sinh' }), 1, 'a query that found')
  t.equal(moved('reuse_gateway_reuse_queries_total', { outcome: 'not_found', mode: 'full', document_type: 'giay-chung-nhan-quyen-su-dung-dat' }), 1, 'one that found nothing')
  t.equal(moved('reuse_gateway_reuse_queries_total', { outcome: 'found', mode: 'status' }), 1, 'one in status mode')
  t.equal(moved('reuse_gateway_reuse_queries_total', { outcome: 'denied', document_type: 'giay-khai-sinh' }), 1, 'one denied')
  t.equal(moved('reuse_gateway_reuse_queries_total', { outcome: 'denied', document_type: 'unknown' }), 1, 'a type the catalogue does not hold is not a label value')
  t.equal(moved('reuse_gateway_tokens_issued_total'), 1, 'a token issued')
  t.equal(moved('reuse_gateway_tokens_refused_total', { error: 'invalid_client' }), 1, 'a token refused')
  t.ok(after.samples.some((s) => s.name === 'reuse_gateway_tokens_refused_total' && s.labels.code === 'assertion_malformed'), 'by its refusal code')
  t.ok(moved('reuse_gateway_audit_append_duration_seconds_count', { result: 'ok' }) >= 5, 'audit appends timed (events recorded together are one append)')
  t.equal(moved('reuse_gateway_rate_limited_requests_total', { limit: 'route', route_group: 'stats' }), 1, 'a route\'s rate limit')
  t.equal(moved('reuse_gateway_rate_limited_requests_total', { limit: 'refusals' }), 1, 'an address\'s refusals limit')
  t.ok(moved('reuse_gateway_outbox_deliveries_total', { result: 'failed' }) >= 1, 'a failed delivery attempt')
  t.ok(moved('reuse_gateway_outbox_deliveries_total', { result: 'dead' }) >= 1, 'a dead letter')
  t.ok(moved('reuse_gateway_outbox_deliveries_total', { result: 'delivered' }) >= 1, 'a delivery')
  t.ok(total(after.samples, 'reuse_gateway_outbox_dead_letters', { destination: 'portal' }) >= 1, 'dead letters per destination')
  t.equal(total(after.samples, 'reuse_gateway_outbox_queued_deliveries', { destination: 'portal' }), 0, 'nothing left queued')
  t.equal(total(after.samples, 'reuse_gateway_outbox_oldest_queued_age_seconds', { destination: 'portal' }), 0)
  t.ok(total(after.samples, 'process_cpu_seconds_total') > 0, 'the process\'s own figures')
  if (store instanceof RedisStores) {
    t.ok(moved('reuse_gateway_redis_command_duration_seconds_count') >= 20, 'Redis commands timed')
    const timed = (command: string): boolean => after.samples.some((s) => s.name === 'reuse_gateway_redis_command_duration_seconds_count' && s.labels.command === command && s.value > 0)
    t.ok(timed('auditAppend'), 'a script by its name')
    t.ok(timed('rateLimit'), 'the rate limiter\'s too')
    t.notOk(timed('script') || timed('evalsha'), 'no script unnamed')
    t.equal(moved('reuse_gateway_redis_command_errors_total', { command: 'no-such-command' }), 1, 'a failed command')
    const commands = new Set(after.samples.filter((s) => s.name === 'reuse_gateway_redis_command_duration_seconds_count').map((s) => s.labels.command))
    t.ok(commands.size < 60, `a bounded set of commands (${[...commands].sort().join(' ')})`)
  } else {
    t.equal(moved('reuse_gateway_redis_command_duration_seconds_count'), 0, 'no Redis, no Redis commands')
  }
  assertNothingPersonal(t, w, after.text, [failing, fine])
  return w
}

t.test('on the embedded store', async (t) => {
  const store = new MemoryStores()
  t.teardown(async () => await store.close())
  await loadRun(t, store)
})

t.test('on Redis', async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const store = await testRedisStore(t, redis)
  const untimed = store.client.sendCommand
  const w = await loadRun(t, store)
  t.not(store.client.sendCommand, untimed, 'commands are timed while the gateway runs')

  // Redis away: the scrape still answers, without what it would read from the store
  await redis.stop()
  const res = await fetch(w.app.metrics?.url as string)
  t.equal(res.status, 200, 'a scrape while Redis is away is answered')
  const { samples, families } = parseScrape(await res.text())
  t.ok(families.has('reuse_gateway_outbox_queued_deliveries'), 'every family is declared')
  t.equal(samples.filter((s) => s.name.startsWith('reuse_gateway_outbox_queued')).length, 0, 'with no outbox figures it could not read')
  t.ok(total(samples, 'reuse_gateway_http_requests_total') > 0, 'and everything it counted itself')
  await redis.start()
  await w.app.close()
  t.equal(store.client.sendCommand, untimed, 'and no longer once it is closed (the store was the test\'s)')
})

t.test('on a Redis Cluster: commands and scripts are timed whichever node answers', async (t) => {
  const cluster = await startTestCluster()
  t.teardown(async () => await cluster.destroy())
  const store = await testRedisStore(t, cluster)
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: { METRICS_PORT: '0', ...adminEnv(admin) } })
  const before = (await scrape(app.metrics?.url as string)).samples
  await tokenFor(app, admin)
  const after = (await scrape(app.metrics?.url as string)).samples
  const count = (samples: Sample[], command: string): number => total(samples, 'reuse_gateway_redis_command_duration_seconds_count', { command })
  t.ok(count(after, 'auditAppend') > count(before, 'auditAppend'), 'the token\'s audit event: a script, by its name')
  t.ok(total(after, 'reuse_gateway_redis_command_duration_seconds_count') > total(before, 'reuse_gateway_redis_command_duration_seconds_count'), 'and the commands around it')
  t.equal(total(after, 'reuse_gateway_redis_command_errors_total'), 0, 'none failed')
})

t.test('a load-shedding refusal is counted by the pressure that caused it', async (t) => {
  const app = await build(t, { env: { METRICS_PORT: '0', LOAD_SHED_MAX_HEAP_BYTES: '1', LOAD_SHED_SAMPLE_INTERVAL_MS: '50' } })
  const isUnderPressure = (app as unknown as { isUnderPressure: () => boolean }).isUnderPressure
  for (let i = 0; i < 250 && !isUnderPressure(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode, 503)
  const { samples } = await scrape(app.metrics?.url as string)
  t.equal(total(samples, 'reuse_gateway_load_shed_requests_total', { pressure: 'heapUsedBytes' }), 1)
  t.equal(total(samples, 'reuse_gateway_http_requests_total', { route: '/.well-known/jwks.json', status_class: '5xx' }), 1)
})

t.test('without METRICS_PORT there are no metrics at all', async (t) => {
  const app = await build(t)
  t.equal(app.metrics, undefined, 'nothing to report to')
  t.equal(globalRegistry.getMetricsAsArray().length, 0, 'nothing registered anywhere')
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
})

t.test('METRICS_PORT is refused when it is the API\'s port, or taken', async (t) => {
  const { loadConfig } = await import('../src/config.js')
  t.throws(() => loadConfig({ PORT: '3000', METRICS_PORT: '3000' }), /METRICS_PORT \(3000\) must differ from PORT/)
  t.throws(() => loadConfig({ METRICS_PORT: '70000' }), /METRICS_PORT/)
  t.same(loadConfig({ METRICS_PORT: '9464' }).metrics, { host: '127.0.0.1', port: 9464 })
  t.equal(loadConfig({}).metrics, undefined)
  const first = await build(t, { env: { METRICS_PORT: '0' } })
  const port = new URL(first.metrics?.url as string).port
  await t.rejects(build(t, { env: { METRICS_PORT: port } }), { code: 'EADDRINUSE' }, 'a port already taken stops the start')
})

t.test('with an audit archive: the age of the oldest event not yet archived, which archiving brings down', { skip: postgresBinaries() === undefined ? 'PostgreSQL is not installed' : false }, async (t) => {
  const postgres = await startTestPostgres()
  t.teardown(async () => await postgres.destroy())
  const archiveUrl = await archiveDatabase(postgres)
  const store = new MemoryStores()
  t.teardown(async () => await store.close())
  const w = await buildWorld(t, { store, env: { METRICS_PORT: '0', AUDIT_ARCHIVE_URL: archiveUrl, AUDIT_ARCHIVE_INTERVAL_MS: '86400000' } })
  const url = w.app.metrics?.url as string
  await new Promise((resolve) => setTimeout(resolve, 50))
  const before = await scrape(url)
  t.same(ARCHIVE_FAMILIES.filter((family) => !before.families.has(family)), [], 'both archive families')
  t.equal(total(before.samples, 'reuse_gateway_audit_archive_hot_window_seconds'), 30 * 86_400, 'the hot window, AUDIT_HOT_DAYS')
  const age = total(before.samples, 'reuse_gateway_audit_oldest_unarchived_age_seconds')
  t.ok(age > 0 && age < 600, `the oldest event is as old as the test (${age} s)`)

  const archive = new PostgresAuditArchive({ url: archiveUrl })
  t.teardown(async () => await archive.close())
  // an archiver whose clock is two days ahead, with a hot window of one day: everything is due
  const archiver = new AuditArchiver({
    hot: store.audit, archive, leases: store.leases, log: w.app.log, hotDays: 1, retentionDays: 0, migrate: true,
    signer: w.app.signingKeys, issuer: w.app.config.gatewayIssuer, now: () => Date.now() + 2 * 86_400_000
  })
  // archived up to a checkpoint: sign one now
  await w.app.audit.checkpoint()
  t.ok((await archiver.run()).moved > 0)
  const after = total((await scrape(url)).samples, 'reuse_gateway_audit_oldest_unarchived_age_seconds')
  t.ok(after < age, `archived: the oldest left in the store is younger (${after} s < ${age} s)`)
})

t.test('a gateway process serves its metrics from start to a clean stop', async (t) => {
  const gateway = await startGateway({ METRICS_PORT: '0' })
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  const served = gateway.lines.find((line) => line.msg === 'metrics served')
  const url = String(served?.url)
  t.match(url, /^http:\/\/127\.0\.0\.1:[0-9]+\/metrics$/, 'the start log says where')
  t.equal((await fetch(`${gateway.url}/health/live`)).status, 200)
  t.equal((await fetch(`${gateway.url}/metrics`)).status, 404, 'not on the API port')
  const { samples } = await scrape(url)
  t.equal(total(samples, 'reuse_gateway_http_requests_total', { route: '/health/live', method: 'GET', status_class: '2xx' }), 1, 'the request is counted')
  t.same(await gateway.stop(), { code: 0, signal: null }, 'SIGTERM: a clean exit')
  await t.rejects(fetch(url), 'the metrics listener is closed with the gateway')
})
