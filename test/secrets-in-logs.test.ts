import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { SignJWT, importJWK } from 'jose'
import { fetchAccessToken, signClientAssertion } from '../src/cli/agency-keys.js'
import { generateGatewayKey, writeKeyFile } from '../src/services/signing-keys.js'
import type { StoredKey } from '../src/services/signing-keys.js'
import { captureLogs } from './helper.js'
import { ADMIN_CODE, makeAgency } from './lib/agencies.js'
import { spawnGateway, startGateway } from './lib/gateway-process.js'
import { DOSSIER, PDF, PROCEDURE, bearer, buildWorld, consentToken, reuseQuery, sample } from './lib/world.js'

/**
 * Secrets never reach a log line, at the most talkative level (trace): not the subject pepper,
 * not the gateway's private signing key, not the encryption keys, not a bearer token, a client
 * assertion, a consent token or a download link's token, and no subject identifier in clear —
 * in the gateway's log and its audit log, in process and as a real process (its start, its
 * configuration errors and its shutdown included).
 */

interface Secrets {
  pepper: string
  signingKey: StoredKey
  signingKeysFile: string
  encryptionKey: Buffer
  env: Record<string, string>
}

async function secrets (): Promise<Secrets> {
  const pepper = `pepper-${randomBytes(24).toString('hex')}`
  const signingKey = await generateGatewayKey('ES256')
  const signingKeysFile = join(mkdtempSync(join(tmpdir(), 'rg-secrets-')), 'signing-keys.json')
  await writeKeyFile(signingKeysFile, [signingKey])
  const encryptionKey = randomBytes(32)
  return {
    pepper,
    signingKey,
    signingKeysFile,
    encryptionKey,
    env: { LOG_LEVEL: 'trace', SUBJECT_PEPPER: pepper, SIGNING_KEYS_FILE: signingKeysFile, ENCRYPTION_KEYS: `k1:${encryptionKey.toString('base64')}` }
  }
}

/** every form a secret could be written in */
function forms (s: Secrets, others: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {
    'subject pepper': s.pepper,
    'signing key (d)': s.signingKey.d as string,
    'encryption key (base64)': s.encryptionKey.toString('base64'),
    'encryption key (base64url)': s.encryptionKey.toString('base64url'),
    'encryption key (hex)': s.encryptionKey.toString('hex')
  }
  for (const [name, value] of Object.entries(others)) out[name] = value
  return out
}

function assertClean (t: Test, where: string, text: string, secretForms: Record<string, string>): void {
  for (const [name, value] of Object.entries(secretForms)) {
    if (!text.includes(value)) continue
    const at = text.indexOf(value)
    t.fail(`${where} holds the ${name}: …${text.slice(Math.max(0, at - 120), at)}[HERE]`)
  }
  t.pass(`${where}: none of ${Object.keys(secretForms).length} secrets`)
}

t.test('in process, at trace level: tokens, indexing, reuse, downloads, the portal, audit and refusals log no secret', async (t) => {
  const s = await secrets()
  const logs = captureLogs()
  const w = await buildWorld(t, { logs, env: s.env })
  const app = w.app
  const others: Record<string, string> = { citizen: w.citizen, 'other citizen': w.otherCitizen }
  for (const [name, token] of Object.entries(w.tokens)) others[`${name}'s access token`] = token
  const as = (token: string, payload?: unknown) => ({ headers: bearer(token), ...(payload === undefined ? {} : { payload: payload as object }) })

  // indexing: one by one and a file (the world), in a batch, amended (below)
  const batch = sample('giay-khai-sinh', (d) => d.subject.id !== w.citizen && d.subject.id !== w.otherCitizen)
  others['batch subject'] = batch.subject.id
  t.equal((await app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/x-ndjson' }, payload: JSON.stringify(batch) + '\n' })).statusCode, 200)

  // reuse: full, status only, a type that needs consent (without, then with a consent token); the download
  const full = await app.inject({ method: 'POST', url: '/v1/reuse-queries', ...as(w.tokens.requester, reuseQuery(w, ['giay-khai-sinh'], { reason: 'hồ sơ vay vốn' })) })
  t.equal(full.statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/v1/reuse-queries', ...as(w.tokens.requester, reuseQuery(w, ['giay-khai-sinh'], { mode: 'status' })) })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/v1/reuse-queries', ...as(w.tokens.requester, reuseQuery(w, ['phieu-ly-lich-tu-phap'])) })).statusCode, 403)
  const consent = await consentToken(w)
  others['consent token'] = consent
  t.equal((await app.inject({ method: 'POST', url: '/v1/reuse-queries', ...as(w.tokens.requester, reuseQuery(w, ['phieu-ly-lich-tu-phap'], { consentToken: consent })) })).statusCode, 200)
  const released = full.json().results[0].documents.find((d: { download?: string }) => d.download)
  const downloadToken = released.download.split('/').pop() as string
  others['download token'] = downloadToken
  t.same((await app.inject({ method: 'GET', url: released.download, ...as(w.tokens.requester) })).rawPayload, PDF)
  t.equal((await app.inject({ method: 'GET', url: released.download, ...as(w.tokens.requester) })).statusCode, 404, 'used up')
  t.equal((await app.inject({ method: 'POST', url: '/v1/attestations/verify', ...as(w.tokens.requester, { attestation: released.attestation }) })).statusCode, 200)

  const current = (await app.inject({ method: 'GET', url: `/v1/documents/${w.docs.birth}`, ...as(w.tokens.issuer) })).json()
  t.equal((await app.inject({ method: 'POST', url: `/v1/documents/${w.docs.birth}/amend`, ...as(w.tokens.issuer, { procedureCode: current.procedureCode, dossierCode: current.dossierCode, data: current.data, reason: 'cải chính' }) })).statusCode, 201)

  // the portal and the auditor, both asking by subject
  const subject = { kind: 'citizen', id: w.citizen }
  t.equal((await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', ...as(w.tokens.portal, { subject }) })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/v1/portal/access-history', ...as(w.tokens.portal, { subject, limit: 10 }) })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/v1/audit/search', ...as(w.tokens.auditor, { subject, limit: 10 }) })).statusCode, 200)

  // refusals: a forged token, a client assertion replayed, an identifier where it does not belong
  const forged = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'ES256', kid: s.signingKey.kid }).setIssuer(app.config.gatewayIssuer).setSubject(ADMIN_CODE).setExpirationTime('5m')
    .sign(await importJWK(w.agencies.admin.privateKey, 'ES256'))
  others['forged token'] = forged
  t.equal((await app.inject({ method: 'GET', url: '/v1/agencies', ...as(forged) })).statusCode, 401)
  const assertion = await signClientAssertion({ privateKey: w.agencies.issuer.privateKey, agency: w.agencies.issuer.code, audience: app.config.gatewayIssuer })
  others['client assertion'] = assertion
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }).toString()
  for (const expected of [200, 401]) {
    const res = await app.inject({ method: 'POST', url: '/v1/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form })
    t.equal(res.statusCode, expected, expected === 200 ? 'token issued' : 'replay refused')
    if (res.statusCode === 200) others['issued token'] = res.json().access_token
  }
  t.equal((await app.inject({ method: 'POST', url: '/v1/reuse-queries', ...as(w.tokens.requester, { ...reuseQuery(w), note: w.citizen }) })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { ...bearer(w.tokens.requester), 'content-type': 'application/json' }, payload: `{"subject":{"kind":"citizen","id":"${w.citizen}"` })).statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: `/v1/nothing-here?id=${w.citizen}`, ...as(w.tokens.requester) })).statusCode, 404)
  const wrongId = (await app.inject({ method: 'POST', url: '/v1/reuse-queries', ...as(w.tokens.requester, { ...reuseQuery(w), subject: { kind: 'citizen', id: `${w.citizen}0` } }) })).statusCode
  t.ok(wrongId >= 400 && wrongId < 500, 'a malformed identifier is refused')
  others['malformed identifier'] = `${w.citizen}0`

  await app.close()
  t.ok(logs.lines.some((line) => line.level === 10 || line.level === 20) || logs.lines.length > 50, 'the log was written at a talkative level')
  t.ok(logs.lines.some((line) => (line.req as { path?: string } | undefined)?.path === '/v1/files/[redacted]'), 'the download is logged, its token not')
  const secretForms = forms(s, others)
  assertClean(t, 'the gateway log', logs.text(), secretForms)
  assertClean(t, 'the audit log', readFileSync(app.config.auditLogFile as string, 'utf8'), secretForms)
})

t.test('a real process, at trace level: its start, its work, its refusals and its shutdown log no secret', async (t) => {
  const s = await secrets()
  const dir = mkdtempSync(join(tmpdir(), 'rg-secrets-'))
  const admin = await makeAgency(ADMIN_CODE)
  writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
  const auditLogFile = join(dir, 'audit.log')
  const issuerId = 'https://gateway.test'
  const gateway = await startGateway({ ...s.env, ADMIN_AGENCY_CODE: ADMIN_CODE, ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json'), GATEWAY_ISSUER: issuerId, AUDIT_LOG_FILE: auditLogFile, OUTBOX_WORKER: 'false' })
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  const call = async (method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number, json: any }> => {
    const res = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) })
    })
    const text = await res.text()
    return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : text }
  }
  const tokenOf = async (agency: typeof admin): Promise<string> => (await fetchAccessToken({ gateway: gateway.url, privateKey: agency.privateKey, agency: agency.code, audience: issuerId })).access_token

  const adminToken = await tokenOf(admin)
  const issuer = await makeAgency('000.00.12.H41')
  const requester = await makeAgency('000.20.41.H41')
  const portal = await makeAgency('000.00.00.G22')
  for (const [agency, roles] of [[issuer, ['issuer']], [requester, ['requester']], [portal, ['portal']]] as const) {
    t.equal((await call('PUT', `/v1/agencies/${agency.code}`, adminToken, { name: `Cơ quan ${agency.code}`, roles, ...(agency === issuer ? { issuableTypes: ['giay-khai-sinh'] } : {}), jwks: agency.jwks })).status, 201)
  }
  const [issuerToken, requesterToken, portalToken] = [await tokenOf(issuer), await tokenOf(requester), await tokenOf(portal)] as [string, string, string]
  const doc = sample('giay-khai-sinh')
  const indexed = await call('POST', '/v1/documents', issuerToken, doc)
  t.equal(indexed.status, 201)
  const upload = await fetch(`${gateway.url}/v1/documents/${indexed.json.id}/file`, { method: 'PUT', headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'application/pdf' }, body: PDF })
  t.equal(upload.status, 200)
  t.equal((await call('PUT', '/v1/agreements/secrets-test', adminToken, { requester: requester.code, documentTypes: ['giay-khai-sinh'], procedureCodes: [PROCEDURE], fields: { 'giay-khai-sinh': ['fullName'] }, fileDownload: true, validFrom: '2026-01-01' })).status, 201)
  const query = { subject: doc.subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER } }
  const reuse = await call('POST', '/v1/reuse-queries', requesterToken, query)
  t.equal(reuse.status, 200)
  t.equal(reuse.json.results[0].documents[0].data.fullName, doc.data.fullName, 'released in clear')
  const link = reuse.json.results[0].documents[0].download as string
  const file = await fetch(`${gateway.url}${link}`, { headers: { authorization: `Bearer ${requesterToken}` } })
  t.same(Buffer.from(await file.arrayBuffer()), PDF)
  t.equal((await call('POST', '/v1/portal/citizen-documents', portalToken, { subject: doc.subject })).status, 200)
  t.equal((await call('GET', '/v1/agencies', 'not-a-token')).status, 401)
  t.equal((await call('POST', '/v1/reuse-queries', requesterToken, `{"subject":{"kind":"citizen","id":"${doc.subject.id}"`)).status, 400)

  t.equal((await gateway.stop('SIGTERM')).code, 0, 'shut down cleanly')
  const stdout = gateway.lines.map((line) => JSON.stringify(line)).join('\n')
  t.ok(gateway.lines.some((line) => line.msg === 'encryption at rest on: document data and files are encrypted with key k1'), 'the start says encryption is on')
  const secretForms = forms(s, { citizen: doc.subject.id, 'admin token': adminToken, 'issuer token': issuerToken, 'requester token': requesterToken, 'portal token': portalToken, 'download token': link.split('/').pop() as string })
  assertClean(t, 'standard output', stdout, secretForms)
  assertClean(t, 'standard error', gateway.stderr(), secretForms)
  assertClean(t, 'the audit log', readFileSync(auditLogFile, 'utf8'), secretForms)
})

t.test('configuration errors name the variable, never its secret value', async (t) => {
  const s = await secrets()
  const shortKey = randomBytes(16).toString('base64')
  const shortPepper = `p-${randomBytes(8).toString('hex')}`
  const dir = mkdtempSync(join(tmpdir(), 'rg-secrets-'))
  const badKeyFile = join(dir, 'signing-keys.json')
  writeFileSync(badKeyFile, JSON.stringify({ keys: [{ ...s.signingKey, alg: 'RS256' }] }))
  const cases: Array<{ env: Record<string, string>, names: RegExp, secret: string }> = [
    { env: { ENCRYPTION_KEYS: `k1:${shortKey}` }, names: /ENCRYPTION_KEYS: key k1 is 16 bytes/, secret: shortKey },
    { env: { SUBJECT_PEPPER: shortPepper }, names: /SUBJECT_PEPPER/, secret: shortPepper },
    { env: { SIGNING_KEYS_FILE: badKeyFile, SUBJECT_PEPPER: s.pepper }, names: /signing-keys\.json: key 0 needs kid, alg/, secret: s.signingKey.d as string }
  ]
  for (const { env, names, secret } of cases) {
    const proc = spawnGateway({ LOG_LEVEL: 'trace', ...env })
    const exited = await Promise.race([proc.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000))])
    if (exited === 'hung') proc.child.kill('SIGKILL')
    t.match(exited, { code: 1 }, `${Object.keys(env).join(', ')}: refused at start`)
    const output = proc.stderr() + '\n' + proc.lines.map((line) => JSON.stringify(line)).join('\n')
    t.match(output, names, 'the message names what is wrong')
    t.notOk(output.includes(secret), 'and not the secret')
    assertClean(t, `the output of a start with ${Object.keys(env).join(', ')}`, output, forms(s, {}))
  }
})
