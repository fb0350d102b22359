import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createLocalJWKSet, flattenedVerify } from 'jose'
import { MemoryStores, RedisStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { retryDelay } from '../src/services/outbox.js'
import { build } from './helper.js'
import { startTestRedis, waitFor } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { startGateway } from './lib/gateway-process.js'
import { startReceiver } from './lib/webhook-receiver.js'
import { coverageEnv } from './lib/child-coverage.js'
import type { ReceivedDelivery, WebhookReceiver } from './lib/webhook-receiver.js'
import { generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'

/**
 * The outbox with real HTTP receivers on loopback: announcements to the portal, notices to the
 * agencies that reused a result, and what happens when receivers fail or a gateway dies.
 */
const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))
const cli = async (args: string[], env: Record<string, string>): Promise<string> =>
  (await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...coverageEnv(), ...env }, timeout: 60_000 })).stdout

const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const ISSUER = '000.00.12.H41'
const WARD = '000.20.41.H41' // reuses, has a webhook
const POLICE = '000.00.03.H41' // reuses, has a webhook
const TAX = '000.00.05.H41' // has a webhook, never reuses
const BANK_DESK = '000.00.07.H41' // reuses, no webhook
const PORTAL = '000.00.00.G22'
const PROCEDURE = '1.001193'
const samples = [...generateDocuments(400, { seed: 7 })].filter((d) => d.type === 'giay-khai-sinh')

const FAST = { OUTBOX_POLL_MS: '30', OUTBOX_RETRY_BASE_MS: '40', OUTBOX_RETRY_MAX_MS: '150', WEBHOOK_TIMEOUT_MS: '400' }

interface World {
  app: FastifyInstance
  token: Record<string, string>
  portal: WebhookReceiver
  hooks: Record<string, WebhookReceiver>
}

async function world (t: Test, store: Stores, env: Record<string, string> = {}): Promise<World> {
  const portal = await startReceiver()
  const hooks: Record<string, WebhookReceiver> = { [WARD]: await startReceiver(), [POLICE]: await startReceiver(), [TAX]: await startReceiver() }
  t.teardown(async () => { for (const r of [portal, ...Object.values(hooks)]) await r.close() })
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: { ...adminEnv(admin), PORTAL_WEBHOOK_URL: portal.url, ...FAST, ...env } })
  const adminToken = await tokenFor(app, admin)
  const token: Record<string, string> = { admin: adminToken }
  for (const [code, roles] of [[ISSUER, ['issuer']], [WARD, ['requester']], [POLICE, ['requester']], [TAX, ['requester']], [BANK_DESK, ['requester']], [PORTAL, ['portal']]] as const) {
    const agency = await makeAgency(code)
    const hook = hooks[code]
    await register(app, adminToken, agency, [...roles], { ...(hook ? { webhookUrl: hook.url } : {}), ...(code === ISSUER ? { issuableTypes: ['giay-khai-sinh'] } : {}) })
    token[code] = await tokenFor(app, agency)
    if (roles[0] === 'requester') {
      const res = await app.inject({ method: 'PUT', url: `/v1/agreements/birth-${code}`, headers: { authorization: `Bearer ${adminToken}` }, payload: { requester: code, documentTypes: ['giay-khai-sinh'], procedureCodes: [PROCEDURE], fields: { 'giay-khai-sinh': ['fullName'] }, validFrom: '2026-01-01' } })
      if (res.statusCode !== 201) throw new Error(res.body)
    }
  }
  return { app, token, portal, hooks }
}

async function index (w: World, doc: SampleDocument): Promise<string> {
  const res = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${w.token[ISSUER]}` }, payload: doc })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().id
}

async function amend (w: World, id: string, doc: SampleDocument, name: string): Promise<void> {
  const res = await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/amend`, headers: { authorization: `Bearer ${w.token[ISSUER]}` }, payload: { procedureCode: doc.procedureCode, dossierCode: '000.00.12.H41-261125-0001', data: { ...doc.data, fullName: name }, reason: 'Cải chính họ tên' } })
  if (res.statusCode !== 201) throw new Error(res.body)
}

async function revoke (w: World, id: string): Promise<void> {
  const res = await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/revoke`, headers: { authorization: `Bearer ${w.token[ISSUER]}` }, payload: { reason: 'Cấp sai thẩm quyền' } })
  if (res.statusCode !== 200) throw new Error(res.body)
}

async function reuse (w: World, requester: string, doc: SampleDocument, dossierCode: string): Promise<void> {
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { authorization: `Bearer ${w.token[requester]}` }, payload: { subject: doc.subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode } } })
  if (res.statusCode !== 200 || !res.json().results[0].found) throw new Error(`reuse: ${res.body}`)
}

/**
 * Waits until the outbox has settled every delivery (`delivered` of them in all), then drives one
 * more fan-out and delivery round in each gateway — deliverDue returns only once none of the
 * gateway's attempts is in flight — and returns what a worker could still claim at any time in
 * the next hour (nothing, when every delivery is settled for good). After this, a duplicate
 * cannot still be on its way to a receiver.
 */
async function settle (store: Stores, apps: FastifyInstance[], delivered: number): Promise<string[]> {
  await waitFor(async () => {
    const status = await store.outbox.outboxStatus()
    return status.every((s) => s.queued === 0) && status.reduce((n, s) => n + s.delivered, 0) >= delivered
  }, 30_000, `${delivered} deliveries settled`)
  for (const app of apps) {
    await app.outbox.fanOutOnce()
    await app.outbox.deliverDue()
  }
  const claimable = await store.outbox.claimOutboxDeliveries(Date.now() + 3_600_000, 60_000, 1000, 'probe')
  return claimable.map((c) => `${c.delivery.destination} ${c.event.id}`)
}

const ids = (deliveries: ReceivedDelivery[]): string[] => deliveries.map((d) => d.body.id)
const ofDocument = (deliveries: ReceivedDelivery[], id: string): ReceivedDelivery[] => deliveries.filter((d) => (d.body.document as { id: string }).id === id)
const counts = (values: string[]): Record<string, number> => values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {})

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('the portal hears of every indexed, amended and revoked result, signed, in order, metadata only', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = structuredClone(samples[0] as SampleDocument)
      const id = await index(w, doc)
      await amend(w, id, doc, 'Nguyễn Văn An')
      await revoke(w, id)
      const got = await w.portal.until((acked) => acked.length >= 3)
      t.same(ids(got), [`${id}.1.indexed`, `${id}.2.amended`, `${id}.2.revoked`])
      t.same(got.map((d) => d.body.type), ['document.indexed', 'document.amended', 'document.revoked'])
      t.ok(got[0]!.body.cursor < got[1]!.body.cursor && got[1]!.body.cursor < got[2]!.body.cursor, 'cursors increase')
      t.same(got[0]!.body.subject, doc.subject, 'the portal is told whose result it is')
      t.match(got[2]!.body.document, { id, version: 2, status: 'revoked', issuer: ISSUER, type: 'giay-khai-sinh', revocationReason: 'Cấp sai thẩm quyền' })
      t.notOk('data' in (got[0]!.body.document as object) || 'data' in got[0]!.body, 'no structured data leaves in an announcement')
      t.equal(got[0]!.body.recipient, 'portal')
      const jwks = createLocalJWKSet((await w.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
      for (const delivery of got) {
        t.equal(delivery.headers['reuse-event-id'], delivery.body.id)
        const [header, empty, signature] = String(delivery.headers['reuse-signature']).split('.')
        t.equal(empty, '', 'the payload is detached')
        const verified = await flattenedVerify({ protected: header as string, payload: Buffer.from(delivery.raw).toString('base64url'), signature: signature as string }, jwks)
        t.equal(verified.protectedHeader?.typ, 'reuse-webhook+jws')
        t.ok(verified.protectedHeader?.kid, 'the key id is in the signature header')
      }
      const tampered = got[0]!.raw.replace('document.indexed', 'document.revoked')
      const [header, , signature] = String(got[0]!.headers['reuse-signature']).split('.')
      const altered = await flattenedVerify({ protected: header as string, payload: Buffer.from(tampered).toString('base64url'), signature: signature as string }, jwks).then(() => 'verified', (err: Error) => err.message)
      t.equal(altered, 'signature verification failed', 'an altered body does not verify')
      // each is recorded just after the receiver's answer
      for (let i = 0; i < 200 && (await w.app.audit.search({ action: 'webhook.delivered', limit: 10 })).events.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      const audit = await w.app.audit.search({ action: 'webhook.delivered', limit: 10 })
      t.equal(audit.events.length, 3, 'every delivery is on record')
      t.match(audit.events[0]?.detail, { destination: 'portal', attempt: 1, status: 204 })
      t.same(Object.values(w.hooks).flatMap((r) => r.received), [], 'no agency reused it: no notices')
    })

    t.test('a result whose validity ends is announced as expired, once', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = { ...structuredClone(samples[9] as SampleDocument), issuedAt: '2025-01-02', validFrom: '2025-01-02', validUntil: '2025-06-30' }
      const current = { ...structuredClone(samples[11] as SampleDocument), validUntil: '2099-12-31' }
      const id = await index(w, doc)
      const currentId = await index(w, current)
      const got = await w.portal.until((acked) => acked.length >= 3)
      t.same(await settle(w.app.stores, [w.app], 3), [], 'nothing left to deliver, ever')
      t.same(ids(w.portal.received).sort(), [`${currentId}.1.indexed`, `${id}.1.expired`, `${id}.1.indexed`].sort())
      t.same(ids(ofDocument(got, id)), [`${id}.1.indexed`, `${id}.1.expired`], 'after its indexing')
      const expired = ofDocument(got, id)[1]!
      t.match(expired.body, { type: 'document.expired', occurredAt: '2025-06-30T17:00:00.000Z', document: { status: 'expired', validUntil: '2025-06-30' } })
    })

    t.test('a revocation reaches exactly the agencies that reused the document, with their dossier codes', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = structuredClone(samples[1] as SampleDocument)
      const untouched = structuredClone(samples[2] as SampleDocument)
      const id = await index(w, doc)
      const otherId = await index(w, untouched)
      await reuse(w, WARD, doc, '000.20.41.H41-261120-0001')
      await reuse(w, WARD, doc, '000.20.41.H41-261121-0002')
      await reuse(w, WARD, doc, '000.20.41.H41-261121-0002') // the same dossier asked twice
      await reuse(w, POLICE, doc, '000.00.03.H41-261122-0007')
      await reuse(w, BANK_DESK, doc, '000.00.07.H41-261122-0001')
      await reuse(w, TAX, untouched, '000.00.05.H41-261122-0003')

      await amend(w, id, doc, 'Trần Thị Bích')
      const wardAmended = await w.hooks[WARD]!.until((acked) => acked.length >= 1)
      t.equal(wardAmended[0]!.body.type, 'document.amended')
      t.equal(wardAmended[0]!.body.recipient, WARD)
      t.match(wardAmended[0]!.body.document, { id, version: 2, status: 'valid', supersedes: 1 })
      t.same(wardAmended[0]!.body.reuses, [
        { version: 1, status: 'superseded', procedureCode: PROCEDURE, dossierCode: '000.20.41.H41-261120-0001', reusedAt: (wardAmended[0]!.body.reuses as Array<{ reusedAt: string }>)[0]!.reusedAt },
        { version: 1, status: 'superseded', procedureCode: PROCEDURE, dossierCode: '000.20.41.H41-261121-0002', reusedAt: (wardAmended[0]!.body.reuses as Array<{ reusedAt: string }>)[1]!.reusedAt }
      ], 'its two dossiers, each once, its version now superseded')
      const policeAmended = await w.hooks[POLICE]!.until((acked) => acked.length >= 1)
      t.same((policeAmended[0]!.body.reuses as Array<{ dossierCode: string }>).map((r) => r.dossierCode), ['000.00.03.H41-261122-0007'])
      t.notOk(JSON.stringify(policeAmended[0]!.body).includes('000.20.41.H41-2611'), 'an agency never learns another agency\'s dossiers')
      t.notOk(JSON.stringify(policeAmended[0]!.body).includes(doc.subject.id), 'nor the citizen\'s identifier')

      await reuse(w, POLICE, doc, '000.00.03.H41-261124-0009') // version 2 now
      await revoke(w, id)
      const wardAll = await w.hooks[WARD]!.until((acked) => acked.length >= 2)
      const policeAll = await w.hooks[POLICE]!.until((acked) => acked.length >= 2)
      t.same(ids(wardAll), [`${id}.2.amended`, `${id}.2.revoked`])
      t.same(ids(policeAll), [`${id}.2.amended`, `${id}.2.revoked`])
      t.same((policeAll[1]!.body.reuses as Array<{ version: number, status: string, dossierCode: string }>).map((r) => [r.version, r.status, r.dossierCode]), [
        [1, 'revoked', '000.00.03.H41-261122-0007'],
        [2, 'revoked', '000.00.03.H41-261124-0009']
      ])
      t.match(policeAll[1]!.body.document, { id, status: 'revoked', revocationReason: 'Cấp sai thẩm quyền' })
      await revoke(w, otherId)
      await w.hooks[TAX]!.until((acked) => acked.length >= 1)
      t.same(ids(w.hooks[TAX]!.received), [`${otherId}.1.revoked`], 'the tax office hears only of what it reused')
      await w.portal.until((acked) => acked.length >= 5)
      t.same(ids(w.hooks[WARD]!.received), [`${id}.2.amended`, `${id}.2.revoked`], 'nothing else, nothing twice')
      const status = await w.app.stores.outbox.outboxStatus()
      t.same(status.map((s) => s.destination), [`agency:${POLICE}`, `agency:${TAX}`, `agency:${WARD}`, 'portal'], 'the agency without a webhook has no deliveries')
    })

    t.test('a receiver that is down for a while gets everything once it is back, in order per document, none twice', async (t) => {
      const w = await world(t, await makeStore(t))
      await w.portal.down()
      const docs = samples.slice(3, 6).map((d) => structuredClone(d))
      const docIds = []
      for (const doc of docs) docIds.push(await index(w, doc))
      await amend(w, docIds[0]!, docs[0]!, 'Lê Văn Cường')
      await revoke(w, docIds[0]!)
      // attempts fail while it is down
      for (let i = 0; i < 200 && (await w.app.audit.search({ action: 'webhook.failed', limit: 5 })).events.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      const failed = await w.app.audit.search({ action: 'webhook.failed', limit: 5 })
      t.ok(failed.events.length >= 3, 'failed attempts are on record')
      t.match(failed.events[0]?.detail, { destination: 'portal', error: /unreachable/ })
      await w.portal.up()
      const got = await w.portal.until((acked) => new Set(ids(acked)).size >= 5)
      t.same(Object.values(counts(ids(got))).filter((n) => n > 1), [], 'no event acknowledged twice')
      t.same(ids(ofDocument(got, docIds[0]!)), [`${docIds[0]}.1.indexed`, `${docIds[0]}.2.amended`, `${docIds[0]}.2.revoked`], 'in order for the document')
      for (const id of docIds.slice(1)) t.same(ids(ofDocument(got, id)), [`${id}.1.indexed`])
    })

    t.test('500s, timeouts and slow answers: retried with back-off until acknowledged, once', async (t) => {
      const w = await world(t, await makeStore(t))
      const seen = new Map<string, number>()
      w.portal.behaviour = (delivery) => {
        const n = (seen.get(delivery.body.id) ?? 0) + 1
        seen.set(delivery.body.id, n)
        return n === 1 ? 500 : n === 2 ? 'hang' : { delayMs: 150 }
      }
      const id = await index(w, structuredClone(samples[6] as SampleDocument))
      const got = await w.portal.until((acked) => acked.length >= 1)
      t.same(ids(got), [`${id}.1.indexed`])
      t.equal(w.portal.received.length, 3, 'three attempts reached it')
      t.same(w.portal.received.map((d) => d.headers['reuse-delivery-attempt']), ['1', '2', '3'])
      t.equal(w.portal.received[1]!.raw, w.portal.received[2]!.raw, 'the same body every attempt (receivers de-duplicate on its id)')
      for (let i = 0; i < 100 && (await w.app.audit.search({ action: 'webhook.delivered', limit: 1 })).events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
      const failed = (await w.app.audit.search({ action: 'webhook.failed', limit: 5 })).events.map((e) => e.detail?.error).reverse()
      t.match(failed, [/HTTP 500/, /no answer within 400 ms/])
      t.match((await w.app.audit.search({ action: 'webhook.delivered', limit: 1 })).events[0]?.detail, { attempt: 3 })
    })

    t.test('a replay sends the very bodies the first deliveries sent, though the document changed since', async (t) => {
      const w = await world(t, await makeStore(t))
      const doc = structuredClone(samples[9] as SampleDocument)
      const id = await index(w, doc)
      const [indexed] = await w.portal.until((acked) => acked.length >= 1)
      t.match(indexed!.body.document, { version: 1, latestVersion: 1, status: 'valid' })
      await amend(w, id, doc, 'Trần Thị Bình')
      await w.portal.until((acked) => acked.length >= 2)
      await revoke(w, id)
      await w.portal.until((acked) => acked.length >= 3)
      const first = w.portal.received.slice(0, 3).map((d) => d.raw)
      const replay = await w.app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: { authorization: `Bearer ${w.token[PORTAL]}` }, payload: { after: 0 } })
      t.same(replay.json(), { destination: 'portal', requeued: 3 })
      const again = (await w.portal.until((acked) => acked.length >= 6)).slice(3).map((d) => d.raw)
      t.same(again, first, 'byte for byte: the indexed version still valid and latest, as it was then')
      t.notOk('revokedAt' in (JSON.parse(again[0] as string).document as object), 'no revocation that came later')
    })

    t.test('dead-lettered after the last attempt, then replayed from a cursor on request', async (t) => {
      const w = await world(t, await makeStore(t), { OUTBOX_MAX_ATTEMPTS: '2' })
      w.portal.behaviour = () => 503
      const first = await index(w, structuredClone(samples[7] as SampleDocument))
      const second = await index(w, structuredClone(samples[8] as SampleDocument))
      const deliveries = async (): Promise<Array<{ event: string, state: string, attempts: number, cursor: number, lastError?: string }>> =>
        (await w.app.inject({ method: 'GET', url: '/v1/webhooks/deliveries', headers: { authorization: `Bearer ${w.token[PORTAL]}` } })).json().deliveries
      for (let i = 0; i < 200 && (await deliveries()).filter((d) => d.state === 'dead').length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      const dead = await deliveries()
      t.same(dead.map((d) => [d.event, d.state, d.attempts]), [[`${first}.1.indexed`, 'dead', 2], [`${second}.1.indexed`, 'dead', 2]])
      t.match(dead[0]?.lastError, /HTTP 503/)
      t.same(await w.app.stores.outbox.outboxStatus(), [{ destination: 'portal', queued: 0, delivered: 0, dead: 2 }])
      t.equal((await w.app.audit.search({ action: 'webhook.dead', limit: 5 })).events.length, 2)

      w.portal.behaviour = () => 200
      const forbidden = await w.app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: { authorization: `Bearer ${w.token[BANK_DESK]}` }, payload: { after: 0 } })
      t.equal(forbidden.statusCode, 404, 'an agency without a webhook has nothing to replay')
      const replay = await w.app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: { authorization: `Bearer ${w.token[PORTAL]}` }, payload: { after: dead[0]!.cursor } })
      t.equal(replay.statusCode, 202)
      t.same(replay.json(), { destination: 'portal', requeued: 1 }, 'only what comes after the cursor')
      const got = await w.portal.until((acked) => acked.length >= 1)
      t.same(ids(got), [`${second}.1.indexed`])
      // settled just after the receiver's answer
      for (let i = 0; i < 200 && (await deliveries())[1]?.state !== 'delivered'; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      t.same((await deliveries()).map((d) => d.state), ['dead', 'delivered'])
      const bad = await w.app.inject({ method: 'POST', url: '/v1/webhooks/replay', headers: { authorization: `Bearer ${w.token[PORTAL]}` }, payload: { after: -1 } })
      t.equal(bad.statusCode, 400)
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))

t.test('two gateways on one Redis deliver each event once', async (t) => {
  const first = await testRedisStore(t, redis)
  const prefix = first.key('x').split('{')[0] as string
  const second = new RedisStores({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000, quitTimeoutMs: 500 })
  await second.connect()
  t.teardown(async () => await second.close())
  const w = await world(t, first)
  const admin = await makeAgency('000.00.00.A02')
  const other = await build(t, { store: second, env: { ...adminEnv(admin), PORTAL_WEBHOOK_URL: w.portal.url, ...FAST } })
  t.ok(other.outbox.owner !== w.app.outbox.owner)
  w.portal.behaviour = () => ({ delayMs: 20 })
  const docIds = []
  for (const doc of samples.slice(10, 40)) docIds.push(await index(w, structuredClone(doc)))
  const got = await w.portal.until((acked) => acked.length >= docIds.length)
  t.same(await settle(first, [w.app, other], docIds.length), [], 'nothing left to deliver, ever')
  t.same(Object.values(counts(ids(w.portal.received))).filter((n) => n !== 1), [], 'no event reached the receiver twice')
  t.equal(w.portal.received.length, docIds.length, 'each event reached the receiver exactly once')
  t.same(new Set(ids(got)), new Set(docIds.map((id) => `${id}.1.indexed`)))
})

t.test('a gateway killed mid-delivery: the delivery is made after a restart', async (t) => {
  const store = await testRedisStore(t, redis)
  const prefix = store.key('x').split('{')[0] as string
  const portal = await startReceiver()
  t.teardown(async () => await portal.close())
  // the document is indexed by a gateway that does not deliver
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: { ...adminEnv(admin), OUTBOX_WORKER: 'false' } })
  const adminToken = await tokenFor(app, admin)
  const issuer = await makeAgency(ISSUER)
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  const doc = structuredClone(samples[50] as SampleDocument)
  const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${await tokenFor(app, issuer)}` }, payload: doc })
  t.equal(res.statusCode, 201)
  const id = res.json().id

  portal.behaviour = () => 'hang'
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, PORTAL_WEBHOOK_URL: portal.url, OUTBOX_POLL_MS: '50', WEBHOOK_TIMEOUT_MS: '1000' }
  const doomed = await startGateway(env)
  for (let i = 0; i < 400 && portal.received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.equal(portal.received.length, 1, 'the first gateway was delivering')
  doomed.child.kill('SIGKILL')
  await doomed.exited
  portal.behaviour = () => 204

  const next = await startGateway(env)
  t.teardown(async () => { await next.stop() })
  const got = await portal.until((acked) => acked.length >= 1, 30_000)
  t.same(ids(got), [`${id}.1.indexed`])
  t.equal(portal.acknowledged().length, 1, 'acknowledged once')
  // the gateway settles the delivery just after the receiver's answer
  for (let i = 0; i < 200 && (await store.outbox.outboxStatus())[0]?.delivered !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.same((await store.outbox.outboxStatus()), [{ destination: 'portal', queued: 0, delivered: 1, dead: 0 }])

  // the operator's view, and a replay the portal asked for by telephone
  const cliEnv = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix }
  const status = await cli(['outbox', 'status'], cliEnv)
  t.match(status, /^portal\s+0\s+1\s+0$/m)
  // the attempt cut off by the kill was never settled, so it is not counted
  t.match(await cli(['outbox', 'status', '--destination', 'portal'], cliEnv), new RegExp(`delivered\\s+1 attempts\\s+${id}\\.1\\.indexed`))
  t.match(await cli(['outbox', 'replay', '--destination', 'portal', '--after', '0'], cliEnv), /^1 deliveries to portal queued again$/m)
  await portal.until((acked) => acked.length >= 2, 30_000)
  t.same(ids(portal.acknowledged()), [`${id}.1.indexed`, `${id}.1.indexed`], 'sent again with the same event id')
  const refused = await cli(['outbox', 'replay', '--destination', 'nowhere'], cliEnv).catch((err: { stderr: string }) => err.stderr)
  t.match(refused, /unknown destination/)
})

t.test('back-off doubles up to its bound, with jitter', async (t) => {
  t.same([1, 2, 3, 4, 10].map((n) => retryDelay(n, 1000, 10_000, () => 1)), [1000, 2000, 4000, 8000, 10_000])
  t.same([1, 2, 3].map((n) => retryDelay(n, 1000, 10_000, () => 0)), [500, 1000, 2000], 'never less than half')
  const spread = new Set(Array.from({ length: 50 }, () => retryDelay(3, 1000, 10_000)))
  t.ok(spread.size > 10, 'retries of many deliveries do not fall on the same instant')
})
