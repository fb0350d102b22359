import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { fetchAccessToken } from '../src/cli/agency-keys.js'
import { importDocuments } from '../src/cli/import.js'
import { RedisStores } from '../src/store/index.js'
import { SAMPLE_TYPES, generateDocuments } from '../src/sample-data/generate.js'
import { startGateway } from './lib/gateway-process.js'
import type { GatewayProcess } from './lib/gateway-process.js'
import { startTestRedis } from './lib/redis-server.js'
import { ADMIN_CODE, makeAgency } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'

/**
 * A gateway process killed (kill -9) in the middle of a batch import, on Redis with AOF always;
 * a new gateway, the same import again: every line is indexed exactly once — one document, one
 * version, one id each — and the lines already in are answered `existing`.
 */
const redis = await startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
t.teardown(async () => await redis.destroy())

const dir = mkdtempSync(join(tmpdir(), 'rg-kill-'))
const admin = await makeAgency(ADMIN_CODE)
writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
const issuer = await makeAgency('000.00.12.H41')
const auditor = await makeAgency('000.00.00.K01')

interface BatchLine { line: number, outcome: string, id?: string, version?: number, problem?: { code: string } }

/** a gateway on its own key prefix of the shared Redis, killed at the end of the test whatever happens */
async function gateway (t: Test, prefix: string): Promise<GatewayProcess> {
  const proc = await startGateway({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, ADMIN_AGENCY_CODE: ADMIN_CODE, ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json') })
  t.teardown(async () => { await proc.stop('SIGKILL') })
  return proc
}

async function token (gw: GatewayProcess, agency: TestAgency, scope?: string): Promise<string> {
  return (await fetchAccessToken({ gateway: gw.url, privateKey: agency.privateKey, agency: agency.code, ...(scope ? { scope } : {}) })).access_token
}

async function registerAgencies (t: Test, gw: GatewayProcess): Promise<void> {
  const adminToken = await token(gw, admin)
  for (const [agency, roles] of [[issuer, ['issuer']], [auditor, ['auditor']]] as const) {
    const put = await fetch(`${gw.url}/v1/agencies/${agency.code}`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `Agency ${agency.code}`, roles, ...(agency === issuer ? { issuableTypes: SAMPLE_TYPES } : {}), jwks: agency.jwks }) })
    t.equal(put.status, 201)
  }
}

/**
 * What is indexed under this prefix, read from Redis itself: the uniqueness records, the id →
 * subject pointers, and each document's versions.
 */
async function indexed (t: Test, prefix: string): Promise<{ reservations: number, ids: string[], versions: number[] }> {
  const store = new RedisStores({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 5000, quitTimeoutMs: 500 })
  await store.connect()
  t.teardown(async () => await store.close())
  const keys = async (pattern: string): Promise<string[]> => {
    const found: string[] = []
    let cursor = '0'
    do {
      const [next, page] = await store.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000) as [string, string[]]
      found.push(...page)
      cursor = next
    } while (cursor !== '0')
    return found
  }
  // every document's id pointer, and the registration records in their buckets `<prefix>{u:<bucket>}`
  const ids: string[] = []
  for await (const page of store.documents.documentIdPages(1000)) ids.push(...page)
  const versions = await Promise.all(ids.map(async (id) => (await store.documents.getDocument(id))?.document.versions.length ?? 0))
  const buckets = await keys(`${prefix}{u:*`)
  const reservations = (await Promise.all(buckets.map(async (key) => await store.client.hlen(key)))).reduce((a, b) => a + b, 0)
  return { reservations, ids, versions }
}

/** the ids of the document.indexed events in the audit trail, through the audit export */
async function auditedIds (gw: GatewayProcess): Promise<string[]> {
  const res = await fetch(`${gw.url}/v1/audit/export`, { headers: { authorization: `Bearer ${await token(gw, auditor)}` } })
  const events = (await res.text()).trim().split('\n').map((line) => JSON.parse(line) as { action: string, outcome: string, documents?: Array<{ id: string }> })
  return events.filter((e) => e.action === 'document.indexed' && e.outcome === 'granted').map((e) => e.documents?.[0]?.id as string)
}

async function sendBatch (gw: GatewayProcess, body: string): Promise<BatchLine[]> {
  const res = await fetch(`${gw.url}/v1/documents/batch`, { method: 'POST', headers: { authorization: `Bearer ${await token(gw, issuer, 'documents:write')}`, 'content-type': 'application/x-ndjson' }, body })
  if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${await res.text()}`)
  return (await res.text()).trim().split('\n').map((line) => JSON.parse(line) as BatchLine)
}

t.test('batch endpoint: gateway killed mid-batch, the batch sent again to a new gateway', async (t) => {
  const prefix = 'kb:'
  const docs = [...generateDocuments(1200, { seed: 5150 })]
  const body = docs.map((d) => JSON.stringify(d)).join('\n') + '\n'
  const first = await gateway(t, prefix)
  await registerAgencies(t, first)

  // read the streamed answer until a good part is answered, then kill -9 the gateway
  const answered: BatchLine[] = []
  const res = await fetch(`${first.url}/v1/documents/batch`, { method: 'POST', headers: { authorization: `Bearer ${await token(first, issuer, 'documents:write')}`, 'content-type': 'application/x-ndjson' }, body })
  t.equal(res.status, 200)
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    while (answered.length < 300) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let i
      while ((i = buffer.indexOf('\n')) >= 0) { answered.push(JSON.parse(buffer.slice(0, i))); buffer = buffer.slice(i + 1) }
    }
    first.child.kill('SIGKILL')
    for (;;) { if ((await reader.read()).done) break }
  } catch {
    // the connection dies with the process
  }
  const { signal } = await first.exited
  t.equal(signal, 'SIGKILL')
  t.ok(answered.length >= 300 && answered.length < docs.length, `killed after ${answered.length} of ${docs.length} lines were answered`)
  t.ok(answered.every((l) => l.outcome === 'created'), 'every answered line created')

  const second = await gateway(t, prefix)
  const again = await sendBatch(second, body)
  t.equal(again.length, docs.length, 'one answer per line')
  t.same(again.filter((l) => l.outcome !== 'created' && l.outcome !== 'existing'), [], 'no line rejected or in conflict')
  const before = new Map(answered.map((l) => [l.line, l.id]))
  t.ok(answered.every((l) => again[l.line - 1]?.outcome === 'existing' && again[l.line - 1]?.id === l.id), 'lines answered before the kill are `existing`, with the same id')
  const completed = again.filter((l) => l.outcome === 'existing' && !before.has(l.line)).length
  t.ok(again.some((l) => l.outcome === 'created'), 'the kill came before the end of the batch')
  t.comment(`re-run: ${again.filter((l) => l.outcome === 'created').length} created, ${answered.length} existing from the first run, ${completed} completed from the interrupted window`)

  const ids = again.map((l) => l.id as string)
  t.equal(new Set(ids).size, docs.length, 'one id per line')
  const store = await indexed(t, prefix)
  t.equal(store.reservations, docs.length, 'one uniqueness record per line')
  t.same(store.ids.sort(), [...ids].sort(), 'one document per line, none more')
  t.same(store.versions.filter((n) => n !== 1), [], 'each document with exactly one version')

  // every document is on record; an event whose write the kill cut off names an id never used
  const audited = new Set(await auditedIds(second))
  t.ok(ids.every((id) => audited.has(id)), 'every indexed document has its document.indexed event')
  t.comment(`${audited.size - ids.length} document.indexed events name an id the kill left unused`)
})

t.test('CLI import: gateway killed mid-import, the import run again against a new gateway', async (t) => {
  const prefix = 'kc:'
  const docs = [...generateDocuments(700, { seed: 6160 })]
  const file = join(dir, 'documents.ndjson')
  writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n') + '\n')
  const first = await gateway(t, prefix)
  await registerAgencies(t, first)

  const stateFile = `${file}.import-state.json`
  const run = importDocuments({ file, gateway: first.url, privateKey: issuer.privateKey, agency: issuer.code, chunk: 100, progress: false })
  const outcome = run.then(() => 'finished', (err: Error) => err.message)
  for (let i = 0; i < 1200; i++) {
    if (existsSync(stateFile) && JSON.parse(readFileSync(stateFile, 'utf8')).linesDone >= 200) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  first.child.kill('SIGKILL')
  await first.exited
  t.not(await outcome, 'finished', 'the import stopped with the gateway')
  const interruptedAt = JSON.parse(readFileSync(stateFile, 'utf8')).linesDone as number
  t.ok(interruptedAt >= 200 && interruptedAt < docs.length, `interrupted after ${interruptedAt} lines confirmed`)

  const second = await gateway(t, prefix)
  const summary = await importDocuments({ file, gateway: second.url, privateKey: issuer.privateKey, agency: issuer.code, chunk: 100, progress: false })
  t.equal(summary.skipped, interruptedAt, 'resumed after the last confirmed chunk')
  t.equal(summary.created + summary.existing, docs.length - interruptedAt, 'every remaining line indexed or found in')
  t.equal(summary.rejected + summary.conflict, 0)
  t.comment(`resumed run: ${summary.created} created, ${summary.existing} already in (the chunk in flight at the kill)`)

  const full = await importDocuments({ file, gateway: second.url, privateKey: issuer.privateKey, agency: issuer.code, chunk: 500, progress: false, restart: true })
  t.equal(full.created, 0, 'a full re-run creates nothing')
  t.equal(full.existing, docs.length, 'and finds every line in')

  const store = await indexed(t, prefix)
  t.equal(store.ids.length, docs.length, 'one document per line, none more')
  t.equal(store.reservations, docs.length, 'one uniqueness record per line')
  t.same(store.versions.filter((n) => n !== 1), [], 'each document with exactly one version')
})
