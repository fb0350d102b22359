import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import t from 'tap'
import { AgreementService } from '../../src/services/agreements.js'
import type { AgreementInput } from '../../src/services/agreements.js'
import { AttestationService } from '../../src/services/attestations.js'
import type { AuditEvent } from '../../src/services/audit.js'
import type { Call, RecordAudit } from '../../src/services/call.js'
import { Catalogue } from '../../src/services/catalogue.js'
import { DownloadService } from '../../src/services/downloads.js'
import { ATTESTATION_TYP } from '../../src/services/reuse.js'
import { SigningKeys } from '../../src/services/signing-keys.js'
import { ReuseStats } from '../../src/services/stats.js'
import { MemoryStores } from '../../src/store/index.js'
import type { AgencyRole } from '../../src/store/index.js'

/**
 * The reuse use cases around the query, without HTTP: agreements and discovery, downloads,
 * attestation checks.
 */

const REQUESTER = '000.20.41.H41'
const OTHER = '000.00.03.H41'
const GATEWAY = 'https://gateway.test'
const AGREEMENT: AgreementInput = {
  requester: REQUESTER,
  documentTypes: ['giay-khai-sinh', 'phieu-ly-lich-tu-phap'],
  procedureCodes: ['1.001193'],
  fields: { 'giay-khai-sinh': ['fullName'], 'phieu-ly-lich-tu-phap': ['*'] },
  validFrom: '2020-01-01'
}

function callBy (code: string, roles: AgencyRole[], events: AuditEvent[], failing = false): Call {
  const audit: RecordAudit = async (event) => {
    if (failing) throw new Error('the audit store does not answer')
    const recorded = { actor: code, ...event, id: `event-${events.length + 1}` } as AuditEvent
    events.push(recorded)
    return recorded
  }
  return { caller: { code, name: code, roles, issuableTypes: [], scopes: ['documents:reuse'], tokenId: randomUUID() }, audit, log: { warn () {} } }
}

async function agreements (): Promise<{ store: MemoryStores, service: AgreementService }> {
  const store = new MemoryStores()
  const catalogue = new Catalogue({ catalogue: store.catalogue })
  await catalogue.seed()
  const at = new Date().toISOString()
  await store.agencies.putAgency({ code: REQUESTER, name: 'requester', roles: ['requester'], status: 'active', createdAt: at, updatedAt: at })
  await store.agencies.putAgency({ code: OTHER, name: 'issuer', roles: ['issuer'], status: 'active', createdAt: at, updatedAt: at })
  return { store, service: new AgreementService({ agencies: store.agencies, agreements: store.agreements, catalogue }) }
}

t.test('an agreement is checked, audited, then stored; a replacement keeps its creation date', async (t) => {
  const { store, service } = await agreements()
  const events: AuditEvent[] = []
  const first = await service.put(callBy('admin', ['admin'], events), 'ward', AGREEMENT)
  t.match(first, { created: true, agreement: { id: 'ward', status: 'active', fileDownload: false, hiddenAllowed: false } })
  t.match(events, [{ action: 'agreement.created', detail: { agreement: 'ward', requester: REQUESTER } }])
  const second = await service.put(callBy('admin', ['admin'], events), 'ward', { ...AGREEMENT, status: 'suspended' })
  t.match(second, { created: false, agreement: { status: 'suspended', createdAt: first.agreement.createdAt } })
  t.equal(events[1]?.action, 'agreement.updated')
  t.same((await service.list()).agreements.map((a) => a.status), ['suspended'])
  t.equal((await store.agreements.getAgreement('ward'))?.status, 'suspended')
})

t.test('an agreement the audit trail cannot take is not stored (fail closed)', async (t) => {
  const { store, service } = await agreements()
  await t.rejects(service.put(callBy('admin', ['admin'], [], true), 'ward', AGREEMENT))
  t.equal(await store.agreements.getAgreement('ward'), undefined)
})

t.test('an agreement that cannot be kept is a 422 with its code, nothing audited', async (t) => {
  const { service } = await agreements()
  const cases: Array<[Partial<AgreementInput>, string]> = [
    [{ requester: OTHER }, 'not_a_requester'],
    [{ documentTypes: ['no-such-type'], fields: { 'no-such-type': [] } }, 'unknown_document_type'],
    [{ fields: { 'giay-khai-sinh': ['fullName'] } }, 'fields_missing'],
    [{ fields: { ...AGREEMENT.fields, 'giay-khai-sinh': ['shoeSize'] } }, 'unknown_field'],
    [{ fields: { ...AGREEMENT.fields, 'giay-chung-nhan-quyen-su-dung-dat': [] } }, 'fields_for_ungranted_type'],
    [{ validUntil: '2019-01-01' }, 'invalid_validity_period']
  ]
  for (const [change, code] of cases) {
    const events: AuditEvent[] = []
    await t.rejects(service.put(callBy('admin', ['admin'], events), 'ward', { ...AGREEMENT, ...change }), { status: 422, code }, code)
    t.same(events, [], `${code}: nothing on record`)
  }
})

t.test('discovery: a requester is told each type its agreements in force grant, with the fields it would receive', async (t) => {
  const { service } = await agreements()
  const admin = callBy('admin', ['admin'], [])
  await service.put(admin, 'ward', AGREEMENT)
  await service.put(admin, 'old', { ...AGREEMENT, validUntil: '2021-01-01' })
  await service.put(admin, 'stopped', { ...AGREEMENT, status: 'suspended' })
  const told = await service.discovery(callBy(REQUESTER, ['requester'], []))
  t.match(told, { agency: REQUESTER, roles: ['requester'], scopes: ['documents:reuse'] })
  t.notOk('issuableTypes' in told, 'not an issuer')
  t.same(told.grants.map((g) => [g.agreement, g.documentType, g.fields, g.consentRequired]), [
    ['ward', 'giay-khai-sinh', ['fullName'], false],
    ['ward', 'phieu-ly-lich-tu-phap', ['*'], true]
  ])
  t.same((await service.discovery(callBy(OTHER, ['issuer'], []))).grants, [], 'an issuer is granted nothing to reuse')
})

t.test('a download link: for its requester only, used once, every attempt on record', async (t) => {
  const store = new MemoryStores()
  const downloads = new DownloadService({ reuseRecords: store.reuseRecords, blobs: { open: async () => ({ stream: Readable.from([Buffer.from('pdf')]), size: 3 }) }, stats: new ReuseStats(store) })
  const grant = { requester: REQUESTER, documentId: 'doc-1', version: 1, sha256: 'ab'.repeat(32), mediaType: 'application/pdf', size: 3, dossierCode: 'D-1', procedureCode: '1.001193' }
  await store.reuseRecords.putDownloadGrant('link', grant, 60_000)
  const events: AuditEvent[] = []
  await t.rejects(downloads.take(callBy(OTHER, ['requester'], events), 'link'), { status: 403, code: 'download_not_yours' })
  const taken = await downloads.take(callBy(REQUESTER, ['requester'], events), 'link')
  t.same(taken.grant, grant, 'still usable by its owner after another agency tried it')
  t.equal(taken.blob.size, 3)
  await t.rejects(downloads.take(callBy(REQUESTER, ['requester'], events), 'link'), { status: 404, code: 'download_not_found' })
  t.same(events.map((e) => [e.actor, e.outcome, e.detail?.code]), [[OTHER, 'denied', 'download_not_yours'], [REQUESTER, 'granted', undefined], [REQUESTER, 'denied', 'download_not_found']])
})

t.test('an attestation check: this gateway\'s is valid with the document\'s status now, anything else is valid: false', async (t) => {
  const store = new MemoryStores()
  const keys = await SigningKeys.load({ kind: 'store', keys: store.signingKeys, alg: 'EdDSA' }, { retentionMs: 86_400_000 })
  const attestations = new AttestationService({ documents: store.documents, signer: keys, issuer: GATEWAY })
  const jws = await keys.sign({ iss: GATEWAY, aud: REQUESTER, document_id: 'unknown-doc', document_version: 1 }, ATTESTATION_TYP)
  const events: AuditEvent[] = []
  t.match(await attestations.verify(callBy(REQUESTER, ['requester'], events), jws), { valid: true, kid: keys.activeKid, statusNow: 'unknown', claims: { document_id: 'unknown-doc' } })
  const [header, , signature] = jws.split('.')
  const altered = `${header}.${Buffer.from(JSON.stringify({ iss: GATEWAY, document_id: 'other' })).toString('base64url')}.${signature}`
  t.match(await attestations.verify(callBy(REQUESTER, ['requester'], events), altered), { valid: false, reason: /does not verify/, kid: keys.activeKid })
  t.match(await attestations.verify(callBy(REQUESTER, ['requester'], events), 'not a jws'), { valid: false, reason: /not a valid attestation/ })
  t.same(events.map((e) => e.outcome), ['granted', 'denied', 'denied'])
  t.same(events[0]?.documents, [{ id: 'unknown-doc', version: 1 }])
})
