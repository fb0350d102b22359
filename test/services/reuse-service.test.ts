import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose'
import type { JWTPayload } from 'jose'
import { canonicalDigest, sha256Hex } from '../../src/lib/digest.js'
import { ProblemError } from '../../src/lib/problem.js'
import { generateDocuments } from '../../src/sample-data/generate.js'
import type { SampleDocument } from '../../src/sample-data/generate.js'
import { AgencyKeys } from '../../src/services/agency-keys.js'
import type { AuditEvent } from '../../src/services/audit.js'
import type { Call, RecordAudit } from '../../src/services/call.js'
import { Catalogue } from '../../src/services/catalogue.js'
import { DocumentService } from '../../src/services/documents.js'
import { today } from '../../src/services/document-status.js'
import { ATTESTATION_TYP, RECEIPT_TYP, ReuseService } from '../../src/services/reuse.js'
import type { ReuseAnswer, ReuseQuery } from '../../src/services/reuse.js'
import { SigningKeys } from '../../src/services/signing-keys.js'
import { ReuseStats } from '../../src/services/stats.js'
import { MemoryStores } from '../../src/store/index.js'
import type { AgreementRecord } from '../../src/store/index.js'
import { makeAgency } from '../lib/agencies.js'
import type { TestAgency } from '../lib/agencies.js'

/**
 * The reuse query as a use case, without HTTP: a memory store, the real catalogue, index and
 * signing keys, and a call whose audit trail is a list (or a store that refuses).
 */

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const PORTAL = '000.00.00.G22'
const GATEWAY = 'https://gateway.test'
const PROCEDURE = '1.001193'
const DOSSIER = '000.20.41.H41-260301-0001'
const BIRTH = 'giay-khai-sinh'
const CRIME = 'phieu-ly-lich-tu-phap'
const LAND = 'giay-chung-nhan-quyen-su-dung-dat'

/** a sample result of `type` valid today */
function sample (type: string): SampleDocument {
  const day = today()
  for (const document of generateDocuments(200, { seed: 7, types: [type], asOf: day })) {
    if (document.validFrom <= day && (document.validUntil === undefined || document.validUntil >= day)) return document
  }
  throw new Error(`no sample ${type} valid today`)
}

interface Setup {
  service: ReuseService
  store: MemoryStores
  keys: SigningKeys
  portal: TestAgency
  citizen: string
  subjectHash: string
  /** every signature the service asked for, by typ */
  signed: string[]
  /** the query the requester asks when nothing else is said: its birth certificate */
  query: (extra?: Partial<ReuseQuery>) => ReuseQuery
}

async function setup (agreement: Partial<AgreementRecord> = {}): Promise<Setup> {
  const store = new MemoryStores()
  const catalogue = new Catalogue({ catalogue: store.catalogue })
  await catalogue.seed()
  const index = new DocumentService({ documents: store.documents, catalogue, pepper: 'a pepper for the reuse service test' })
  const keys = await SigningKeys.load({ kind: 'store', keys: store.signingKeys, alg: 'EdDSA' }, { retentionMs: 86_400_000 })
  const portal = await makeAgency(PORTAL)
  const at = new Date().toISOString()
  await store.agencies.putAgency({ code: REQUESTER, name: 'requester', roles: ['requester'], status: 'active', createdAt: at, updatedAt: at })
  await store.agencies.putAgency({ code: PORTAL, name: 'portal', roles: ['portal'], jwks: portal.jwks as { keys: Array<Record<string, unknown>> }, status: 'active', createdAt: at, updatedAt: at })
  await store.agreements.putAgreement({
    id: 'ward-2026',
    requester: REQUESTER,
    documentTypes: [BIRTH, CRIME],
    procedureCodes: [PROCEDURE],
    fields: { [BIRTH]: ['fullName', 'dateOfBirth'], [CRIME]: ['*'] },
    fileDownload: true,
    hiddenAllowed: false,
    validFrom: '2020-01-01',
    status: 'active',
    createdAt: at,
    updatedAt: at,
    ...agreement
  })
  const birth = sample(BIRTH)
  const crime = { ...sample(CRIME), subject: birth.subject }
  const issuer = { code: ISSUER, issuableTypes: [BIRTH, CRIME] }
  const issuing = { caller: issuer, audit: async (event: object) => ({ ...event, id: randomUUID() }) as AuditEvent, log: { warn () {} } }
  for (const document of [birth, crime]) await index.index(issuing, document)
  const subjectHash = index.subjectHash(birth.subject)
  const [birthDocument] = await index.documentsOfSubject(subjectHash, [BIRTH])
  await store.documents.attachDocumentFile(subjectHash, birthDocument!.versions[0]!.id, 1, { mediaType: 'application/pdf', size: 3, sha256: sha256Hex('pdf'), uploadedAt: at })
  const signed: string[] = []
  const signer = { sign: async (claims: JWTPayload, typ: string) => { signed.push(typ); return await keys.sign(claims, typ) } }
  const service = new ReuseService({
    agencies: store.agencies,
    agreements: store.agreements,
    reuseRecords: store.reuseRecords,
    catalogue,
    index,
    agencyKeys: new AgencyKeys({ agencies: store.agencies, fetchTimeoutMs: 1000, cacheMs: 60_000, fetch: async () => { throw new Error('no key is fetched in this test') } }),
    signer,
    stats: new ReuseStats(store),
    issuer: GATEWAY
  })
  const query = (extra: Partial<ReuseQuery> = {}): ReuseQuery => ({ subject: birth.subject, documentTypes: [BIRTH], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER }, ...extra })
  return { service, store, keys, portal, citizen: birth.subject.id, subjectHash, signed, query }
}

/** a call by the requester whose audit trail is `events` (or, with `failing`, a store that refuses every event) */
function callOf (events: AuditEvent[], failing = false): Call {
  const audit: RecordAudit = async (event) => {
    if (failing) throw new Error('the audit store does not answer')
    const recorded = { actor: REQUESTER, ...event, id: `event-${events.length + 1}` } as AuditEvent
    events.push(recorded)
    return recorded
  }
  return {
    caller: { code: REQUESTER, name: 'requester', roles: ['requester'], issuableTypes: [], scopes: ['documents:reuse'], tokenId: randomUUID() },
    audit,
    log: { warn () {} }
  }
}

async function consent (s: Setup, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ sub: s.citizen, azp: REQUESTER, document_types: [CRIME], procedure_code: PROCEDURE, dossier_code: DOSSIER, jti: randomUUID(), iat: now, exp: now + 3600, ...claims })
    .setProtectedHeader({ alg: s.portal.privateKey.alg, kid: s.portal.privateKey.kid })
    .setIssuer(PORTAL)
    .sign(await importJWK(s.portal.privateKey, s.portal.privateKey.alg))
}

async function verified (s: Setup, jws: string, typ: string): Promise<JWTPayload> {
  return (await jwtVerify(jws, createLocalJWKSet(s.keys.jwks()), { issuer: GATEWAY, typ })).payload
}

function raw (query: ReuseQuery): Buffer {
  return Buffer.from(JSON.stringify(query))
}

function granted (answer: ReuseAnswer): { body: string, receipt: string } {
  if ('refusal' in answer) throw new Error(`refused: ${answer.refusal.code}`)
  return answer
}

interface Released { id: string, data?: Record<string, unknown>, attestation?: string, download?: string, file?: unknown }

function documentsOf (body: string, type: string): Released[] {
  const answer = JSON.parse(body) as { results: Array<{ documentType: string, documents: Released[] }> }
  return answer.results.find((r) => r.documentType === type)?.documents ?? []
}

t.test('refusals: a 403 with its code, audited as denied before it is answered, nothing of the citizen read or released', async (t) => {
  const cases: Array<[string, Partial<AgreementRecord>, (s: Setup) => Promise<Partial<ReuseQuery>>, string]> = [
    ['a type no agreement grants', {}, async () => ({ documentTypes: [LAND] }), 'no_agreement'],
    ['an agreement outside its validity', { validUntil: '2021-01-01' }, async () => ({}), 'no_agreement'],
    ['a procedure the agreement does not name', {}, async () => ({ purpose: { procedureCode: '1.000002', dossierCode: DOSSIER } }), 'procedure_not_granted'],
    ['a hidden query the agreement does not allow', {}, async () => ({ hidden: true, hiddenUntil: '2030-01-01' }), 'hidden_not_allowed'],
    ['a type that needs consent, without a token', {}, async () => ({ documentTypes: [CRIME] }), 'consent_required'],
    ['a consent token for another citizen', {}, async (s) => ({ documentTypes: [CRIME], consentToken: await consent(s, { sub: '001099099999' }) }), 'consent_wrong_subject']
  ]
  for (const [name, agreement, extra, code] of cases) {
    const s = await setup(agreement)
    const events: AuditEvent[] = []
    const query = s.query(await extra(s))
    const answer = await s.service.query(callOf(events), query, raw(query))
    if (!('refusal' in answer)) { t.fail(`${name}: answered`); continue }
    t.equal(answer.refusal.status, 403, name)
    t.equal(answer.refusal.code, code, name)
    t.equal(events.length, 1, `${name}: one event`)
    t.match(events[0], { action: 'reuse.queried', outcome: 'denied', subject: s.subjectHash, detail: { code } }, `${name}: on record`)
    t.equal(answer.queryId, events[0]?.id, `${name}: the refusal names its audit event`)
    t.same(s.signed, [], `${name}: nothing signed`)
    t.same(await s.store.reuseRecords.reusesOf(s.subjectHash, 'any'), [], `${name}: no reuse recorded`)
  }
})

t.test('a hidden query needs hiddenUntil: a 400, before anything is audited', async (t) => {
  const s = await setup({ hiddenAllowed: true })
  const events: AuditEvent[] = []
  const query = s.query({ hidden: true })
  const err = await s.service.query(callOf(events), query, raw(query)).catch((e: unknown) => e)
  t.ok(err instanceof ProblemError)
  t.match(err, { status: 400, code: 'hidden_until_required' })
  t.same(events, [])
})

t.test('a refusal\'s receipt signs the request and the problem body as sent, and names the refusal\'s event', async (t) => {
  const s = await setup()
  const events: AuditEvent[] = []
  const query = s.query({ documentTypes: [CRIME], consentToken: await consent(s, { sub: '001099099999' }) })
  const answer = await s.service.query(callOf(events), query, raw(query))
  if (!('refusal' in answer)) return t.fail('answered')
  t.equal(answer.refusal.code, 'consent_wrong_subject')
  const problem = JSON.stringify({ type: 'urn:reuse-gateway:problem:consent_wrong_subject', status: 403, code: answer.refusal.code })
  const receipt = await s.service.refusalReceipt({ requester: REQUESTER, rawBody: raw(query), body: problem, queryId: answer.queryId }, { warn () {} })
  const claims = await verified(s, receipt as string, RECEIPT_TYP)
  t.match(claims, { aud: REQUESTER, jti: events[0]?.id, request_sha256: sha256Hex(raw(query)), response_sha256: sha256Hex(problem) })

  const unexamined = await s.service.refusalReceipt({ requester: REQUESTER, rawBody: Buffer.from('{'), body: problem }, { warn () {} })
  t.match(await verified(s, unexamined as string, RECEIPT_TYP), { jti: /^[0-9a-f-]{36}$/, request_sha256: sha256Hex('{') }, 'a request refused before it was examined: an id of its own')
})

t.test('a granted query: only the granted fields, each attested over the data released, a download link, the answer signed', async (t) => {
  const s = await setup()
  const events: AuditEvent[] = []
  const query = s.query()
  const { body, receipt } = granted(await s.service.query(callOf(events), query, raw(query)))
  const [birth] = documentsOf(body, BIRTH)
  t.same(Object.keys(birth?.data ?? {}).sort(), ['dateOfBirth', 'fullName'], 'minimized to the granted fields')
  const attestation = await verified(s, birth?.attestation as string, ATTESTATION_TYP)
  t.equal(attestation.data_sha256, canonicalDigest(birth?.data), 'the attestation vouches for the data released')
  t.match(attestation, { aud: REQUESTER, document_id: birth?.id, audit_event: events[0]?.id, file_sha256: sha256Hex('pdf'), procedure_code: PROCEDURE, dossier_code: DOSSIER })
  t.match(birth?.download, /^\/v1\/files\/[A-Za-z0-9_-]{43}$/)
  const grant = await s.store.reuseRecords.peekDownloadGrant((birth?.download as string).slice('/v1/files/'.length))
  t.match(grant, { requester: REQUESTER, documentId: birth?.id, sha256: sha256Hex('pdf') }, 'the link is in the store before the answer')
  t.match(await s.store.reuseRecords.reusesOf(s.subjectHash, birth?.id as string), [{ requester: REQUESTER, version: 1, dossierCode: DOSSIER }], 'the reuse is recorded')
  t.match(events, [{ action: 'reuse.queried', outcome: 'granted', documents: [{ id: birth?.id, version: 1 }], detail: { mode: 'full' } }])
  t.equal(JSON.parse(body).queryId, events[0]?.id)
  t.match(await verified(s, receipt, RECEIPT_TYP), { aud: REQUESTER, jti: events[0]?.id, request_sha256: sha256Hex(raw(query)), response_sha256: sha256Hex(body) })
})

t.test('a type that needs consent, with the citizen\'s consent: released, and the consent on record', async (t) => {
  const s = await setup()
  const events: AuditEvent[] = []
  const token = await consent(s, { jti: 'consent-1' })
  const query = s.query({ documentTypes: [CRIME], consentToken: token })
  const { body } = granted(await s.service.query(callOf(events), query, raw(query)))
  const [crime] = documentsOf(body, CRIME)
  t.ok(crime?.attestation, 'released with its attestation')
  t.ok(Object.keys(crime?.data ?? {}).length > 2, 'every field (the agreement grants *)')
  t.match(events, [{ outcome: 'granted', detail: { consentId: 'consent-1' } }])

  // withdrawn: refused from the next query on
  await s.service.revokeConsent(callOf(events), { consentId: 'consent-1', reason: 'changed my mind' })
  t.match(events[1], { action: 'consent.revoked', detail: { consentId: 'consent-1', reason: 'changed my mind' } })
  const again = await s.service.query(callOf(events), query, raw(query))
  t.match(again, { refusal: { code: 'consent_revoked' } })
})

t.test('a hidden query is recorded hidden, until the date it names', async (t) => {
  const s = await setup({ hiddenAllowed: true })
  const events: AuditEvent[] = []
  const query = s.query({ hidden: true, hiddenUntil: '2030-01-01', reason: 'investigation' })
  granted(await s.service.query(callOf(events), query, raw(query)))
  t.match(events, [{ outcome: 'granted', detail: { hidden: true, hiddenUntil: '2030-01-01', reason: 'investigation' } }])
})

t.test('status mode: no data, file, link or attestation; the receipt signs the status answer', async (t) => {
  const s = await setup()
  const events: AuditEvent[] = []
  const query = s.query({ mode: 'status' })
  const { body, receipt } = granted(await s.service.query(callOf(events), query, raw(query)))
  const [birth] = documentsOf(body, BIRTH)
  t.match(birth, { id: String, status: 'valid' })
  for (const member of ['data', 'file', 'download', 'attestation']) t.notOk(Object.hasOwn(birth ?? {}, member), `no ${member}`)
  t.same(s.signed, [RECEIPT_TYP], 'only the receipt is signed')
  t.match(await verified(s, receipt, RECEIPT_TYP), { response_sha256: sha256Hex(body) })
  t.match(events, [{ outcome: 'granted', detail: { mode: 'status' } }])
  t.same(await s.store.reuseRecords.reusesOf(s.subjectHash, birth?.id as string), [], 'nothing released, nothing recorded as reused')
})

t.test('nothing found is an answer: found false, why, audited as empty', async (t) => {
  const s = await setup()
  const events: AuditEvent[] = []
  const query = s.query({ subject: { kind: 'citizen', id: '001099099999' } })
  const { body } = granted(await s.service.query(callOf(events), query, raw(query)))
  t.match(JSON.parse(body), { results: [{ documentType: BIRTH, found: false, why: 'none', documents: [] }] })
  t.match(events, [{ outcome: 'empty' }])
})

t.test('fail closed: when the audit trail cannot take the query, nothing is released', async (t) => {
  const s = await setup()
  const query = s.query()
  await t.rejects(s.service.query(callOf([], true), query, raw(query)), /audit store does not answer/)
  t.same(s.signed, [], 'no attestation, no receipt')
  const [birth] = await new DocumentService({ documents: s.store.documents, catalogue: new Catalogue({ catalogue: s.store.catalogue }), pepper: 'a pepper for the reuse service test' }).documentsOfSubject(s.subjectHash, [BIRTH])
  t.same(await s.store.reuseRecords.reusesOf(s.subjectHash, birth?.versions[0]?.id as string), [], 'no reuse recorded')

  // a refusal is not answered unaudited either
  const refused = s.query({ documentTypes: [LAND] })
  await t.rejects(s.service.query(callOf([], true), refused, raw(refused)), /audit store does not answer/)
})
