import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fetchAccessToken, signClientAssertion } from '../src/cli/agency-keys.js'
import { startGateway } from './lib/gateway-process.js'
import { startTestRedis } from './lib/redis-server.js'
import { ADMIN_CODE, makeAgency } from './lib/agencies.js'

/** Two real gateway processes behind one Redis: what one accepts or changes, the other honours. */
t.test('replay and suspension hold across two gateway processes', async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const admin = await makeAgency(ADMIN_CODE)
  const dir = mkdtempSync(join(tmpdir(), 'rg-two-'))
  writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
  const env = { REDIS_URL: redis.url, ADMIN_AGENCY_CODE: ADMIN_CODE, ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json'), GATEWAY_ISSUER: 'https://gateway.test' }
  const a = await startGateway(env)
  t.teardown(async () => { await a.stop('SIGKILL') })
  const b = await startGateway(env)
  t.teardown(async () => { await b.stop('SIGKILL') })

  const adminToken = (await fetchAccessToken({ gateway: a.url, privateKey: admin.privateKey, agency: ADMIN_CODE })).access_token
  const requester = await makeAgency('000.20.41.H41')
  const put = async (status: string) => await fetch(`${a.url}/v1/agencies/${requester.code}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'UBND phường Quang Trung', roles: ['requester', 'admin'], jwks: requester.jwks, status })
  })
  t.equal((await put('active')).status, 201)

  const assertion = await signClientAssertion({ privateKey: requester.privateKey, agency: requester.code, audience: 'https://gateway.test' })
  const form = () => new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion })
  const first = await fetch(`${a.url}/v1/oauth/token`, { method: 'POST', body: form() })
  t.equal(first.status, 200)
  const replayed = await fetch(`${b.url}/v1/oauth/token`, { method: 'POST', body: form() })
  t.equal(replayed.status, 401)
  t.equal((await replayed.json() as { code: string }).code, 'assertion_replayed')

  const token = (await fetchAccessToken({ gateway: b.url, privateKey: requester.privateKey, agency: requester.code })).access_token
  const call = async (url: string) => await fetch(`${url}/v1/agencies`, { headers: { authorization: `Bearer ${token}` } })
  t.equal((await call(b.url)).status, 200, 'warm B\'s token cache')
  t.equal((await call(a.url)).status, 200)
  t.equal((await put('suspended')).status, 200, 'suspended through A')
  const onB = await call(b.url)
  t.equal(onB.status, 401, 'B refuses at the next request')
  t.equal((await onB.json() as { code: string }).code, 'agency_suspended')
})
