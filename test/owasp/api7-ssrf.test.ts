import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, testConfig } from '../helper.js'
import { ConfigError } from '../../src/config.js'
import { OutboundRefusedError, checkOutboundTarget, checkOutboundUrl, outboundFetcher, outboundPolicy } from '../../src/lib/outbound.js'
import type { Resolve } from '../../src/lib/outbound.js'
import { MemoryStores } from '../../src/store/index.js'
import { ADMIN_CODE, adminEnv, assertion, makeAgency, register, requestToken, tokenFor } from '../lib/agencies.js'
import type { TestAgency } from '../lib/agencies.js'
import { sample } from '../lib/world.js'

/**
 * OWASP API7:2023 Server Side Request Forgery. The gateway fetches URLs an administrator
 * registers (an agency's jwksUri and webhookUrl) and the portal's webhook URL. It calls only
 * hosts OUTBOUND_ALLOWED_HOSTS lists, never an internal address (loopback, private, link-local,
 * the cloud metadata service) unless an address entry allows it, checks where a name resolves
 * when the URL is registered and again on every connection, and follows no redirect.
 */

interface Endpoint { url: string, hits: () => number }

async function serve (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Endpoint> {
  let hits = 0
  const server = createServer((req, res) => { hits++; handler(req, res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

const jwksOf = (agency: TestAgency) => (_req: IncomingMessage, res: ServerResponse): void => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(agency.jwks))
}

const put = async (app: FastifyInstance, token: string, code: string, keys: Record<string, unknown>, extra: Record<string, string> = {}) =>
  await app.inject({ method: 'PUT', url: `/v1/agencies/${code}`, headers: { authorization: `Bearer ${token}` }, payload: { name: `Agency ${code}`, roles: ['issuer'], issuableTypes: ['giay-khai-sinh'], ...keys, ...extra } })

t.test('registration refuses URLs that point inside or off the allow-list: 422, nothing registered, nothing fetched', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const agency = await makeAgency('000.00.15.H41')
  const jwks = await serve(t, jwksOf(agency))
  const port = new URL(jwks.url).port
  const app = await build(t, { env: { ...adminEnv(admin), OUTBOUND_ALLOWED_HOSTS: 'jwks.partner.example,*.agencies.example' } })
  const token = await tokenFor(app, admin)

  const refused = [
    `${jwks.url}/jwks.json`, // loopback, as an IP literal
    `http://localhost:${port}/jwks.json`, // loopback, by name (not listed)
    `http://[::1]:${port}/jwks.json`,
    `http://[::ffff:127.0.0.1]:${port}/jwks.json`,
    `http://2130706433:${port}/jwks.json`, // 127.0.0.1 written as one number
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://10.1.2.3/jwks.json',
    'http://192.168.1.1/jwks.json',
    'https://unlisted.example.org/jwks.json',
    'https://agencies.example/jwks.json', // *.agencies.example is for names below it
    'https://user:secret@jwks.partner.example/jwks.json'
  ]
  for (const url of refused) {
    for (const field of ['jwksUri', 'webhookUrl'] as const) {
      const res = await put(app, token, agency.code, field === 'jwksUri' ? { jwksUri: url } : { jwks: agency.jwks }, field === 'webhookUrl' ? { webhookUrl: url } : {})
      t.equal(res.statusCode, 422, `${field} ${url}`)
      t.match(String(res.headers['content-type']), /^application\/problem\+json/)
      t.equal(res.json().code, 'outbound_url_refused')
      t.equal(res.json().errors[0].pointer, `/${field}`)
    }
  }
  t.equal((await put(app, token, agency.code, { jwksUri: 'ftp://jwks.partner.example/jwks.json' })).statusCode, 400, 'other schemes fail the schema')
  // a listed name that does not resolve cannot be checked, so it is refused too
  const unresolvable = await put(app, token, agency.code, { jwksUri: 'https://keys.nowhere.agencies.example/jwks.json' })
  t.equal(unresolvable.statusCode, 422)
  t.equal(unresolvable.json().code, 'outbound_url_refused')

  t.equal((await app.inject({ method: 'GET', url: `/v1/agencies/${agency.code}`, headers: { authorization: `Bearer ${token}` } })).statusCode, 404, 'nothing was registered')
  t.equal(jwks.hits(), 0, 'nothing was fetched')
})

t.test('a listed host is accepted; its keys are fetched; internal addresses it does not list stay refused', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const agency = await makeAgency('000.00.15.H41')
  const jwks = await serve(t, jwksOf(agency))
  const port = new URL(jwks.url).port
  // the tests' servers are on loopback: allowed here by name and by address, explicitly
  const app = await build(t, { env: { ...adminEnv(admin), OUTBOUND_ALLOWED_HOSTS: 'localhost,127.0.0.1' } })
  const token = await tokenFor(app, admin)

  const ok = await put(app, token, agency.code, { jwksUri: `http://localhost:${port}/jwks.json` }, { webhookUrl: `http://localhost:${port}/hook` })
  t.equal(ok.statusCode, 201, 'a listed name on a listed address')
  t.equal((await requestToken(app, await assertion(app, agency))).statusCode, 200, 'and the keys are fetched from it')
  t.equal(jwks.hits(), 1)

  for (const url of [`http://[::1]:${port}/jwks.json`, 'http://10.0.0.1/jwks.json', 'http://169.254.169.254/', `http://127.0.0.2:${port}/jwks.json`]) {
    const res = await put(app, token, agency.code, { jwksUri: url })
    t.equal(res.statusCode, 422, `${url}: not listed`)
  }
})

t.test('where a name resolves is checked again on every connection (DNS rebinding)', async (t) => {
  const store = new MemoryStores()
  const admin = await makeAgency(ADMIN_CODE)
  const agency = await makeAgency('000.00.15.H41')
  const jwks = await serve(t, jwksOf(agency))
  const port = new URL(jwks.url).port
  // registered while the name pointed somewhere allowed…
  const before = await build(t, { store, env: { ...adminEnv(admin), OUTBOUND_ALLOWED_HOSTS: 'localhost,127.0.0.1' } })
  t.equal((await put(before, await tokenFor(before, admin), agency.code, { jwksUri: `http://localhost:${port}/jwks.json` })).statusCode, 201)
  // …and fetched where the same listed name now resolves to an address that is not allowed
  const after = await build(t, { store, env: { ...adminEnv(admin), OUTBOUND_ALLOWED_HOSTS: 'localhost' } })
  const res = await requestToken(after, await assertion(after, agency))
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'jwks_unavailable')
  t.notMatch(res.body, /127\.0\.0\.1|::1/, 'the answer does not say where the name resolved')
  t.equal(jwks.hits(), 0, 'no connection was made')
})

t.test('redirects are not followed: not for keys, not for webhooks', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const agency = await makeAgency('000.00.15.H41')
  const target = await serve(t, jwksOf(agency))
  const redirector = await serve(t, (_req, res) => { res.statusCode = 302; res.setHeader('location', `${target.url}/jwks.json`); res.end() })
  const app = await build(t, { env: adminEnv(admin) })
  const token = await tokenFor(app, admin)
  t.equal((await put(app, token, agency.code, { jwksUri: `${redirector.url}/jwks.json` })).statusCode, 201)
  const res = await requestToken(app, await assertion(app, agency))
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'jwks_unavailable')
  t.ok(redirector.hits() >= 1, 'the registered URL was asked')
  t.equal(target.hits(), 0, 'the redirect was not followed')

  // the portal's webhook answers with a redirect: the delivery fails (and is retried), nothing reaches the other host
  const hookTarget = await serve(t, (_req, res) => { res.statusCode = 204; res.end() })
  const hookRedirector = await serve(t, (_req, res) => { res.statusCode = 307; res.setHeader('location', `${hookTarget.url}/hook`); res.end() })
  const announcing = await build(t, { env: { ...adminEnv(admin), PORTAL_WEBHOOK_URL: `${hookRedirector.url}/hook`, OUTBOX_POLL_MS: '30', OUTBOX_RETRY_BASE_MS: '5000' } })
  const issuer = await makeAgency('000.00.12.H41')
  await register(announcing, await tokenFor(announcing, admin), issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  const indexed = await announcing.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${await tokenFor(announcing, issuer)}` }, payload: sample('giay-khai-sinh') })
  t.equal(indexed.statusCode, 201, 'a result indexed: the portal is to hear of it')
  let failed: Array<{ detail?: Record<string, unknown> }> = []
  for (let i = 0; i < 400 && failed.length === 0; i++) {
    failed = (await announcing.audit.search({ action: 'webhook.failed', limit: 5 })).events
    if (failed.length === 0) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.ok(failed.length > 0, 'a delivery attempt failed')
  t.equal(failed[0]?.detail?.status, 307, 'on the redirect itself')
  t.equal(hookTarget.hits(), 0, 'the redirect was not followed')
})

/** Internal IPv4 addresses (loopback, the metadata service, private), and other internal IPv6, in the ways IPv6 can carry them */
const INTERNAL_AS_IPV6 = [
  '::127.0.0.1', '::7f00:1', '::a9fe:a9fe', '::169.254.169.254', '::c0a8:101', // IPv4-compatible
  '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '::FFFF:A9FE:A9FE', '::ffff:10.0.0.1', // IPv4-mapped
  '::ffff:0:7f00:1', '::ffff:0:127.0.0.1', '::ffff:0:a9fe:a9fe', '0:0:0:0:ffff:0:a00:1', // IPv4-translated
  '64:ff9b::7f00:1', '64:ff9b::169.254.169.254', '64:ff9b::a00:1', '64:ff9b:1::a9fe:a9fe', // NAT64
  '2002:7f00:1::1', '2002:a9fe:a9fe::', // 6to4
  '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo
  '::', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'fec0::1', 'ff02::1', '100::1', '2001:db8::1', '3fff::1', '5f00::1'
]

t.test('an internal address written as IPv6 is refused in every form: when a URL is checked and when its name resolves to it', async (t) => {
  const admin = await makeAgency(ADMIN_CODE)
  const agency = await makeAgency('000.00.15.H41')
  // no allow-list: every address the rules do not call special is accepted
  const app = await build(t, { env: adminEnv(admin) })
  const token = await tokenFor(app, admin)
  // outside production loopback is allowed, so ::1 and 127.0.0.1 mapped (the same socket) are too
  const loopback = new Set(['::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1'])
  for (const address of INTERNAL_AS_IPV6.filter((a) => !loopback.has(a))) {
    const res = await put(app, token, agency.code, { jwksUri: `http://[${address}]/jwks.json` })
    t.equal(res.statusCode, 422, `registration: [${address}] refused`)
    t.equal(res.json().code, 'outbound_url_refused')
  }

  // as production sees it: no address allowed by default
  const names = new Map<string, string>()
  const resolve: Resolve = (hostname, _options, callback) => {
    const address = names.get(hostname)
    if (address === undefined) callback(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), [])
    else callback(null, [{ address, family: isIP(address) }])
  }
  const policy = outboundPolicy({ allowedHosts: undefined, allowHttp: true, defaultLoopback: false }, resolve)
  const fetchOut = outboundFetcher(policy)
  const target = await serve(t, (_req, res) => { res.end('{}') })
  const port = new URL(target.url).port
  for (const [i, address] of INTERNAL_AS_IPV6.entries()) {
    t.throws(() => checkOutboundUrl(policy, `http://[${address}]:${port}/`), OutboundRefusedError, `URL check: [${address}]`)
    // a name that resolves to it: refused when registered and on the connection itself
    const name = `keys-${i}.agency.example`
    names.set(name, address)
    await t.rejects(checkOutboundTarget(policy, `http://${name}/jwks.json`), OutboundRefusedError, `registration: ${name} → ${address}`)
    const failure = await fetchOut(`http://${name}:${port}/jwks.json`).then(() => undefined, (err: TypeError) => err)
    t.equal((failure?.cause as { code?: string } | undefined)?.code, 'outbound_refused', `connection: ${name} → ${address}`)
  }
  t.equal(target.hits(), 0, 'nothing was reached')

  // the public Internet stays reachable however it is written
  for (const address of ['8.8.8.8', '::ffff:8.8.8.8', '::ffff:0808:0808', '64:ff9b::8.8.8.8', '2606:4700:4700::1111']) {
    t.doesNotThrow(() => checkOutboundUrl(policy, `https://[${address}]/`.replace(/\[(\d+\.\d+\.\d+\.\d+)\]/, '$1')), `URL check: ${address} accepted`)
    names.set('public.example', address)
    await t.resolves(checkOutboundTarget(policy, 'https://public.example/jwks.json'), `registration: a name resolving to ${address} accepted`)
  }
})

t.test('configuration: https only in production, the portal\'s webhook checked at start, entries checked', async (t) => {
  const production = { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', SUBJECT_PEPPER: 'p'.repeat(40), GATEWAY_ISSUER: 'https://gateway.example', SIGNING_KEYS_FILE: '/nonexistent/keys.json' }
  t.throws(() => testConfig({ ...production, PORTAL_WEBHOOK_URL: 'http://portal.example/hook' }), ConfigError, 'http refused in production')
  t.throws(() => testConfig({ ...production, PORTAL_WEBHOOK_URL: 'https://169.254.169.254/hook' }), ConfigError, 'the metadata address refused')
  t.throws(() => testConfig({ ...production, PORTAL_WEBHOOK_URL: 'https://portal.example/hook', OUTBOUND_ALLOWED_HOSTS: '*.gov.vn' }), /PORTAL_WEBHOOK_URL/, 'a host off the list refused, naming the variable')
  t.equal(testConfig({ ...production, PORTAL_WEBHOOK_URL: 'https://portal.gov.vn/hook', OUTBOUND_ALLOWED_HOSTS: '*.gov.vn' }).portalWebhookUrl, 'https://portal.gov.vn/hook', 'a listed https host accepted')
  t.equal(testConfig({ ...production, PORTAL_WEBHOOK_URL: 'http://portal.gov.vn/hook', OUTBOUND_ALLOW_HTTP: 'true' }).portalWebhookUrl, 'http://portal.gov.vn/hook', 'http when explicitly allowed')
  t.throws(() => testConfig({ OUTBOUND_ALLOWED_HOSTS: 'good.example,bad host' }), /OUTBOUND_ALLOWED_HOSTS/, 'a malformed entry names the variable')
  t.throws(() => testConfig({ OUTBOUND_ALLOWED_HOSTS: '10.0.0.0/33' }), /OUTBOUND_ALLOWED_HOSTS/)
})
