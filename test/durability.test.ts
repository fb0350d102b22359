import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { SampleDocument } from '../src/sample-data/generate.js'
import type { StoredAuditEvent } from '../src/store/index.js'
import { compactId } from '../src/store/redis/binary.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { DOSSIER, births, indexOne, loadWorld, released, reuseQuery, verifyAudit, waitUntilReady } from './lib/load-world.js'
import type { LoadWorld } from './lib/load-world.js'

/**
 * Redis killed (kill -9) under a gateway, with AOF and appendfsync always as the README asks:
 * whatever the gateway acknowledged (a 2xx) is there after the restart — documents with every
 * version, the audit events of acknowledged requests — and the audit chains still verify.
 */
const redis = await startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
t.teardown(async () => await redis.destroy())

/** the audit events with these ids that the store holds */
async function storedEvents (w: LoadWorld, ids: string[]): Promise<Map<string, StoredAuditEvent>> {
  const found = new Map<string, StoredAuditEvent>()
  for (let i = 0; i < ids.length; i += 200) {
    for (const event of await w.app.stores.audit.auditEvents(ids.slice(i, i + 200))) found.set(event.id, event)
  }
  return found
}

/** the document.indexed events naming each of these documents */
async function indexedEvents (w: LoadWorld, ids: string[]): Promise<Set<string>> {
  const seen = new Set<string>()
  for (const id of ids) {
    const { events } = await w.app.audit.search({ documentId: id, action: 'document.indexed', limit: 5 })
    if (events.some((e) => e.outcome === 'granted')) seen.add(id)
  }
  return seen
}

t.test('acknowledged documents, versions and audit events survive kill -9 of Redis', async (t) => {
  const store = await testRedisStore(t, redis)
  const w = await loadWorld(t, store)
  const auth = { authorization: `Bearer ${w.issuerToken}` }
  const docs = births(240, 4101)
  /** id → the dossier code of each acknowledged version, in order */
  const acknowledged = new Map<string, string[]>()
  const citizens = new Map<string, string>()

  // single registrations
  for (const doc of docs.slice(0, 40)) {
    const res = await indexOne(w, doc)
    t.equal(res.statusCode, 201)
    acknowledged.set(res.json().id, [doc.dossierCode])
    citizens.set(res.json().id, doc.subject.id)
  }
  // one batch import
  const batchDocs = docs.slice(40)
  const batch = await w.app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...auth, 'content-type': 'application/x-ndjson' }, payload: batchDocs.map((d) => JSON.stringify(d)).join('\n') + '\n' })
  t.equal(batch.statusCode, 200)
  const lines = batch.body.trim().split('\n').map((line) => JSON.parse(line) as { line: number, outcome: string, id: string })
  t.equal(lines.length, batchDocs.length)
  t.ok(lines.every((l) => l.outcome === 'created'), 'every batch line created')
  for (const l of lines) {
    const doc = batchDocs[l.line - 1] as SampleDocument
    acknowledged.set(l.id, [doc.dossierCode])
    citizens.set(l.id, doc.subject.id)
  }
  // amendments: a second version of some
  const amended = [...acknowledged.keys()].filter((_id, i) => i % 12 === 0)
  for (const id of amended) {
    const current = (await w.app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: auth })).json()
    const dossierCode = DOSSIER
    const res = await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/amend`, headers: auth, payload: { procedureCode: current.procedureCode, dossierCode, data: current.data, reason: 'cải chính họ tên' } })
    t.equal(res.statusCode, 201)
    acknowledged.get(id)?.push(dossierCode)
  }
  // reuse queries: released data, each with its audit event
  const queries: Array<{ queryId: string, documents: Array<{ id: string, version: number }> }> = []
  for (const id of [...acknowledged.keys()].filter((_id, i) => i % 8 === 0)) {
    const res = await reuseQuery(w, citizens.get(id) as string)
    t.equal(res.statusCode, 200)
    queries.push(released(res))
  }
  t.ok(queries.every((q) => q.documents.length > 0), 'every query released a document')

  await redis.kill()
  await redis.start()
  await waitUntilReady(w.app)

  let versionsOk = 0
  for (const [id, dossiers] of acknowledged) {
    const found = await w.app.stores.documents.getDocument(id)
    if (found?.document.versions.map((v) => v.dossierCode).join() === dossiers.join()) versionsOk++
    else t.fail(`document ${id}: ${dossiers.length} acknowledged versions, found ${found?.document.versions.length ?? 0}`)
  }
  t.equal(versionsOk, acknowledged.size, `all ${acknowledged.size} documents there with every version (${amended.length} amended)`)

  const queryEvents = await storedEvents(w, queries.map((q) => q.queryId))
  t.equal(queryEvents.size, queries.length, `the audit event of each of ${queries.length} reuse queries is there`)
  t.ok(queries.every((q) => JSON.stringify(queryEvents.get(q.queryId)?.documents) === JSON.stringify(q.documents)), 'each names the documents it released')
  const indexed = await indexedEvents(w, [...acknowledged.keys()])
  t.equal(indexed.size, acknowledged.size, 'the document.indexed event of each acknowledged document is there')

  const verified = await verifyAudit(w)
  t.equal(verified.ok, true, verified.reason ?? 'the audit chains verify')
  t.ok(verified.checked >= acknowledged.size + amended.length + queries.length)
})

t.test('kill -9 of Redis while index requests are in flight: every 2xx is there after the restart', async (t) => {
  const store = await testRedisStore(t, redis)
  const w = await loadWorld(t, store)
  const docs = births(500, 4202)
  /** each answer, and whether Redis was down when its request was sent and when it was answered */
  const answers: Array<{ doc: SampleDocument, res: LightMyRequestResponse, sentWhileDown: boolean, answeredWhileDown: boolean }> = []
  let down = false
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < docs.length) {
      const doc = docs[next++] as SampleDocument
      const sentWhileDown = down
      const res = await indexOne(w, doc)
      answers.push({ doc, res, sentWhileDown, answeredWhileDown: down })
    }
  }
  const workers = Array.from({ length: 24 }, worker)

  // kill once a good part is acknowledged, with 24 requests in flight
  while (answers.length < 120) await new Promise((resolve) => setTimeout(resolve, 5))
  t.ok(next < docs.length, 'requests still to send when Redis is killed')
  await redis.kill()
  down = true
  const killedAfter = answers.length
  while (answers.length < killedAfter + 60 && next < docs.length) await new Promise((resolve) => setTimeout(resolve, 5))
  down = false
  await redis.start()
  await Promise.all(workers)
  await waitUntilReady(w.app)

  const statuses = answers.map((a) => a.res.statusCode)
  t.same([...new Set(statuses)].filter((s) => s !== 201 && s !== 503), [], 'every answer a 201 or a 503')
  const refused = answers.filter((a) => a.res.statusCode === 503)
  t.ok(refused.every((a) => a.res.headers['retry-after'] === '1' && a.res.json().code === 'store_unavailable'), '503s say store_unavailable with Retry-After')
  // the kill hit the traffic: what was sent while Redis was away and answered before it came
  // back was refused (503 at once, nothing acknowledged without Redis); without such answers
  // this test would not have exercised the outage at all
  const whileDown = answers.filter((a) => a.sentWhileDown && a.answeredWhileDown)
  t.ok(whileDown.length > 0, `requests were sent and answered while Redis was down (${whileDown.length})`)
  t.same(whileDown.filter((a) => a.res.statusCode !== 503).map((a) => a.res.statusCode), [], 'each of them refused')
  t.ok(refused.length > 0, 'the kill phase refused requests')
  const ok = answers.filter((a) => a.res.statusCode === 201)
  t.comment(`${ok.length} acknowledged, ${refused.length} refused (${whileDown.length} sent and answered while Redis was down); Redis killed after ${killedAfter} answers`)
  t.ok(ok.length >= 120, 'acknowledged before the kill and after the restart')

  let present = 0
  for (const { doc, res } of ok) {
    const found = await w.app.stores.documents.getDocument(res.json().id)
    if (found?.document.versions.length === 1 && found.document.versions[0]?.documentNumber === doc.documentNumber) present++
    else t.fail(`acknowledged document ${res.json().id} is missing`)
  }
  t.equal(present, ok.length, 'every acknowledged document is there')
  const indexed = await indexedEvents(w, ok.map((a) => a.res.json().id))
  t.equal(indexed.size, ok.length, 'with its document.indexed event')

  // a refused one sent again is indexed once: created now, or found already there
  const retried = new Set<number>()
  for (const { doc } of refused) retried.add((await indexOne(w, doc)).statusCode)
  t.same([...retried].filter((s) => s !== 201 && s !== 200), [], 'each refused registration, retried, is created or found in')
  const verified = await verifyAudit(w)
  t.equal(verified.ok, true, verified.reason ?? 'the audit chains verify')
})

t.test('a registration a crash cut between its writes is completed when it is sent again', async (t) => {
  const store = await testRedisStore(t, redis)
  const w = await loadWorld(t, store)
  const doc = births(1, 4303)[0] as SampleDocument
  const read = async (id: string) => await w.app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: { authorization: `Bearer ${w.issuerToken}` } })
  const first = await indexOne(w, doc)
  t.equal(first.statusCode, 201)
  const id = first.json().id as string
  // the state a crash leaves between writing version 1 and the id → subject pointer (on a
  // cluster, where the two are in different slots): the pointer, in its bucket, removed
  t.equal(await store.client.hdel(store.key(`i:${id.slice(-4)}`), compactId(id)), 1, 'the pointer was in its bucket')
  t.equal((await read(id)).statusCode, 404, 'cut off: not readable by its id')

  const again = await indexOne(w, doc)
  t.equal(again.statusCode, 200, 'sent again: found in')
  t.equal(again.json().id, id, 'under the id it was given')
  const after = await read(id)
  t.equal(after.statusCode, 200, 'readable by its id again')
  t.equal(after.json().latestVersion, 1)
})
