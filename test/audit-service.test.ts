import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { pino } from 'pino'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { startTestRedis } from './lib/redis-server.js'
import type { TestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { StoreUnavailableError } from '../src/store/index.js'
import type { RedisStores } from '../src/store/index.js'
import { AuditService } from '../src/services/audit.js'
import type { AuditEvent, AuditInput } from '../src/services/audit.js'
import { readAuditLog, verifyAuditTrail } from '../src/services/audit-verify.js'

/**
 * The audit service against a Redis that fails under it: what the caller is told, what the log
 * holds, and that the store and the log file each still verify afterwards.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const { privateKey, publicKey } = await generateKeyPair('ES256')
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'gw-1', alg: 'ES256' }] }
const signer = {
  sign: async (claims: Record<string, unknown>, typ: string): Promise<string> =>
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'gw-1', typ }).sign(privateKey)
}
const keys = createLocalJWKSet(jwks)
const input: AuditInput = { actor: '000.00.12.H41', action: 'token.issued', outcome: 'granted', requestId: 'req-1' }

interface World { store: RedisStores, audit: AuditService, logFile: string, logged: () => Array<{ audit?: AuditEvent, unconfirmed?: boolean, checkpoint?: unknown }> }

async function world (t: Test, commandTimeoutMs = 1000, server: TestRedis = redis): Promise<World> {
  const store = await testRedisStore(t, server, { commandTimeoutMs })
  const logFile = join(mkdtempSync(join(tmpdir(), 'rg-audit-svc-')), 'audit.log')
  // a synchronous destination: what a test reads right after `record` is what was written
  const log = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true }))
  const audit = new AuditService({ audit: store.audit, log, signer, issuer: 'https://gateway.test', cursorKey: 'k' })
  t.teardown(async () => await audit.stop())
  const logged = (): ReturnType<World['logged']> => readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
  return { store, audit, logFile, logged }
}

async function verifyOffline (file: string): Promise<Awaited<ReturnType<typeof verifyAuditTrail>>> {
  const contents = await readAuditLog(file)
  return await verifyAuditTrail(contents.events(), contents.checkpoints, keys)
}

async function verifyOnline (w: World): Promise<Awaited<ReturnType<typeof verifyAuditTrail>>> {
  return await verifyAuditTrail(w.audit.chainEvents(), await w.audit.checkpoints(), keys, { requireAllChains: true })
}

async function untilReachable (store: RedisStores): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try { await store.ping(); return } catch { await new Promise((resolve) => setTimeout(resolve, 50)) }
  }
  throw new Error('the test Redis did not come back')
}

t.test('fail closed: with Redis stopped nothing is recorded or logged; after restart the chain goes on and verifies', async (t) => {
  // a server that keeps what it acknowledged across a restart (append-only file, fsync always)
  const durable = await startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
  t.teardown(async () => await durable.destroy())
  const w = await world(t, 1000, durable)
  await w.audit.record(input)
  await w.audit.record(input)
  const before = w.logged().length
  await durable.stop()
  await t.rejects(w.audit.record(input), StoreUnavailableError)
  await t.rejects(w.audit.record(input), StoreUnavailableError, 'and again, while it is away')
  t.equal(w.logged().length, before, 'nothing logged as recorded')
  await durable.start()
  await untilReachable(w.store)
  const after = await w.audit.record(input)
  t.equal(after.seq, 3, 'the failed appends took no position')
  await w.audit.checkpoint()
  t.same(await verifyOnline(w), { ok: true, checked: 3, chains: 1, checkpoints: 1 })
  t.same(await verifyOffline(w.logFile), { ok: true, checked: 3, chains: 1, checkpoints: 1 })
})

t.test('a Redis that comes back empty: recording resumes on a new chain, and the log still verifies', async (t) => {
  const w = await world(t)
  await w.audit.record(input)
  await w.audit.record(input)
  const chain = w.audit.chain
  await redis.stop()
  await t.rejects(w.audit.record(input), StoreUnavailableError)
  await redis.start()
  await untilReachable(w.store)
  const after = await w.audit.record(input)
  t.not(after.chain, chain, 'positions 1 and 2 of the old chain are in the log: never written twice')
  t.equal(after.seq, 1)
  t.same(await verifyOffline(w.logFile), { ok: true, checked: 3, chains: 2, checkpoints: 0 })
  t.same(await verifyOnline(w), { ok: true, checked: 1, chains: 1, checkpoints: 0 }, 'the store has what it kept')
})

t.test('an append reported failed that reached the store anyway is logged and noted, so the log still verifies', async (t) => {
  const w = await world(t, 300)
  const first = await w.audit.record(input)
  // the script is sent, the server does not answer before the command timeout, then runs it
  redis.pause()
  await t.rejects(w.audit.record({ ...input, requestId: 'req-late' }), StoreUnavailableError)
  redis.resume()
  const next = await w.audit.record({ ...input, requestId: 'req-next' })
  const stored = await w.store.audit.auditChainSlice(w.audit.chain, 1, 10) as unknown as AuditEvent[]
  t.same(stored.map((e) => e.requestId ?? e.action), ['req-1', 'req-late', 'audit.unconfirmed', 'req-next'])
  const late = stored[1] as AuditEvent
  t.same(stored[2]?.detail, { events: [late.id] }, 'the chain says which event recorded a refused action')
  t.equal(stored[2]?.outcome, 'error')
  t.equal(next.seq, 4)
  const lines = w.logged().filter((line) => line.audit)
  t.same(lines.map((line) => line.audit?.seq), [1, 2, 3, 4], 'the log holds every event, in chain order')
  t.equal(lines[1]?.unconfirmed, true)
  t.equal(lines[0]?.audit?.id, first.id)
  t.same(await verifyOffline(w.logFile), { ok: true, checked: 4, chains: 1, checkpoints: 0 })
  t.same(await verifyOnline(w), { ok: true, checked: 4, chains: 1, checkpoints: 0 })
})

t.test('a store that lost logged events is not appended to at their positions: the process moves to a new chain', async (t) => {
  const w = await world(t)
  for (let i = 0; i < 3; i++) await w.audit.record(input)
  const chain = w.audit.chain
  // what a failover to a replica that missed the last write looks like: head back at #2
  const [second] = await w.store.audit.auditChainSlice(chain, 2, 1)
  await w.store.client.hset(w.store.key('audit', 'head'), chain, `2 ${second?.hash as string}`)
  await w.store.client.hdel(w.store.key('audit', 'chain', chain, '0'), '3')
  const append = w.store.audit.appendAuditEvents.bind(w.store.audit)
  w.store.audit.appendAuditEvents = async () => { throw new StoreUnavailableError('connection lost') }
  await t.rejects(w.audit.record(input), StoreUnavailableError)
  w.store.audit.appendAuditEvents = append
  const after = await w.audit.record(input)
  t.not(after.chain, chain, 'a new chain')
  t.equal(after.seq, 1)
  t.same(await verifyOffline(w.logFile), { ok: true, checked: 4, chains: 2, checkpoints: 0 }, 'the log has no two events at one position')
})

t.test('offline: a log stripped of every event of its own chain does not verify', async (t) => {
  const w = await world(t)
  for (let i = 0; i < 5; i++) await w.audit.record(input)
  await w.audit.checkpoint()
  t.same(await verifyOffline(w.logFile), { ok: true, checked: 5, chains: 1, checkpoints: 1 })
  const stripped = join(mkdtempSync(join(tmpdir(), 'rg-audit-svc-')), 'stripped.log')
  writeFileSync(stripped, readFileSync(w.logFile, 'utf8').split('\n').filter((line) => !line.includes('"audit":')).join('\n'))
  const result = await verifyOffline(stripped)
  t.equal(result.ok, false)
  t.equal(result.firstBadEvent, `${w.audit.chain}#1`)
  t.match(result.reason, /cut off/)
})

t.test('events recorded at once share store round trips, and still form one valid chain in order', async (t) => {
  const w = await world(t)
  const append = w.store.audit.appendAuditEvents.bind(w.store.audit)
  const sizes: number[] = []
  w.store.audit.appendAuditEvents = async (batch) => { sizes.push(batch.length); return await append(batch) }
  const events = await Promise.all(Array.from({ length: 300 }, async (_, i) => await w.audit.record({ ...input, requestId: `req-${i}` })))
  t.same(events.map((e) => e.seq), Array.from({ length: 300 }, (_, i) => i + 1), 'each caller gets its own position, in the order recorded')
  t.same(events.map((e) => e.requestId), Array.from({ length: 300 }, (_, i) => `req-${i}`))
  t.ok(sizes.length < 300 && sizes.length >= 2, `300 events in ${sizes.length} appends`)
  t.ok(Math.max(...sizes) <= 256, 'no append larger than its bound')
  await w.audit.stop()
  t.same(await verifyOffline(w.logFile), { ok: true, checked: 300, chains: 1, checkpoints: 0 })
})
