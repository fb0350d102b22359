import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { spawnGateway, startGateway } from './lib/gateway-process.js'
import type { GatewayProcess } from './lib/gateway-process.js'
import { startTestRedis } from './lib/redis-server.js'
import type { TestRedis } from './lib/redis-server.js'
import { generateGatewayKey, writeKeyFile } from '../src/services/signing-keys.js'
import { loadConfig } from '../src/config.js'
import { build } from './helper.js'
import { RedisStores } from '../src/store/index.js'

/**
 * Production refuses a Redis that would lose acknowledged writes in a crash, unless the operator
 * says otherwise (ALLOW_NO_PERSISTENCE=true); a Redis it cannot reach at start is checked as soon
 * as it answers, and nothing is served before.
 */
const keysFile = join(mkdtempSync(join(tmpdir(), 'rg-keys-')), 'gateway.jwks.json')
await writeKeyFile(keysFile, [await generateGatewayKey('EdDSA')])

const AOF_ALWAYS = ['--appendonly', 'yes', '--appendfsync', 'always']

function production (redis: TestRedis, extra: Record<string, string> = {}): Record<string, string> {
  return { NODE_ENV: 'production', REDIS_URL: redis.url, SUBJECT_PEPPER: 'p'.repeat(40), GATEWAY_ISSUER: 'https://gateway.example', SIGNING_KEYS_FILE: keysFile, ...extra }
}

async function redisWith (t: Test, args: string[] = []): Promise<TestRedis> {
  const redis = await startTestRedis({ args })
  t.teardown(async () => await redis.destroy())
  return redis
}

const warnings = (gateway: Pick<GatewayProcess, 'lines'>): string[] =>
  gateway.lines.filter((line) => line.level === 40).map((line) => String(line.msg))

/** polls until `done` says so, at most `ms` */
async function until (what: string, ms: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms
  while (!await done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('production on Redis without AOF: the start is refused, naming the settings and the override', async (t) => {
  const redis = await redisWith(t)
  const proc = spawnGateway(production(redis))
  t.teardown(() => { proc.child.kill('SIGKILL') })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.stderr(), /Redis does not keep acknowledged writes across a crash \(appendonly is no/)
  t.match(proc.stderr(), /"appendonly yes" and "appendfsync always"/)
  t.match(proc.stderr(), /ALLOW_NO_PERSISTENCE=true/)
  t.notOk(proc.lines.some((line) => typeof line.msg === 'string' && line.msg.startsWith('Server listening')), 'never listened')
})

t.test('production on Redis with appendfsync no: refused too', async (t) => {
  const redis = await redisWith(t, ['--appendonly', 'yes', '--appendfsync', 'no'])
  const proc = spawnGateway(production(redis))
  t.teardown(() => { proc.child.kill('SIGKILL') })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.stderr(), /appendfsync is no/)
  t.match(proc.stderr(), /ALLOW_NO_PERSISTENCE=true/)
})

t.test('production on Redis with appendonly yes and appendfsync always: starts and serves, without a warning about persistence', async (t) => {
  const redis = await redisWith(t, AOF_ALWAYS)
  const gateway = await startGateway(production(redis))
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  const ready = await fetch(`${gateway.url}/health/ready`)
  t.equal(ready.status, 200)
  t.equal((await ready.json() as { store: string }).store, 'redis')
  t.notOk(warnings(gateway).some((msg) => /persistence|AOF|appendfsync|acknowledged writes/.test(msg)), 'no persistence warning')
  t.equal((await gateway.stop('SIGTERM')).code, 0)
})

t.test('production with ALLOW_NO_PERSISTENCE=true on Redis without AOF: starts, and warns', async (t) => {
  const redis = await redisWith(t)
  const gateway = await startGateway(production(redis, { ALLOW_NO_PERSISTENCE: 'true' }))
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  t.equal((await fetch(`${gateway.url}/health/ready`)).status, 200)
  t.ok(warnings(gateway).some((msg) => /acknowledged writes across a crash \(appendonly is no.*starting anyway because ALLOW_NO_PERSISTENCE=true/.test(msg)), 'the warning names the risk and the override')
})

t.test('ALLOW_NO_PERSISTENCE is a boolean, false unless set', async (t) => {
  t.equal(loadConfig({}).allowNoPersistence, false)
  t.equal(loadConfig({ ALLOW_NO_PERSISTENCE: 'true' }).allowNoPersistence, true)
  t.throws(() => loadConfig({ ALLOW_NO_PERSISTENCE: 'perhaps' }), /invalid configuration: .*ALLOW_NO_PERSISTENCE/)
})

t.test('production with Redis unreachable at start: nothing is served until its persistence is checked', async (t) => {
  const redis = await redisWith(t, AOF_ALWAYS)
  await redis.stop()
  const gateway = await startGateway(production(redis))
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  t.ok(warnings(gateway).some((msg) => /Redis unreachable at start/.test(msg)))

  t.equal((await fetch(`${gateway.url}/health/live`)).status, 200, 'alive')
  const ready = await fetch(`${gateway.url}/health/ready`)
  t.equal(ready.status, 503, 'not ready')
  t.equal(ready.headers.get('retry-after'), '1')
  const api = await fetch(`${gateway.url}/.well-known/jwks.json`)
  t.equal(api.status, 503)
  t.equal(api.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  t.equal((await api.json() as { code: string }).code, 'store_unavailable')

  await redis.start()
  await until('readiness after Redis came', 20_000, async () => (await fetch(`${gateway.url}/health/ready`)).status === 200)
  t.equal((await fetch(`${gateway.url}/.well-known/jwks.json`)).status, 200, 'served once checked')
  t.ok(gateway.lines.some((line) => /Redis persistence checked/.test(String(line.msg))))
  // the catalogue could not be seeded at start: it is, once Redis answers
  const store = new RedisStores({ url: redis.url, keyPrefix: 'rg:', commandTimeoutMs: 1000, quitTimeoutMs: 200 })
  await store.connect()
  t.teardown(async () => await store.close())
  await until('the catalogue seeded', 20_000, async () => (await store.catalogue.listDocumentTypes()).length === readdirSync(new URL('../schemas/document-types/', import.meta.url)).length)
  t.ok((await store.catalogue.getDocumentType('giay-khai-sinh')) !== undefined, 'a shipped type is in the store')
})

t.test('production with Redis unreachable at start that comes back without AOF: held until AOF is on', async (t) => {
  const redis = await redisWith(t)
  await redis.stop()
  const gateway = await startGateway(production(redis))
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  await redis.start()

  await until('the unsafe settings to be found', 20_000, async () => gateway.lines.some((line) => line.level === 50 && /appendonly is no/.test(String(line.msg))))
  const held = await fetch(`${gateway.url}/.well-known/jwks.json`)
  t.equal(held.status, 503)
  t.equal((await held.json() as { code: string }).code, 'store_not_durable')
  t.equal((await fetch(`${gateway.url}/health/ready`)).status, 503)
  t.match(String(gateway.lines.find((line) => line.level === 50 && /appendonly is no/.test(String(line.msg)))?.msg), /ALLOW_NO_PERSISTENCE=true/)

  // the operator turns AOF on: the gateway serves without a restart
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.config('SET', 'appendonly', 'yes')
  await admin.config('SET', 'appendfsync', 'always')
  await until('readiness after AOF was turned on', 20_000, async () => (await fetch(`${gateway.url}/health/ready`)).status === 200)
  t.equal((await fetch(`${gateway.url}/.well-known/jwks.json`)).status, 200)
})

t.test('while held or closing, readiness answers 503 in its own shape; liveness only fails when closing', async (t) => {
  const app = await build(t)
  app.lifecycle.hold('persistence', { code: 'store_unavailable', detail: 'not checked yet' })
  const held = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(held.statusCode, 503)
  t.same(held.json(), { status: 'unavailable', store: 'memory', version: held.json().version })
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200)
  const other = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(other.statusCode, 503)
  t.equal(other.json().code, 'store_unavailable')
  app.lifecycle.release('persistence')
  app.lifecycle.closing = true
  const closing = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(closing.statusCode, 503)
  t.equal(closing.json().status, 'draining')
  t.equal(closing.headers.connection, 'close')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).json().code, 'shutting_down')
  app.lifecycle.closing = false
})
