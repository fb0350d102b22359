import { createServer } from 'node:http'
import type { Server } from 'node:http'
import t from 'tap'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, register, requestToken, tokenFor } from './lib/agencies.js'

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
