import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { fetchAccessToken } from '../src/cli/agency-keys.js'
import { generateGatewayKey, writeKeyFile } from '../src/services/signing-keys.js'
import { startGateway } from './lib/gateway-process.js'
import type { GatewayProcess } from './lib/gateway-process.js'
import { freePort, startTestRedis, waitFor } from './lib/redis-server.js'
import { ADMIN_CODE, adminEnv, makeAgency } from './lib/agencies.js'

/**
 * A gateway started before its Redis (containers starting together): it starts, answers
 * liveness, holds everything else with a 503 until Redis answers, then serves — whether its
 * signing keys are kept in the store or in a file, in development or in production, with an
 * admin agency from configuration to register or without.
 */
const keysFile = join(mkdtempSync(join(tmpdir(), 'rg-keys-')), 'gateway.jwks.json')
await writeKeyFile(keysFile, [await generateGatewayKey('EdDSA')])
const admin = await makeAgency(ADMIN_CODE)
const ISSUER = 'https://gateway.test'

async function gatewayBeforeRedis (t: Test, env: Record<string, string>, withAdmin = true): Promise<void> {
  const port = await freePort()
  const gateway: GatewayProcess = await startGateway({ REDIS_URL: `redis://127.0.0.1:${port}/15`, GATEWAY_ISSUER: ISSUER, ...(withAdmin ? adminEnv(admin) : {}), ...env })
  t.teardown(async () => { await gateway.stop('SIGKILL') })

  t.equal((await fetch(`${gateway.url}/health/live`)).status, 200, 'alive without Redis')
  const ready = await fetch(`${gateway.url}/health/ready`)
  t.equal(ready.status, 503, 'not ready without Redis')
  t.equal((await ready.json() as { status: string }).status, 'unavailable')
  const held = await fetch(`${gateway.url}/.well-known/jwks.json`)
  t.equal(held.status, 503)
  t.equal((await held.json() as { code: string }).code, 'store_unavailable')

  const redis = await startTestRedis({ port, args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
  t.teardown(async () => await redis.destroy())
  await waitFor(async () => (await fetch(`${gateway.url}/health/ready`)).status === 200, 30_000, 'readiness once Redis answers')

  const jwks = await fetch(`${gateway.url}/.well-known/jwks.json`)
  t.equal(jwks.status, 200)
  t.ok((await jwks.json() as { keys: unknown[] }).keys.length > 0, 'the JWKS publishes a key')
  if (!withAdmin) return
  const token = await fetchAccessToken({ gateway: gateway.url, privateKey: admin.privateKey, agency: ADMIN_CODE })
  const agencies = await fetch(`${gateway.url}/v1/agencies`, { headers: { authorization: `Bearer ${token.access_token}` } })
  t.equal(agencies.status, 200, 'the admin agency from configuration was registered and its token is accepted')
  t.equal(gateway.child.exitCode, null, 'still running')
}

t.test('development, signing keys kept in the store (the default set-up)', async (t) => {
  await gatewayBeforeRedis(t, { NODE_ENV: 'development' })
})

t.test('development, signing keys in a file, no admin agency to register', async (t) => {
  await gatewayBeforeRedis(t, { NODE_ENV: 'development', SIGNING_KEYS_FILE: keysFile }, false)
})

t.test('production, signing keys in a file', async (t) => {
  await gatewayBeforeRedis(t, { NODE_ENV: 'production', SIGNING_KEYS_FILE: keysFile, SUBJECT_PEPPER: 'p'.repeat(40) })
})
