// OWASP API Security Top 10 (2023) — API10: Unsafe Consumption of APIs.
// What the gateway takes from others and must not trust: an agency's remote JWKS (garbage,
// HTML, a huge body, no answer, the wrong shape, a redirect, private or symmetric keys), the
// answers of webhook receivers (a huge body, an error page, bytes that are not HTTP, a redirect,
// no answer), and tokens other parties sign (consent tokens, attestations sent back for
// verification). Each is bounded in time and size, refused with a 4xx where a caller waits on
// it, recorded without echoing what came back, and never a 5xx or a crash.
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { exportJWK, generateKeyPair } from 'jose'
import { captureLogs } from '../helper.js'
import { assertion, makeAgency, register, requestToken } from '../lib/agencies.js'
import { CODES, bearer, buildWorld, injectBounded, reuseQuery, sample } from '../lib/world.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** A loopback server whose answer per path is chosen by the test; it is torn down at the end. */
async function serve (t: Test, handlers: Record<string, Handler>): Promise<{ url: (path: string) => string, hits: Record<string, number> }> {
  const hits: Record<string, number> = {}
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string
    hits[path] = (hits[path] ?? 0) + 1
    const handler = handlers[path]
    if (handler) handler(req, res)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const port = (server.address() as AddressInfo).port
  return { url: (path) => `http://127.0.0.1:${port}${path}`, hits }
}

const json = (body: string, type = 'application/json'): Handler => (_req, res) => { res.writeHead(200, { 'content-type': type }).end(body) }
const notHttp: Handler = (req) => { req.socket.end('SSH-2.0-OpenSSH_9.6\r\n\u0000\u0001garbage\r\n\r\n') }

// the gateway fetches loopback addresses only when configured to (OUTBOUND_ALLOWED_HOSTS)
const ENV = { OUTBOUND_ALLOWED_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: 'true' }

t.test('a remote JWKS that answers garbage, too much, too late or the wrong keys: that agency is refused, bounded, and nothing else is affected', async (t) => {
  const logs = captureLogs()
  const w = await buildWorld(t, { env: ENV, logs })
  const agency = await makeAgency('000.00.61.H41')
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const privateJwk = { ...await exportJWK(privateKey), kid: agency.privateKey.kid, alg: 'ES256' }
  const huge = JSON.stringify({ keys: [agency.jwks.keys[0]], padding: 'x'.repeat(8 * 1024 * 1024) })
  const remote = await serve(t, {
    '/garbage': json('{"keys": [ {"kty": "EC", "crv": ', 'application/json'),
    '/html': json('<html><body>502 Bad Gateway</body></html>', 'text/html'),
    '/huge': json(huge),
    '/hang': () => { /* never answers */ },
    '/keys-not-a-list': json('{"keys": "all of them"}'),
    '/empty': json(''),
    '/redirect': (_req, res) => { res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end() },
    '/private': json(JSON.stringify({ keys: [privateJwk] })),
    '/symmetric': json(JSON.stringify({ keys: [{ kty: 'oct', k: Buffer.from('shared-secret').toString('base64url'), kid: agency.privateKey.kid, alg: 'HS256' }] })),
    '/not-http': notHttp
  })
  const codes: Record<string, string> = {}
  for (const path of ['/garbage', '/html', '/huge', '/hang', '/keys-not-a-list', '/empty', '/redirect', '/private', '/symmetric', '/not-http']) {
    const code = `000.00.${String(62 + Object.keys(codes).length)}.H41`
    const holder = { ...agency, code }
    await register(w.app, w.tokens.admin, holder, ['requester'], { jwks: undefined, jwksUri: remote.url(path) })
    const res = await injectBounded(w.app, {
      method: 'POST',
      url: '/v1/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(w.app, holder) }).toString()
    }, 8000)
    codes[path] = `${res.statusCode} ${String(res.json().code)}`
    t.equal(res.statusCode, 401, `${path}: refused (${res.json().code})`)
    t.ok(['jwks_unavailable', 'kid_unknown', 'alg_mismatch', 'signature_invalid', 'assertion_invalid'].includes(res.json().code), `${path}: ${res.json().code}`)
    t.notMatch(res.body, /padding|xxxxxxxx|Bad Gateway|OpenSSH|shared-secret|meta-data/, `${path}: nothing of what came back is echoed`)
  }
  t.comment(JSON.stringify(codes))
  t.notOk(remote.hits['/redirect'] !== 1, 'the redirect was not followed to the metadata service (one request only)')
  t.equal(codes['/symmetric'], '401 kid_unknown', 'a symmetric key is never a key to verify an agency with')
  t.equal(codes['/private'], '401 jwks_unavailable', 'a JWKS that publishes a private key is not used')

  // the gateway is unharmed: health, and an agency with inline keys gets its token
  t.equal((await w.app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  t.equal((await requestToken(w.app, await assertion(w.app, w.agencies.issuer))).statusCode, 200)
  t.same(logs.lines.filter((line) => line.level >= 50).map((line) => line.msg), [], 'nothing logged as a failure of the gateway')
})

t.test('webhook receivers that answer garbage: deliveries are bounded, recorded without their answers, and the callers never notice', async (t) => {
  const logs = captureLogs()
  const answers: Handler[] = [
    json(JSON.stringify({ ok: true, padding: 'y'.repeat(4 * 1024 * 1024) })),
    (_req, res) => { res.writeHead(500, { 'content-type': 'text/html' }).end('<html><pre>Traceback (most recent call last): secret=hunter2</pre></html>') },
    notHttp,
    (_req, res) => { res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end() },
    () => { /* never answers */ },
    (_req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': '999999' }).end('{"truncated":') }
  ]
  let next = 0
  const receiver = await serve(t, { '/portal-hook': (req, res) => { req.resume(); (answers[next++ % answers.length] as Handler)(req, res) } })
  const w = await buildWorld(t, {
    logs,
    env: { ...ENV, OUTBOX_WORKER: 'true', PORTAL_WEBHOOK_URL: receiver.url('/portal-hook'), OUTBOX_POLL_MS: '50', OUTBOX_MAX_ATTEMPTS: '1', WEBHOOK_TIMEOUT_MS: '500', OUTBOX_RETRY_BASE_MS: '10', OUTBOX_RETRY_MAX_MS: '10' }
  })
  // more announcements: results indexed, amended and revoked, each answered by the next garbage
  for (let i = 0; i < 4; i++) {
    const res = await injectBounded(w.app, { method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: { ...sample('giay-khai-sinh'), documentNumber: `UC-${i}/2026/TP-KS` } })
    t.equal(res.statusCode, 201, 'the issuer is answered whatever the receiver does')
  }
  const revoke = await injectBounded(w.app, { method: 'POST', url: `/v1/documents/${w.docs.land}/revoke`, headers: bearer(w.tokens.issuer), payload: { reason: 'Cấp sai' } })
  t.equal(revoke.statusCode, 200)

  const deadline = Date.now() + 30_000
  let deliveries: Array<{ state: string, lastError?: string }> = []
  while (Date.now() < deadline) {
    deliveries = (await w.app.inject({ method: 'GET', url: '/v1/webhooks/deliveries?limit=1000', headers: bearer(w.tokens.portal) })).json().deliveries
    if (deliveries.length >= 9 && deliveries.every((d) => d.state !== 'queued')) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(deliveries.length >= 9, `${deliveries.length} announcements`)
  t.ok(deliveries.every((d) => d.state !== 'queued'), 'each one settled within the bound: delivered or dead, none stuck')
  t.ok(deliveries.some((d) => d.state === 'dead'), 'the failures are dead letters, to replay once the receiver is fixed')
  for (const d of deliveries) {
    if (!d.lastError) continue
    t.ok(d.lastError.length <= 300, `the recorded error is short: ${d.lastError.slice(0, 80)}`)
    t.notMatch(d.lastError, /hunter2|Traceback|yyyyyyyy|OpenSSH|meta-data/, 'and does not carry what the receiver answered')
  }
  t.ok(receiver.hits['/portal-hook'] !== undefined && receiver.hits['/portal-hook'] >= 9)
  t.equal((await w.app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'the gateway is unharmed')
  t.same(logs.lines.filter((line) => line.level >= 50).map((line) => line.msg), [], 'nothing logged as a failure of the gateway')
})

t.test('tokens signed by others are checked, never trusted: garbage consent tokens and attestations are 4xx or "not valid"', async (t) => {
  const w = await buildWorld(t)
  const garbage = ['', 'a', 'a.b.c', `${'e30'}.${'e30'}.`, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.', `${Buffer.from('{"alg":"ES256","kid":"x","crit":["exp"]}').toString('base64url')}.e30.AAAA`, 'x'.repeat(20_000)]
  for (const token of garbage) {
    const res = await injectBounded(w.app, { method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, ['phieu-ly-lich-tu-phap'], { consentToken: token }) })
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `consent ${JSON.stringify(token.slice(0, 20))}: ${res.statusCode} ${res.json().code}`)
    const verify = await injectBounded(w.app, { method: 'POST', url: '/v1/attestations/verify', headers: bearer(w.tokens.otherRequester), payload: { attestation: token } })
    t.ok(verify.statusCode === 400 || (verify.statusCode === 200 && verify.json().valid === false), `attestation ${JSON.stringify(token.slice(0, 20))}: ${verify.statusCode}`)
  }
  // a consent token signed by an agency that is not the portal, naming everything right
  const { SignJWT, importJWK } = await import('jose')
  const signer = w.agencies.issuer.privateKey
  const now = Math.floor(Date.now() / 1000)
  const forged = await new SignJWT({ sub: w.citizen, azp: CODES.requester, document_types: ['phieu-ly-lich-tu-phap'], procedure_code: '1.001193', dossier_code: '000.20.41.H41-260301-0001', jti: 'forged-consent-0001', iat: now, exp: now + 600 })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid }).setIssuer(CODES.issuer).sign(await importJWK(signer, signer.alg))
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, ['phieu-ly-lich-tu-phap'], { consentToken: forged }) })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'consent_issuer_not_portal')
})
