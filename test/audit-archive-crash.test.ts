import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
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
import { coverageEnv } from './lib/child-coverage.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))

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

t.test('the operator\'s commands: audit archive migrate, status and run, as docs/cli.md shows them', async (t) => {
  const url = await archiveDatabase(postgres)
  const prefix = `cli${process.pid}:`
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, AUDIT_ARCHIVE_URL: url, GATEWAY_ISSUER: 'https://gateway.test' }
  const cli = async (args: string[], extra: Record<string, string> = {}): Promise<string> => (await run(process.execPath, ['--import', 'tsx', '--import', './test/lib/clock-ahead.mjs', 'src/cli/main.ts', 'audit', 'archive', ...args], {
    cwd: root, env: { PATH: process.env.PATH ?? '', ...coverageEnv(), ...env, ...extra }, timeout: 60_000
  })).stdout

  t.match(await cli(['migrate']), /applied migrations 1; the schema is at version 1/, 'a new archive gets its schema')
  t.match(await cli(['migrate']), /nothing to apply; the schema is at version 1/, 'and only once')

  const app = await buildApp(testConfig({ ...env, AUDIT_ARCHIVE_INTERVAL_MS: String(DAY), OUTBOX_WORKER: 'false' }))
  await app.ready()
  await Promise.all(Array.from({ length: 1200 }, async () => await app.audit.record({ actor: '000.00.12.H41', action: 'token.issued', outcome: 'granted' })))
  await app.audit.checkpoint()
  const chain = app.audit.chain
  await app.close()

  const before = await cli(['status'])
  t.match(before, /archived up to: nothing yet/)
  t.match(before, new RegExp(`${chain}\\s+1200\\s+-\\s+1200`), 'the chain, all of it still in the store')
  t.match(await cli(['run', '--quiet'], { CLOCK_AHEAD_MS: String(2 * DAY), AUDIT_HOT_DAYS: '1' }), /^1200 events and 0 checkpoints archived, up to the checkpoint of /, 'run archives what the hot window no longer holds')
  const status = JSON.parse(await cli(['status', '--json'])) as { archivedUpTo?: { id: string }, chains: Array<{ chain: string, hot?: number, archived?: number, lag: number }>, partitions: Array<{ name: string, rows: number }> }
  t.ok(status.archivedUpTo?.id)
  t.same(status.chains.find((c) => c.chain === chain), { chain, archived: 1200, lag: 0 }, 'all archived, no lag, and — its process gone — no longer in the store')
  const month = `audit_events_${new Date().toISOString().slice(0, 7).replace('-', '_')}`
  t.ok(status.partitions.some((p) => p.name === month), `their month, ${month}, is listed with its size`)
})
