import { createServer } from 'node:http'
import type { Server } from 'node:http'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { JWK } from 'jose'
import { RedisStores } from '../src/store/index.js'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, register, requestToken, tokenFor } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'

/** An agency that publishes its keys at a URL: fetched with a timeout, cached, and never fatal. */
async function serve (handler: Parameters<typeof createServer>[1]): Promise<{ server: Server, url: string, hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => { hits++; handler?.(req, res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { server, url: `http://127.0.0.1:${port}/jwks.json`, hits: () => hits }
}

t.test('keys behind a jwks_uri: fetched once, cached, re-fetched for a new kid; failures refuse only that agency', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { env: adminEnv(admin) })
  const adminToken = await tokenFor(app, admin)

  const agency = await makeAgency('000.00.15.H41')
  let published = agency.jwks
  const jwksServer = await serve((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(published)) })
  t.teardown(() => jwksServer.server.close())
  await register(app, adminToken, agency, ['issuer'], { issuableTypes: ['giay-khai-sinh'], jwks: undefined, jwksUri: jwksServer.url })

  t.equal((await requestToken(app, await assertion(app, agency))).statusCode, 200)
  t.equal((await requestToken(app, await assertion(app, agency))).statusCode, 200)
  t.equal(jwksServer.hits(), 1, 'the JWKS is cached, not fetched per token')

  const unknownKid = await requestToken(app, await assertion(app, agency, { header: { kid: 'not-published' } }))
  t.equal(unknownKid.statusCode, 401)
  t.equal(unknownKid.json().code, 'kid_unknown')

  // a hanging endpoint: the fetch times out, the agency is refused, the gateway carries on
  const hanging = await serve(() => { /* never answers */ })
  t.teardown(() => { hanging.server.closeAllConnections(); hanging.server.close() })
  const slow = await makeAgency('000.00.16.H41')
  await register(app, adminToken, slow, ['issuer'], { issuableTypes: ['giay-khai-sinh'], jwks: undefined, jwksUri: hanging.url })
  const refused = await requestToken(app, await assertion(app, slow))
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'jwks_unavailable')
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'the gateway is unharmed')
  t.equal((await requestToken(app, await assertion(app, agency))).statusCode, 200, 'other agencies are unaffected')

  // an endpoint that is down
  const down = await makeAgency('000.00.17.H41')
  await register(app, adminToken, down, ['issuer'], { issuableTypes: ['giay-khai-sinh'], jwks: undefined, jwksUri: 'http://127.0.0.1:9/jwks.json' })
  t.equal((await requestToken(app, await assertion(app, down))).json().code, 'jwks_unavailable')
  published = { keys: [] }
})

/**
 * Two gateway processes on one Redis, and an agency whose keys are published at a URL the test
 * controls: `published` is what it serves, `down` makes it answer 500.
 */
async function twoProcesses (t: Test): Promise<{ a: FastifyInstance, b: FastifyInstance, adminToken: string, agency: TestAgency, spare: TestAgency, endpoint: { published: { keys: JWK[] }, down: boolean } }> {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const storeA = await testRedisStore(t, redis)
  // same key prefix, another connection: another process's caches
  const storeB = new RedisStores({ url: redis.url, keyPrefix: storeA.key('x').split('{')[0] as string, commandTimeoutMs: 1000, quitTimeoutMs: 500 })
  await storeB.connect()
  t.teardown(async () => await storeB.close())
  const admin = await makeAgency(ADMIN_CODE)
  const a = await build(t, { store: storeA, env: adminEnv(admin) })
  const b = await build(t, { store: storeB, env: adminEnv(admin) })
  const adminToken = await tokenFor(a, admin)

  const agency = await makeAgency('000.00.18.H41')
  // the agency's second key, published beside the first
  const spare = { ...await makeAgency('000.00.18.H41'), code: agency.code }
  const endpoint = { published: { keys: [...agency.jwks.keys, ...spare.jwks.keys] }, down: false }
  const server = await serve((_req, res) => {
    if (endpoint.down) { res.statusCode = 500; res.end(); return }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(endpoint.published))
  })
  t.teardown(() => server.server.close())
  await register(a, adminToken, agency, ['requester', 'admin'], { jwks: undefined, jwksUri: server.url })
  return { a, b, adminToken, agency, spare, endpoint }
}

const agencies = async (app: FastifyInstance, token: string) => await app.inject({ method: 'GET', url: '/v1/agencies', headers: { authorization: `Bearer ${token}` } })

t.test('a key removed from a jwks_uri and refreshed through one process is refused by every process at the next request', async (t) => {
  const { a, b, adminToken, agency, spare, endpoint } = await twoProcesses(t)
  const token = await tokenFor(b, agency)
  t.equal((await agencies(b, token)).statusCode, 200, 'B has fetched and cached the JWKS')

  endpoint.published = spare.jwks
  const refreshed = await a.inject({ method: 'POST', url: `/v1/agencies/${agency.code}/keys/refresh`, headers: { authorization: `Bearer ${adminToken}` } })
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.json().code, agency.code)

  const old = await agencies(b, token)
  t.equal(old.statusCode, 401, 'the token obtained with the removed key is refused on B')
  t.equal(old.json().code, 'key_removed')
  const again = await requestToken(b, await assertion(b, agency))
  t.equal(again.statusCode, 401, 'no new token from B for an assertion signed with the removed key')
  t.equal(again.json().code, 'kid_unknown')
  t.equal((await requestToken(b, await assertion(b, spare))).statusCode, 200, 'the key still published works')

  const trail = (await a.audit.search({ limit: 100 })).events.filter((event) => event.action === 'agency.keys_refreshed')
  t.equal(trail.length, 1, 'the refresh is on record')
  t.equal(trail[0]?.actor, ADMIN_CODE)

  const missing = await a.inject({ method: 'POST', url: '/v1/agencies/000.00.99.H41/keys/refresh', headers: { authorization: `Bearer ${adminToken}` } })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'agency_not_found')
  t.equal((await a.inject({ method: 'POST', url: `/v1/agencies/${agency.code}/keys/refresh`, headers: { authorization: `Bearer ${await tokenFor(b, spare, 'documents:reuse')}` } })).statusCode, 403, 'admins only')
})

t.test('an admin change of a jwks_uri agency makes every process read its keys again at the next request', async (t) => {
  const { a, b, adminToken, agency, spare, endpoint } = await twoProcesses(t)
  const token = await tokenFor(b, agency)
  t.equal((await agencies(b, token)).statusCode, 200)
  endpoint.published = spare.jwks
  await register(a, adminToken, agency, ['requester', 'admin'], { jwks: undefined, jwksUri: (await a.agencies.get(agency.code))?.jwksUri })
  const old = await agencies(b, token)
  t.equal(old.statusCode, 401)
  t.equal(old.json().code, 'key_removed')
})

t.test('a process that never fetched the jwks_uri refuses a token whose key it cannot confirm', async (t) => {
  const { a, b, agency, endpoint } = await twoProcesses(t)
  const token = await tokenFor(a, agency)
  t.equal((await agencies(a, token)).statusCode, 200, 'A fetched the JWKS and issued the token')

  endpoint.down = true
  const unconfirmed = await agencies(b, token)
  t.equal(unconfirmed.statusCode, 401, 'B cannot fetch the JWKS: it refuses instead of assuming the key is still there')
  t.equal(unconfirmed.json().code, 'jwks_unavailable')

  endpoint.down = false
  endpoint.published = { keys: [] }
  const removed = await agencies(b, token)
  t.equal(removed.statusCode, 401, 'B fetches the JWKS and finds the key gone')
  t.equal(removed.json().code, 'key_removed')
})
