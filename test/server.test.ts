import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { spawnGateway, startGateway } from './lib/gateway-process.js'
import { startTestRedis } from './lib/redis-server.js'
import { VERSION } from '../src/lib/version.js'

t.test('a bad configuration value stops the process, naming the variable', async (t) => {
  const proc = spawnGateway({ PORT: 'not-a-port' })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.stderr(), /invalid configuration: .*PORT/)
})

t.test('production refuses to run on the embedded store', async (t) => {
  const proc = spawnGateway({ NODE_ENV: 'production', SUBJECT_PEPPER: 'p'.repeat(40), GATEWAY_ISSUER: 'https://g.example', SIGNING_KEYS_FILE: '/nonexistent' })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.stderr(), /REDIS_URL or REDIS_CLUSTER_NODES is required/)
})

t.test('on the embedded store it serves, says so loudly, and shuts down gracefully on SIGTERM', async (t) => {
  const gateway = await startGateway({ SHUTDOWN_DRAIN_DELAY_MS: '1500' })
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  t.match(gateway.stderr(), /EMBEDDED IN-MEMORY STORE/)
  t.ok(gateway.lines.some((line) => line.level === 40 && /EMBEDDED IN-MEMORY STORE/.test(String(line.msg))))

  const ready = await fetch(`${gateway.url}/health/ready`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready', store: 'memory', version: VERSION })
  t.equal((await fetch(`${gateway.url}/docs/`)).status, 200)

  gateway.child.kill('SIGTERM')
  // readiness fails first, while requests are still served
  let draining: Response | undefined
  for (let i = 0; i < 40 && draining?.status !== 503; i++) {
    draining = await fetch(`${gateway.url}/health/ready`)
    if (draining.status !== 503) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.equal(draining?.status, 503)
  t.equal((await draining?.json() as { status: string }).status, 'draining')
  t.equal((await fetch(`${gateway.url}/health/live`)).status, 200, 'still serving while draining')

  const { code } = await gateway.exited
  t.equal(code, 0, 'exit 0')
  t.ok(gateway.lines.some((line) => line.msg === 'shut down cleanly'))
})

t.test('with REDIS_URL it reports the redis store, warns that AOF is off, and closes Redis on exit', async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const gateway = await startGateway({ REDIS_URL: redis.url })
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  const ready = await fetch(`${gateway.url}/health/ready`)
  t.equal(ready.status, 200)
  t.equal((await ready.json() as { store: string }).store, 'redis')
  t.ok(gateway.lines.some((line) => line.level === 40 && /AOF persistence off/.test(String(line.msg))))
  t.notMatch(gateway.stderr(), /EMBEDDED/)
  const { code } = await gateway.stop('SIGINT')
  t.equal(code, 0)
})

t.test('a port already in use: one line on standard error naming it and what to set, exit 1', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const port = (taken.address() as AddressInfo).port
  const proc = spawnGateway({ PORT: String(port), HOST: '127.0.0.1' })
  t.teardown(() => { proc.child.kill('SIGKILL') })
  const { code } = await proc.exited
  t.equal(code, 1)
  const lines = proc.stderr().split('\n').filter((line) => line.startsWith('reuse-gateway:'))
  t.same(lines, [`reuse-gateway: port ${port} on 127.0.0.1 is in use — set PORT (or HOST) to another`])
  t.notMatch(proc.stderr(), /\n\s+at /, 'no stack trace')
  t.same(proc.lines.filter((line) => line.level === 60 && JSON.stringify(line).includes('"stack"')), [], 'no stack in the log either')
})

t.test('a signing key file that is missing or holds no usable key: one line saying what to do, exit 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = join(dir, 'bad.jwks.json')
  writeFileSync(bad, '{"keys":[{"kty":"OKP"}]}')
  for (const [file, said] of [
    [join(dir, 'missing.jwks.json'), /^reuse-gateway: SIGNING_KEYS_FILE \S+missing\.jwks\.json cannot be read \(ENOENT\): create it with `reuse-gateway signing-keys generate --out /],
    [bad, /^reuse-gateway: \S+bad\.jwks\.json: key 0 needs kid, alg/]
  ] as const) {
    const proc = spawnGateway({ PORT: '0', HOST: '127.0.0.1', SIGNING_KEYS_FILE: file })
    t.teardown(() => { proc.child.kill('SIGKILL') })
    const { code } = await proc.exited
    t.equal(code, 1)
    const lines = proc.stderr().split('\n').filter((line) => line.startsWith('reuse-gateway:'))
    t.equal(lines.length, 1, 'one line')
    t.match(lines[0], said)
    t.notMatch(proc.stderr(), /\n\s+at /, 'no stack trace')
  }
})
