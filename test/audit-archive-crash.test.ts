import t from 'tap'
import pg from 'pg'
import { createLocalJWKSet } from 'jose'
import { verifyAuditTrail } from '../src/services/audit-verify.js'
import { buildApp } from '../src/app.js'
import type { AuditEvent } from '../src/services/audit.js'
import { RedisStores } from '../src/store/index.js'
import { testConfig } from './helper.js'
import { startTestPostgres } from './lib/postgres-server.js'
import { startTestRedis } from './lib/redis-server.js'
import { startGateway } from './lib/gateway-process.js'
import { archiveDatabase, DAY } from './lib/audit-archive-world.js'

/**
 * The archiver in a real gateway process: killed (kill -9) while it moves a backlog of batches —
 * between a PostgreSQL commit and the removal from Redis, among other places — and started
 * again, it resumes with every event archived once, none lost, none left in Redis; and with
 * PostgreSQL stopped and started while requests keep coming, nothing acknowledged is lost.
 * The gateway's clock runs two days ahead (test/lib/clock-ahead.mjs), its hot window is a day.
 */
const [redis, postgres] = await Promise.all([startTestRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] }), startTestPostgres()])
t.teardown(async () => { await Promise.all([redis.destroy(), postgres.destroy()]) })

const EVENTS = 24_000

t.test('kill -9 of the gateway while it archives: resumed with no gap and no duplicate', async (t) => {
  const url = await archiveDatabase(postgres)
  const prefix = `crash${process.pid}:`
  // one deployment: one issuer, whichever process signs
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, AUDIT_ARCHIVE_URL: url, GATEWAY_ISSUER: 'https://gateway.test' }
  // the trail: written by the gateway's own audit service (its signing keys are in the store), then a checkpoint
  const app = await buildApp(testConfig({ ...env, AUDIT_ARCHIVE_INTERVAL_MS: String(DAY), OUTBOX_WORKER: 'false' }))
  await app.ready()
  const recorded: Array<Promise<AuditEvent>> = []
  for (let i = 0; i < EVENTS; i++) recorded.push(app.audit.record({ actor: '000.00.12.H41', action: 'token.issued', outcome: 'granted', subject: (i % 97).toString(16).padStart(64, 'a') }))
  await Promise.all(recorded)
  await app.audit.checkpoint()
  const chains = await app.stores.audit.auditChains()
  const heads = new Map<string, number>()
  for (const chain of chains) heads.set(chain, (await app.stores.audit.auditChainHead(chain))!.seq)
  await app.close()

  const sql = new pg.Client({ connectionString: url })
  sql.on('error', () => {})
  await sql.connect()
  t.teardown(async () => await sql.end())
  const archivedCount = async (): Promise<number> => {
    const exists = (await sql.query("SELECT to_regclass('audit_events') IS NOT NULL AS e")).rows[0].e as boolean
    return exists ? Number((await sql.query('SELECT count(*) AS n FROM audit_events')).rows[0].n) : 0
  }
  const gatewayEnv = { ...env, CLOCK_AHEAD_MS: String(2 * DAY), AUDIT_HOT_DAYS: '1', AUDIT_ARCHIVE_INTERVAL_MS: '1000', OUTBOX_WORKER: 'false' }
  const nodeArgs = ['--import', './test/lib/clock-ahead.mjs']

  const store = new RedisStores({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 5000, quitTimeoutMs: 500 })
  await store.connect()
  t.teardown(async () => await store.close())
  const inRedis = async (): Promise<number> => {
    let n = 0
    for (const [chain, head] of heads) n += (await store.audit.auditChainSlice(chain, 1, head)).length
    return n
  }

  let overlapSeen = false
  let archived = 0
  for (let attempt = 0; attempt < 2; attempt++) {
    const gateway = await startGateway(gatewayEnv, { nodeArgs })
    // as soon as one more batch is committed — while the next commits and the one before leaves
    // Redis (a restarted process waits for the dead one's lease: ten intervals)
    const deadline = Date.now() + 60_000
    const before = archived
    while (Date.now() < deadline && (archived = await archivedCount()) === before) await new Promise((resolve) => setTimeout(resolve, 10))
    await gateway.stop('SIGKILL')
    const left = await inRedis()
    t.ok(archived + left >= EVENTS, `after the kill: ${archived} archived + ${left} still in Redis, none lost`)
    if (archived + left > EVENTS) overlapSeen = true
    if (archived === EVENTS) break
  }
  t.comment(overlapSeen ? 'a kill landed between a commit and the removal from Redis' : 'no kill landed between a commit and a removal this time (the resume is tested either way)')

  const last = await startGateway(gatewayEnv, { nodeArgs })
  t.teardown(async () => { await last.stop('SIGKILL') })
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline && (await archivedCount() < EVENTS || await inRedis() > 0)) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await archivedCount(), EVENTS, 'every event archived')
  t.equal(await inRedis(), 0, 'none left in Redis')
  for (const [chain, head] of heads) {
    const { rows } = await sql.query('SELECT count(*) AS n, count(DISTINCT seq) AS seqs, min(seq) AS first, max(seq) AS last FROM audit_events WHERE chain = $1', [chain])
    t.same(rows[0], { n: String(head), seqs: String(head), first: '1', last: String(head) }, `chain ${chain}: each seq once, from 1 to its head`)
  }
  await last.stop('SIGTERM')

  // the whole trail, read through a gateway on both tiers, verifies
  const reader = await buildApp(testConfig({ ...env, AUDIT_ARCHIVE_INTERVAL_MS: String(DAY), OUTBOX_WORKER: 'false' }))
  t.teardown(async () => await reader.close())
  await reader.ready()
  const walk = await reader.audit.rangeWalk({})
  const result = await verifyAuditTrail(walk.events, walk.checkpoints, createLocalJWKSet(reader.signingKeys.jwks()), {
    issuer: reader.config.gatewayIssuer, requireAllChains: true, startOf: walk.startOf, finished: walk.finished, retentionStartsOnly: walk.retentionStartsOnly
  })
  t.match(result, { ok: true, checked: EVENTS }, `the whole trail verifies across the tiers: ${result.reason ?? ''}`)
})
