import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { Cluster } from 'ioredis'
import t from 'tap'
import { build, captureLogs } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { startTestCluster, watchScriptKeys } from './lib/redis-cluster.js'
import { startReceiver } from './lib/webhook-receiver.js'
import { loadConfig } from '../src/config.js'
import { RedisStores } from '../src/store/index.js'
import { SAMPLE_TYPES, generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'
import { coverageEnv } from './lib/child-coverage.js'

/**
 * The gateway on a Redis Cluster of three masters, as an operator runs it with
 * REDIS_CLUSTER_NODES: agencies registered, results indexed one by one and in a batch, an
 * agreement, a reuse query that releases a result and its file, the portal's views, the audit
 * trail searched and verified, statistics, announcements delivered to the portal's webhook,
 * and the operator's outbox commands. No answer is a 5xx, nothing logs an error, and every
 * store script touches only the keys it was given.
 */
const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))

const cluster = await startTestCluster()
t.teardown(async () => await cluster.destroy())
const watch = await watchScriptKeys(cluster)
t.teardown(() => watch.stop())
const hook = await startReceiver()
t.teardown(async () => await hook.close())

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const PORTAL = '000.00.00.G22'
const AUDITOR = '000.00.00.K01'
const PROCEDURE = '1.001193'
const DOSSIER = '000.20.41.H41-260301-0001'
const samples = [...generateDocuments(200, { seed: 23 })]

t.test('the reuse flow on a Redis Cluster, through the app built from REDIS_CLUSTER_NODES', async (t) => {
  const logs = captureLogs()
  const admin = await makeAgency(ADMIN_CODE)
  const prefix = `e2e${process.pid}:`
  const app = await build(t, {
    logs,
    env: { ...adminEnv(admin), REDIS_CLUSTER_NODES: cluster.nodesEnv, REDIS_KEY_PREFIX: prefix, PORTAL_WEBHOOK_URL: hook.url, OUTBOX_POLL_MS: '50', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }
  })
  t.ok(app.stores instanceof RedisStores && app.stores.client instanceof Cluster, 'the app made a cluster store from its configuration')

  const answers: Array<{ what: string, status: number }> = []
  const call = async (options: InjectOptions & { url: string }): Promise<LightMyRequestResponse> => {
    const res = await app.inject(options)
    answers.push({ what: `${options.method ?? 'GET'} ${options.url}`, status: res.statusCode })
    return res
  }
  const as = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

  const adminToken = await tokenFor(app, admin)
  const [issuer, requester, portal, auditor] = await Promise.all([ISSUER, REQUESTER, PORTAL, AUDITOR].map(async (code) => await makeAgency(code)))
  await register(app, adminToken, issuer!, ['issuer'], { issuableTypes: SAMPLE_TYPES })
  await register(app, adminToken, requester!, ['requester'])
  await register(app, adminToken, portal!, ['portal'])
  await register(app, adminToken, auditor!, ['auditor'])
  const agencies = await call({ method: 'GET', url: '/v1/agencies', headers: as(adminToken) })
  t.same(agencies.json().agencies.map((a: { code: string }) => a.code).sort(), [ADMIN_CODE, AUDITOR, PORTAL, ISSUER, REQUESTER].sort())
  const [issuerToken, requesterToken, portalToken, auditorToken] = await Promise.all([issuer, requester, portal, auditor].map(async (agency) => await tokenFor(app, agency!)))

  // one citizen's birth and land-use certificates, one by one; forty other results in a batch
  const birth = structuredClone(samples.find((d) => d.type === 'giay-khai-sinh') as SampleDocument)
  const land = structuredClone(samples.find((d) => d.type === 'giay-chung-nhan-quyen-su-dung-dat' && d.subject.kind === 'citizen') as SampleDocument)
  land.subject = birth.subject
  const ids: Record<string, string> = {}
  for (const doc of [birth, land]) {
    const res = await call({ method: 'POST', url: '/v1/documents', headers: as(issuerToken!), payload: doc })
    t.equal(res.statusCode, 201, `${doc.type} indexed`)
    ids[doc.type] = res.json().id
  }
  const taken = new Set([birth, land].map((d) => `${d.type} ${d.documentNumber}`))
  const batch = samples.filter((d) => !taken.has(`${d.type} ${d.documentNumber}`) && d.subject.id !== birth.subject.id).slice(0, 40)
  const imported = await call({ method: 'POST', url: '/v1/documents/batch', headers: { ...as(issuerToken!), 'content-type': 'application/x-ndjson' }, payload: batch.map((d) => JSON.stringify(d)).join('\n') + '\n' })
  t.equal(imported.statusCode, 200, imported.body)
  const lines = imported.body.trim().split('\n').map((line) => JSON.parse(line) as { outcome: string, id: string })
  t.same(lines.map((l) => l.outcome), batch.map(() => 'created'), 'every line of the batch indexed')
  const batchIds = lines.map((l) => l.id)
  const again = await call({ method: 'POST', url: '/v1/documents/batch', headers: { ...as(issuerToken!), 'content-type': 'application/x-ndjson' }, payload: batch.map((d) => JSON.stringify(d)).join('\n') + '\n' })
  t.same(again.body.trim().split('\n').map((line) => JSON.parse(line).outcome), batch.map(() => 'existing'), 'a retried batch indexes nothing twice')

  const pdf = Buffer.from('%PDF-1.7 giấy khai sinh bản điện tử')
  const birthId = ids['giay-khai-sinh'] as string
  t.equal((await call({ method: 'PUT', url: `/v1/documents/${birthId}/file`, headers: { ...as(issuerToken!), 'content-type': 'application/pdf' }, payload: pdf })).statusCode, 200)
  const amended = await call({ method: 'POST', url: `/v1/documents/${ids['giay-chung-nhan-quyen-su-dung-dat']}/amend`, headers: as(issuerToken!), payload: { procedureCode: '1.004227', dossierCode: '000.00.12.H41-260302-0001', data: { ...land.data, areaM2: 123.4 }, reason: 'Đính chính diện tích thửa đất' } })
  t.equal(amended.statusCode, 201, 'amended')

  const agreement = await call({
    method: 'PUT', url: '/v1/agreements/ward-quang-trung-2026', headers: as(adminToken),
    payload: {
      requester: REQUESTER,
      documentTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat'],
      procedureCodes: [PROCEDURE],
      fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth'], 'giay-chung-nhan-quyen-su-dung-dat': ['parcelNumber', 'areaM2'] },
      fileDownload: true,
      validFrom: '2026-01-01'
    }
  })
  t.equal(agreement.statusCode, 201)

  // the reuse query: both results found, minimized, the birth certificate's file downloadable once
  const subject = { kind: 'citizen', id: birth.subject.id }
  const query = await call({ method: 'POST', url: '/v1/reuse-queries', headers: as(requesterToken!), payload: { subject, documentTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat'], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER }, reason: 'Đăng ký thường trú' } })
  t.equal(query.statusCode, 200)
  const results = query.json().results as Array<{ found: boolean, documents: Array<{ id: string, version: number, data: Record<string, unknown>, download?: string }> }>
  t.same(results.map((r) => r.found), [true, true])
  t.same(Object.keys(results[0]?.documents[0]?.data ?? {}).sort(), ['dateOfBirth', 'fullName'])
  t.equal(results[1]?.documents[0]?.version, 2, 'the amended version')
  t.equal(results[1]?.documents[0]?.data.areaM2, 123.4)
  const download = results[0]?.documents[0]?.download as string
  const file = await call({ method: 'GET', url: download, headers: as(requesterToken!) })
  t.equal(file.statusCode, 200)
  t.same(file.rawPayload, pdf)
  t.equal((await call({ method: 'GET', url: download, headers: as(requesterToken!) })).statusCode, 404, 'single use')
  const empty = await call({ method: 'POST', url: '/v1/reuse-queries', headers: as(requesterToken!), payload: { subject: { kind: 'citizen', id: '079199000111' }, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER } } })
  t.same(empty.json().results.map((r: { why: string }) => r.why), ['none'])

  // the citizen's own view through the portal
  const mine = await call({ method: 'POST', url: '/v1/portal/citizen-documents', headers: as(portalToken!), payload: { subject } })
  t.equal(mine.statusCode, 200)
  t.same(mine.json().documents.map((d: { id: string }) => d.id).sort(), Object.values(ids).sort(), 'the citizen\'s two results, not the batch\'s')
  const history = await call({ method: 'POST', url: '/v1/portal/access-history', headers: as(portalToken!), payload: { subject } })
  t.equal(history.statusCode, 200)
  t.same(history.json().items.map((i: { agency: { code: string }, dossierCode: string }) => [i.agency.code, i.dossierCode]), [[REQUESTER, DOSSIER]])

  // the auditor: search, statistics, verification
  const search = await call({ method: 'POST', url: '/v1/audit/search', headers: as(auditorToken!), payload: { action: 'document.indexed', limit: 100 } })
  t.equal(search.statusCode, 200)
  t.equal(search.json().events.length, 2 + batch.length, 'every indexing on record')
  const bySubject = await call({ method: 'POST', url: '/v1/audit/search', headers: as(auditorToken!), payload: { subject, limit: 100 } })
  t.ok(bySubject.json().events.some((e: { action: string }) => e.action === 'reuse.queried'), 'the query found by its subject')
  const day = new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 10)
  const stats = await call({ method: 'GET', url: `/v1/stats/reuse?from=${day}&to=${day}&groupBy=procedure`, headers: as(auditorToken!) })
  t.equal(stats.statusCode, 200, stats.body)
  t.match(stats.json().total, { queries: 2, found: 1, downloads: 1 }, 'counted on the cluster')
  await app.audit.checkpoint()
  const verify = await call({ method: 'GET', url: '/v1/audit/verify', headers: as(auditorToken!) })
  t.equal(verify.statusCode, 200)
  t.match(verify.json(), { ok: true, checkpoints: 1 })
  t.equal((await call({ method: 'GET', url: '/health/ready' })).statusCode, 200)

  // announcements, delivered to the portal's webhook: each indexed result, the amendment (and
  // the expiry of those past their validity)
  const expected = [...Object.values(ids), ...batchIds].map((id) => `${id}.1.indexed`).concat(`${ids['giay-chung-nhan-quyen-su-dung-dat']}.2.amended`)
  const sent = (): Set<string> => new Set(hook.acknowledged().map((d) => d.body.id))
  await hook.until(() => expected.every((id) => sent().has(id)), 30_000)
  // settled: no change left to announce now, nothing queued, everything sent recorded as delivered
  const settled = async (): Promise<boolean> => {
    const [portal] = await app.stores.outbox.outboxStatus()
    return (await app.stores.outbox.dueOutboxSources(Date.now(), 1)).length === 0 && portal?.queued === 0 && portal.delivered === sent().size
  }
  for (let i = 0; i < 400 && !await settled(); i++) await new Promise((resolve) => setTimeout(resolve, 25))
  const announced = sent().size
  t.same(await app.stores.outbox.outboxStatus(), [{ destination: 'portal', queued: 0, delivered: announced, dead: 0 }], `${announced} announcements delivered`)
  t.equal(hook.acknowledged().length, announced, 'each acknowledged once')

  // the operator's commands, on the same cluster
  const cliEnv = { PATH: process.env.PATH ?? '', ...coverageEnv(), REDIS_CLUSTER_NODES: cluster.nodesEnv, REDIS_KEY_PREFIX: prefix }
  const cli = async (args: string[]): Promise<string> => (await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: cliEnv, timeout: 60_000 })).stdout
  t.match(await cli(['outbox', 'status']), new RegExp(`^portal\\s+0\\s+${announced}\\s+0$`, 'm'))
  const listed = JSON.parse(await cli(['outbox', 'status', '--destination', 'portal', '--json'])) as Array<{ state: string, eventId: string }>
  t.equal(listed.length, announced)
  t.ok(listed.every((d) => d.state === 'delivered'))
  t.match(await cli(['outbox', 'replay', '--destination', 'portal', '--after', String(announced - 1)]), /^1 deliveries to portal queued again$/m)
  await hook.until((acked) => acked.length >= announced + 1, 30_000)
  t.equal(hook.acknowledged().at(-1)?.body.id, listed.at(-1)?.eventId, 'the replayed one sent again with its own id')

  t.same(answers.filter((a) => a.status >= 500), [], 'no answer was a 5xx')
  t.notMatch(logs.text(), /CROSSSLOT|non local key|do not hash to the same slot|MOVED|ASK /, 'no slot error logged')
  t.same(logs.lines.filter((line) => line.level >= 50).map((line) => line.msg), [], 'nothing logged as an error')
  const { scripts, undeclared } = await watch.report()
  t.ok(scripts > 0, `${scripts} scripts watched`)
  t.same(undeclared, [], 'no script touched a key it was not given')
})

t.test('a key prefix cannot carry braces, which would take the place of the keys\' hash tags', async (t) => {
  for (const prefix of ['rg{x}:', 'rg{:', 'rg}:']) {
    t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: cluster.nodesEnv, REDIS_KEY_PREFIX: prefix }), /REDIS_KEY_PREFIX/, prefix)
  }
  t.match(loadConfig({ REDIS_CLUSTER_NODES: cluster.nodesEnv, REDIS_KEY_PREFIX: 'gw-2.prod:' }).redis, { mode: 'cluster', keyPrefix: 'gw-2.prod:' })
})
