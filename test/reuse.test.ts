import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { compactVerify, createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'
import { generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'
import { CLOCK_TOLERANCE_S } from '../src/services/tokens.js'

/**
 * Reuse end to end, as a ward office processing a dossier meets it, and every abuse refused.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const OTHER_REQUESTER = '000.00.03.H41'
const PORTAL = '000.00.00.G22'
const PROCEDURE = '1.001193'
const DOSSIER = '000.20.41.H41-260301-0001'
const samples = [...generateDocuments(200, { seed: 11 })]

interface World {
  app: FastifyInstance
  issuerToken: string
  requesterToken: string
  otherToken: string
  adminToken: string
  portal: TestAgency
  citizen: string
  birth: SampleDocument
  land: SampleDocument
}

async function world (t: Test, store: Stores): Promise<World> {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: adminEnv(admin) })
  const adminToken = await tokenFor(app, admin)
  const issuer = await makeAgency(ISSUER)
  const requester = await makeAgency(REQUESTER)
  const other = await makeAgency(OTHER_REQUESTER)
  const portal = await makeAgency(PORTAL)
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat'] })
  await register(app, adminToken, requester, ['requester'])
  await register(app, adminToken, other, ['requester'])
  await register(app, adminToken, portal, ['portal'])
  const birth = structuredClone(samples.find((d) => d.type === 'giay-khai-sinh') as SampleDocument)
  const land = structuredClone(samples.find((d) => d.type === 'giay-chung-nhan-quyen-su-dung-dat' && d.subject.kind === 'citizen') as SampleDocument)
  land.subject = birth.subject
  const w = { app, adminToken, issuerToken: await tokenFor(app, issuer), requesterToken: await tokenFor(app, requester), otherToken: await tokenFor(app, other), portal, citizen: birth.subject.id, birth, land }
  for (const doc of [birth, land]) {
    const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${w.issuerToken}` }, payload: doc })
    if (res.statusCode !== 201) throw new Error(res.body)
  }
  const agreement = await app.inject({
    method: 'PUT', url: '/v1/agreements/ward-quang-trung-2026', headers: { authorization: `Bearer ${adminToken}` },
    payload: {
      requester: REQUESTER,
      documentTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat', 'phieu-ly-lich-tu-phap'],
      procedureCodes: [PROCEDURE],
      fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth', 'gender'], 'giay-chung-nhan-quyen-su-dung-dat': ['parcelNumber', 'mapSheetNumber', 'areaM2'], 'phieu-ly-lich-tu-phap': ['*'] },
      fileDownload: true,
      validFrom: '2026-01-01'
    }
  })
  if (agreement.statusCode !== 201) throw new Error(agreement.body)
  return w
}

const query = async (w: World, body: Record<string, unknown>, token = w.requesterToken) =>
  await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { authorization: `Bearer ${token}` }, payload: body })
const base = (w: World) => ({ subject: { kind: 'citizen', id: w.citizen }, documentTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat'], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER } })

async function consent (w: World, claims: Record<string, unknown> = {}, signer: TestAgency = w.portal): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ sub: w.citizen, azp: REQUESTER, document_types: ['phieu-ly-lich-tu-phap'], procedure_code: PROCEDURE, dossier_code: DOSSIER, jti: randomUUID(), iat: now, exp: now + 86_400, ...claims })
    .setProtectedHeader({ alg: signer.privateKey.alg, kid: signer.privateKey.kid })
    .setIssuer(signer.code)
    .sign(await importJWK(signer.privateKey, signer.privateKey.alg))
}

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    t.test('end to end: indexed, found, minimized, attested, downloaded once, all on record', async (t) => {
      const w = await world(t, await makeStore(t))
      const birthId = (await w.app.audit.search({ action: 'document.indexed', limit: 10 })).events.find((e) => e.detail?.type === 'giay-khai-sinh')?.documents?.[0]?.id as string
      const pdf = Buffer.from('%PDF-1.7 giấy khai sinh bản điện tử')
      const upload = await w.app.inject({ method: 'PUT', url: `/v1/documents/${birthId}/file`, headers: { authorization: `Bearer ${w.issuerToken}`, 'content-type': 'application/pdf' }, payload: pdf })
      t.equal(upload.statusCode, 200)

      const discovery = await w.app.inject({ method: 'GET', url: '/v1/discovery', headers: { authorization: `Bearer ${w.requesterToken}` } })
      t.same(discovery.json().grants.map((g: { documentType: string }) => g.documentType).sort(), ['giay-chung-nhan-quyen-su-dung-dat', 'giay-khai-sinh', 'phieu-ly-lich-tu-phap'])
      t.equal(discovery.json().grants.find((g: { documentType: string }) => g.documentType === 'phieu-ly-lich-tu-phap').consentRequired, true)

      const res = await query(w, { ...base(w), reason: 'Đăng ký thường trú' })
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.same(body.results.map((r: { found: boolean }) => r.found), [true, true])
      const birth = body.results[0].documents[0]
      t.same(Object.keys(birth.data).sort(), ['dateOfBirth', 'fullName', 'gender'], 'only the granted fields')
      t.same(Object.keys(body.results[1].documents[0].data).sort(), ['areaM2', 'mapSheetNumber', 'parcelNumber'])
      t.match(birth.download, /^\/v1\/files\/[\w-]{43}$/)
      t.notOk(body.results[1].documents[0].download, 'no file, no link')

      // the attestation, with plain jose and the published JWKS
      const jwks = createLocalJWKSet((await w.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
      const { payload, protectedHeader } = await jwtVerify(birth.attestation, jwks, { issuer: w.app.config.gatewayIssuer, audience: REQUESTER })
      t.equal(protectedHeader.typ, 'reuse-attestation+jwt')
      t.equal(payload.document_id, birth.id)
      t.equal(payload.document_version, 1)
      t.equal(payload.document_type, 'giay-khai-sinh')
      t.equal(payload.issuer, ISSUER)
      t.equal(payload.status, 'valid')
      t.equal(payload.procedure_code, PROCEDURE)
      t.equal(payload.dossier_code, DOSSIER)
      t.equal(payload.file_sha256, createHash('sha256').update(pdf).digest('hex'))
      t.equal(payload.audit_event, body.queryId)

      // the receipt: over the request and response bodies
      const receipt = await compactVerify(String(res.headers['reuse-receipt']), jwks)
      const claims = JSON.parse(new TextDecoder().decode(receipt.payload))
      t.equal(claims.response_sha256, createHash('sha256').update(res.body).digest('hex'))
      t.equal(claims.request_sha256, createHash('sha256').update(JSON.stringify({ ...base(w), reason: 'Đăng ký thường trú' })).digest('hex'))
      t.equal(claims.jti, body.queryId)

      // verification tells the status now; one changed byte is caught
      const verify = await w.app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: { authorization: `Bearer ${w.otherToken}` }, payload: { attestation: birth.attestation } })
      t.equal(verify.json().valid, true)
      t.equal(verify.json().statusNow, 'valid')
      const tampered = birth.attestation.slice(0, -3) + (birth.attestation.slice(-3, -2) === 'A' ? 'B' : 'A') + birth.attestation.slice(-2)
      t.equal((await w.app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: { authorization: `Bearer ${w.otherToken}` }, payload: { attestation: tampered } })).json().valid, false)

      // the download: not for another agency, once for its owner
      const stolen = await w.app.inject({ method: 'GET', url: birth.download, headers: { authorization: `Bearer ${w.otherToken}` } })
      t.equal(stolen.statusCode, 403)
      const file = await w.app.inject({ method: 'GET', url: birth.download, headers: { authorization: `Bearer ${w.requesterToken}` } })
      t.equal(file.statusCode, 200)
      t.same(file.rawPayload, pdf)
      t.equal(file.headers['content-type'], 'application/pdf')
      t.equal(file.headers['repr-digest'], `sha-256=:${createHash('sha256').update(pdf).digest('base64')}:`)
      t.equal((await w.app.inject({ method: 'GET', url: birth.download, headers: { authorization: `Bearer ${w.requesterToken}` } })).statusCode, 404, 'single use')
      const forged = birth.download.slice(0, -2) + (birth.download.endsWith('AA') ? 'BB' : 'AA')
      t.equal((await w.app.inject({ method: 'GET', url: forged, headers: { authorization: `Bearer ${w.requesterToken}` } })).statusCode, 404)

      // revoked: no longer returned as valid; the verifier says so
      await w.app.inject({ method: 'POST', url: `/v1/documents/${birth.id}/revoke`, headers: { authorization: `Bearer ${w.issuerToken}` }, payload: { reason: 'Cấp sai thông tin' } })
      const after = (await query(w, base(w))).json()
      t.same(after.results[0], { documentType: 'giay-khai-sinh', found: false, why: 'revoked', documents: [] })
      t.equal((await w.app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: { authorization: `Bearer ${w.otherToken}` }, payload: { attestation: birth.attestation } })).json().statusNow, 'revoked')

      const trail = (await w.app.audit.search({ limit: 100 })).events.map((e) => `${e.action}:${e.outcome}`)
      for (const step of ['document.indexed:granted', 'document.file_uploaded:granted', 'agreement.created:granted', 'reuse.queried:granted', 'attestation.verified:granted', 'attestation.verified:denied', 'file.downloaded:denied', 'file.downloaded:granted', 'document.revoked:granted']) {
        t.ok(trail.includes(step), `on record: ${step}`)
      }
      const reuses = await w.app.stores.reuseRecords.reusesOf(w.app.documents.subjectHash(w.birth.subject), birth.id)
      t.same(reuses.map((r) => [r.requester, r.version, r.dossierCode]), [[REQUESTER, 1, DOSSIER]], 'the reuse is remembered for revocation notices')
    })

    t.test('status mode releases no data, no file, no attestation; nothing found is 200 and audited', async (t) => {
      const w = await world(t, await makeStore(t))
      const res = (await query(w, { ...base(w), mode: 'status' })).json()
      t.same(Object.keys(res.results[0].documents[0]).sort(), ['id', 'issuer', 'status', 'validFrom', 'version'].concat(res.results[0].documents[0].validUntil ? ['validUntil'] : []).sort())
      const empty = await query(w, { ...base(w), subject: { kind: 'citizen', id: '079199000111' } })
      t.equal(empty.statusCode, 200)
      t.same(empty.json().results.map((r: { why: string }) => r.why), ['none', 'none'])
      t.ok(empty.headers['reuse-receipt'], 'an empty answer has its receipt too')
      t.equal((await w.app.audit.search({ action: 'reuse.queried', outcome: 'empty', limit: 10 })).events.length, 1)
    })

    t.test('a withdrawn consent stays refused as long as the longest-lived consent accepted today can be used', async (t) => {
      const w = await world(t, await makeStore(t))
      const crimeQuery = { ...base(w), documentTypes: ['phieu-ly-lich-tu-phap'] }
      const kept: number[] = []
      const revoke = w.app.stores.reuseRecords.revokeConsent.bind(w.app.stores.reuseRecords)
      w.app.stores.reuseRecords.revokeConsent = async (jti, ttlMs) => { kept.push(ttlMs); await revoke(jti, ttlMs) }
      // the latest a portal's clock may be ahead of the gateway's, and the longest a consent may last
      const iat = Math.floor(Date.now() / 1000) + 30
      const exp = iat + 30 * 86_400
      const given = await consent(w, { iat, exp })
      t.equal((await query(w, { ...crimeQuery, consentToken: given })).statusCode, 200, 'accepted')
      const jti = JSON.parse(Buffer.from(given.split('.')[1] as string, 'base64url').toString()).jti
      const portalToken = await tokenFor(w.app, w.portal)
      t.equal((await w.app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: { authorization: `Bearer ${portalToken}` }, payload: { consentId: jti } })).statusCode, 204)
      t.equal(kept.length, 1)
      t.ok(Date.now() + (kept[0] as number) > (exp + CLOCK_TOLERANCE_S) * 1000, 'the withdrawal is kept past the last moment the token could be accepted')
      const after = await query(w, { ...crimeQuery, consentToken: given })
      t.equal(after.statusCode, 403)
      t.equal(after.json().code, 'consent_revoked')
    })

    t.test('a portal with an Ed25519 key signs consent tokens as EdDSA or as Ed25519 (RFC 9864)', async (t) => {
      const w = await world(t, await makeStore(t))
      const portal = await makeAgency(PORTAL, 'EdDSA')
      await register(w.app, w.adminToken, portal, ['portal'])
      const crimeQuery = { ...base(w), documentTypes: ['phieu-ly-lich-tu-phap'] }
      for (const alg of ['EdDSA', 'Ed25519']) {
        const now = Math.floor(Date.now() / 1000)
        const token = await new SignJWT({ sub: w.citizen, azp: REQUESTER, document_types: ['phieu-ly-lich-tu-phap'], procedure_code: PROCEDURE, dossier_code: DOSSIER, jti: randomUUID(), iat: now, exp: now + 3600 })
          .setProtectedHeader({ alg, kid: portal.privateKey.kid })
          .setIssuer(PORTAL)
          .sign(await importJWK(portal.privateKey, alg))
        const res = await query(w, { ...crimeQuery, consentToken: token })
        t.equal(res.statusCode, 200, `consent signed ${alg}: ${res.statusCode === 200 ? 'accepted' : res.body}`)
      }
    })

    t.test('a result not valid yet is pending: never released, shown pending wherever its status is told', async (t) => {
      const w = await world(t, await makeStore(t))
      const future = structuredClone(samples.find((d) => d.type === 'giay-khai-sinh' && d.subject.id !== w.citizen) as SampleDocument)
      future.validFrom = '2999-01-01'
      delete future.validUntil
      const indexed = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${w.issuerToken}` }, payload: future })
      t.equal(indexed.statusCode, 201)
      t.equal(indexed.json().status, 'pending', 'the issuer is told at once')
      const id = indexed.json().id as string

      const res = await query(w, { ...base(w), subject: future.subject, documentTypes: ['giay-khai-sinh'] })
      t.equal(res.statusCode, 200)
      t.same(res.json().results, [{ documentType: 'giay-khai-sinh', found: false, why: 'pending', documents: [] }], 'nothing released, and why')
      t.notOk(res.body.includes(id))
      const status = await query(w, { ...base(w), subject: future.subject, documentTypes: ['giay-khai-sinh'], mode: 'status' })
      t.same(status.json().results, [{ documentType: 'giay-khai-sinh', found: false, why: 'pending', documents: [] }], 'nor said to exist as valid')

      const read = await w.app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: { authorization: `Bearer ${w.issuerToken}` } })
      t.equal(read.json().status, 'pending')
      const portalToken = await tokenFor(w.app, w.portal)
      const own = await w.app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: { authorization: `Bearer ${portalToken}` }, payload: { subject: future.subject } })
      t.equal(own.statusCode, 200)
      t.same(own.json().documents.map((d: { id: string, status: string }) => [d.id, d.status]), [[id, 'pending']], 'the citizen sees it is not valid yet')

      // an attestation of it (as signed before pending existed) is told the document is not valid now
      const attestation = await w.app.signingKeys.sign({ iss: w.app.config.gatewayIssuer, aud: REQUESTER, iat: Math.floor(Date.now() / 1000), jti: 'pending-check', document_id: id, document_version: 1, document_type: 'giay-khai-sinh', issuer: ISSUER, status: 'valid' }, 'reuse-attestation+jwt')
      const verify = await w.app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: { authorization: `Bearer ${w.otherToken}` }, payload: { attestation } })
      t.equal(verify.statusCode, 200)
      t.match(verify.json(), { valid: true, statusNow: 'pending' })
    })

    t.test('abuse: every case refused and audited as denied', async (t) => {
      const w = await world(t, await makeStore(t))
      const crimeQuery = { ...base(w), documentTypes: ['phieu-ly-lich-tu-phap'] }
      const otherPortal = await makeAgency('000.00.00.G23')
      const cases: Array<[string, () => Promise<Record<string, unknown>>, string, string?]> = [
        ['a type only another agency may reuse', async () => base(w), 'no_agreement', 'other'],
        ['a procedure outside the agreement', async () => ({ ...base(w), purpose: { procedureCode: '2.000001', dossierCode: DOSSIER } }), 'procedure_not_granted'],
        ['consent missing', async () => crimeQuery, 'consent_required'],
        ['consent for another citizen', async () => ({ ...crimeQuery, consentToken: await consent(w, { sub: '001099099999' }) }), 'consent_wrong_subject'],
        ['consent for another requester', async () => ({ ...crimeQuery, consentToken: await consent(w, { azp: OTHER_REQUESTER }) }), 'consent_wrong_requester'],
        ['consent for another dossier', async () => ({ ...crimeQuery, consentToken: await consent(w, { dossier_code: '000.20.41.H41-260301-0002' }) }), 'consent_wrong_dossier'],
        ['consent expired', async () => ({ ...crimeQuery, consentToken: await consent(w, { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }) }), 'consent_expired'],
        ['consent signed by a non-portal agency', async () => ({ ...crimeQuery, consentToken: await consent(w, {}, otherPortal) }), 'consent_issuer_not_portal'],
        ['consent for another procedure', async () => ({ ...crimeQuery, consentToken: await consent(w, { procedure_code: '1.000002' }) }), 'consent_wrong_procedure'],
        // 30 days from a date to come: it would outlive a withdrawal made today
        ['consent issued in the future', async () => ({ ...crimeQuery, consentToken: await consent(w, { iat: Math.floor(Date.now() / 1000) + 86_400, exp: Math.floor(Date.now() / 1000) + 31 * 86_400 }) }), 'consent_not_yet_valid'],
        ['consent lasting past 30 days from now', async () => ({ ...crimeQuery, consentToken: await consent(w, { exp: Math.floor(Date.now() / 1000) + 31 * 86_400 }) }), 'consent_invalid'],
        ['hidden without the right', async () => ({ ...base(w), hidden: true, hiddenUntil: '2027-01-01' }), 'hidden_not_allowed']
      ]
      for (const [what, body, code, who] of cases) {
        const res = await query(w, await body(), who === 'other' ? w.otherToken : w.requesterToken)
        t.equal(res.statusCode, 403, what)
        t.equal(res.json().code, code, what)
      }
      const denied = await w.app.audit.search({ action: 'reuse.queried', outcome: 'denied', limit: 100 })
      t.equal(denied.events.length, cases.length, 'each refusal on record')
      t.ok(denied.events.every((e) => e.purpose?.dossierCode && e.subject), 'with purpose and subject hash')
      const given = await consent(w)
      const ok = await query(w, { ...crimeQuery, consentToken: given })
      t.equal(ok.statusCode, 200, 'a matching consent token opens it')
      const portalToken = await tokenFor(w.app, w.portal)
      const jti = JSON.parse(Buffer.from(given.split('.')[1] as string, 'base64url').toString()).jti
      t.equal((await w.app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: { authorization: `Bearer ${w.requesterToken}` }, payload: { consentId: jti } })).statusCode, 403, 'only the portal withdraws consent')
      t.equal((await w.app.inject({ method: 'POST', url: '/v1/consents/revoke', headers: { authorization: `Bearer ${portalToken}` }, payload: { consentId: jti, reason: 'Công dân rút lại sự đồng ý' } })).statusCode, 204)
      const replayed = await query(w, { ...crimeQuery, consentToken: given })
      t.equal(replayed.statusCode, 403, 'replayed after the consent was withdrawn')
      t.equal(replayed.json().code, 'consent_revoked')
      const malformed: Array<Record<string, unknown>> = [
        { ...base(w), subject: { kind: 'citizen', id: '12' } },
        { ...base(w), documentTypes: [] },
        { ...base(w), purpose: { procedureCode: 'x', dossierCode: DOSSIER } },
        { ...base(w), mode: 'everything' },
        { ...base(w), extra: 1 }
      ]
      for (const body of malformed) {
        const res = await query(w, body)
        t.ok(res.statusCode === 400 || res.statusCode === 422, JSON.stringify(body).slice(0, 60))
      }
      t.equal((await query(w, base(w), w.issuerToken)).statusCode, 403, 'an issuer is not a requester')
    })
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))
