import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { coverageEnv } from './lib/child-coverage.js'
import { startGateway } from './lib/gateway-process.js'
import { freePort, startTestRedis } from './lib/redis-server.js'
import { RedisStores } from '../src/store/index.js'

/**
 * The command-line tool as people use it: in a shell, against a running gateway process.
 */
const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))

async function cli (args: string[], env: Record<string, string> = {}): Promise<{ stdout: string, stderr: string }> {
  return await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...coverageEnv(), ...env },
    timeout: 60_000
  })
}

async function cliFails (args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    await cli(args, env)
  } catch (err) {
    return (err as { stderr: string }).stderr
  }
  throw new Error(`expected reuse-gateway ${args.join(' ')} to fail`)
}

t.test('generate agency keys, register the admin from them, get a token, call the API', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-cli-'))
  // RFC 9864's fully-specified name, as current OAuth clients sign
  const { stdout } = await cli(['keys', 'generate', '--agency', '000.00.00.A01', '--alg', 'Ed25519', '--out', dir])
  const privatePath = join(dir, '000.00.00.A01.private.jwk.json')
  const publicPath = join(dir, '000.00.00.A01.jwks.json')
  t.same(stdout.trim().split('\n'), [privatePath, publicPath])
  const privateKey = JSON.parse(readFileSync(privatePath, 'utf8'))
  const jwks = JSON.parse(readFileSync(publicPath, 'utf8'))
  t.type(privateKey.d, 'string', 'the private file has the private part')
  t.equal(privateKey.agency, '000.00.00.A01')
  t.notOk('d' in jwks.keys[0], 'the public file does not')
  t.equal(jwks.keys[0].kid, privateKey.kid)
  t.match(jwks.keys[0], { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' }, 'an Ed25519 key published under its RFC 9864 name')

  const gateway = await startGateway({ ADMIN_AGENCY_CODE: '000.00.00.A01', ADMIN_AGENCY_JWKS: publicPath })
  // stopped as an operator would: a killed gateway leaves no coverage of its own
  t.teardown(async () => { await gateway.stop() })

  const token = (await cli(['token', '--key', privatePath, '--gateway', gateway.url])).stdout.trim()
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  const agencies = await fetch(`${gateway.url}/v1/agencies`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(agencies.status, 200)
  t.same((await agencies.json() as { agencies: Array<{ code: string }> }).agencies.map((a) => a.code), ['000.00.00.A01'])

  const metadata = await (await fetch(`${gateway.url}/.well-known/oauth-authorization-server`)).json() as { issuer: string, token_endpoint: string }
  const assertion = (await cli(['keys', 'assertion', '--key', privatePath, '--audience', metadata.issuer])).stdout.trim()
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion })
  const byHand = await fetch(metadata.token_endpoint.replace(metadata.issuer, gateway.url), { method: 'POST', body: form })
  t.equal(byHand.status, 200, 'a hand-made token request with a CLI-signed assertion works')
  const replay = await fetch(`${gateway.url}/v1/oauth/token`, { method: 'POST', body: form })
  t.equal(replay.status, 401)

  const refused = await cliFails(['token', '--key', privatePath, '--gateway', gateway.url, '--scope', 'documents:write'])
  t.match(refused, /invalid_scope/)
})

t.test('first run: the printed commands get a token and make a first call', async (t) => {
  const gateway = await startGateway({})
  t.teardown(async () => { await gateway.stop() })
  for (let i = 0; i < 1200 && !gateway.stderr().includes('API reference'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const printed = gateway.stderr()
  const command = /ADMIN=\$\(npx reuse-gateway (token --key \S+ --gateway \S+)\)/.exec(printed)
  t.ok(command, 'the token command is printed')
  const args = (command?.[1] ?? '').split(' ')
  const keyPath = args[2] as string
  t.ok(existsSync(join(root, keyPath)) || existsSync(keyPath), 'the key file it names exists')
  const token = (await cli(args)).stdout.trim()
  const call = /curl -s -w '\\n' -H "Authorization: Bearer \$ADMIN" (\S+)/.exec(printed)
  const res = await fetch(call?.[1] as string, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200)
  const codes = (await res.json() as { agencies: Array<{ code: string, roles: string[] }> }).agencies
  t.same(codes.map((a) => a.roles[0]).sort(), ['admin', 'auditor', 'issuer', 'issuer', 'portal', 'requester', 'requester'])
})

t.test('signing-keys: generate a file, rotate it; rotate the keys kept in Redis', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-signing-'))
  const file = join(dir, 'gateway.jwks.json')
  await cli(['signing-keys', 'generate', '--out', file])
  const first = JSON.parse(readFileSync(file, 'utf8')).keys
  t.equal(first.length, 1)
  t.equal(first[0].alg, 'EdDSA')
  const { stdout } = await cli(['signing-keys', 'rotate', '--file', file, '--alg', 'ES256'])
  const after = JSON.parse(readFileSync(file, 'utf8')).keys
  t.equal(after.length, 2)
  t.equal(after[0].alg, 'ES256')
  t.ok(after[1].retired_at, 'the previous key is kept, marked retired')
  t.match(stdout, after[0].kid)
  const retiredLine = new RegExp(`retired key ${after[1].kid}: access tokens it signed are accepted until (\\S+); it verifies attestations, receipts and checkpoints until (\\S+)`).exec(stdout)
  t.ok(retiredLine, 'the rotation says how long the old key still counts, and for what')
  t.ok(Date.parse(retiredLine?.[1] ?? '') < Date.now() + 3_600_000, 'access tokens: minutes, not the retention')

  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const gateway = await startGateway({ REDIS_URL: redis.url })
  t.teardown(async () => { await gateway.stop() })
  const before = await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  const rotated = await cli(['signing-keys', 'rotate'], { REDIS_URL: redis.url })
  const newKid = /new active signing key: (\S+)/.exec(rotated.stdout)?.[1]
  t.ok(newKid)
  t.not(newKid, before.keys[0]?.kid)
  t.match(await cliFails(['signing-keys', 'rotate']), /no store to rotate in/)
})

t.test('agencies refresh-keys: every gateway re-reads the agency\'s keys at its next request', async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const store = new RedisStores({ url: redis.url, keyPrefix: 'rg:', commandTimeoutMs: 1000, quitTimeoutMs: 500 })
  await store.connect()
  t.teardown(async () => await store.close())
  const code = '000.00.18.H41'
  await store.agencies.putAgency({ code, name: 'Sở Tư pháp', roles: ['issuer'], jwksUri: 'https://keys.example/jwks.json', status: 'active', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() })
  const { stdout } = await cli(['agencies', 'refresh-keys', code], { REDIS_URL: redis.url })
  t.match(stdout, `agency ${code}: keys generation 1`)
  t.equal(await store.agencies.agencyKeysGeneration(code), 1, 'the generation every gateway compares has moved on')
  t.match(await cliFails(['agencies', 'refresh-keys', '000.00.99.H41'], { REDIS_URL: redis.url }), /no agency 000.00.99.H41 is registered/)
  t.match(await cliFails(['agencies', 'refresh-keys', 'nope'], { REDIS_URL: redis.url }), /not an agency code/)
})

t.test('a gateway that cannot be reached: the URL, the cause and what to check, in one line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-cli-'))
  await cli(['keys', 'generate', '--agency', '000.00.00.A01', '--out', dir])
  const key = join(dir, '000.00.00.A01.private.jwk.json')
  const port = await freePort()
  const refused = await cliFails(['token', '--key', key, '--gateway', `http://127.0.0.1:${port}`])
  t.equal(refused, `reuse-gateway: cannot reach http://127.0.0.1:${port}: connection refused (ECONNREFUSED) — is the gateway running there? Check --gateway (default http://127.0.0.1:3000)\n`)
  writeFileSync(join(dir, 'one.ndjson'), '{}\n')
  const unknown = await cliFails(['documents', 'import', join(dir, 'one.ndjson'), '--quiet', '--key', key, '--gateway', 'http://no-such-host.invalid:3000'])
  t.match(unknown, /^reuse-gateway: cannot reach http:\/\/no-such-host\.invalid:3000: DNS (name not found|lookup failed)[^\n]* — is the gateway running there\? Check --gateway/)
  t.notMatch(unknown, /fetch failed/)
  const exported = await cliFails(['audit', 'export', '--key', key, '--gateway', `http://127.0.0.1:${port}`, '--out', join(dir, 'audit.ndjson')])
  t.match(exported, /cannot reach http:\/\/127\.0\.0\.1:\d+: connection refused/)
  t.match(await cliFails(['token', '--key', key, '--gateway', '127.0.0.1:3000']), /--gateway must be an http\(s\) URL, e.g\. http:\/\/127\.0\.0\.1:3000/)
  // https:// to a server speaking plain HTTP
  const plain = createServer((_request, response) => { response.end('{}') })
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { plain.close() })
  const tls = await cliFails(['token', '--key', key, '--gateway', `https://127.0.0.1:${(plain.address() as AddressInfo).port}`])
  t.match(tls, /cannot reach https:\/\/127\.0\.0\.1:\d+: TLS error/)
})
