import type { Test } from 'tap'
import type { Store } from '../../src/store/index.js'

/**
 * The Store contract: what every implementation must do, run against the embedded store and
 * against a real Redis (test/store/*.test.ts). Each feature adds its section here.
 */
export type StoreFactory = (t: Test) => Promise<Store>

export function storeContract (t: Test, makeStore: StoreFactory): void {
  t.test('ping answers while the store is up', async (t) => {
    const store = await makeStore(t)
    await t.resolves(store.ping())
  })

  t.test('persistence is reported', async (t) => {
    const store = await makeStore(t)
    const persistence = await store.persistence()
    t.type(persistence.aof, 'boolean')
    t.type(persistence.rdb, 'boolean')
  })
}

export function agencyContract (t: Test, makeStore: StoreFactory): void {
  const agency = {
    code: '000.00.12.H41',
    name: 'Sở Tư pháp tỉnh Bình Định',
    roles: ['issuer' as const],
    jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'k1' }] },
    status: 'active' as const,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z'
  }

  t.test('agencies: create, read back unchanged, replace, list in code order', async (t) => {
    const store = await makeStore(t)
    t.equal(await store.getAgency(agency.code), undefined)
    t.same(await store.putAgency(agency), { created: true })
    t.same(await store.getAgency(agency.code), agency)
    t.same(await store.putAgency({ ...agency, status: 'suspended' }), { created: false })
    t.equal((await store.getAgency(agency.code))?.status, 'suspended')
    await store.putAgency({ ...agency, code: '000.00.03.H41', name: 'Sở Kế hoạch và Đầu tư' })
    t.same((await store.listAgencies()).map((a) => a.code), ['000.00.03.H41', '000.00.12.H41'])
  })

  t.test('agencies: a record read back is a copy, not shared state', async (t) => {
    const store = await makeStore(t)
    await store.putAgency(agency)
    const read = await store.getAgency(agency.code)
    read?.roles.push('admin')
    t.same((await store.getAgency(agency.code))?.roles, ['issuer'])
  })

  t.test('agency keys generation: 0 until moved on, then one more each time, per agency', async (t) => {
    const store = await makeStore(t)
    t.equal(await store.agencyKeysGeneration(agency.code), 0)
    t.equal(await store.bumpAgencyKeysGeneration(agency.code), 1)
    const concurrent = await Promise.all([1, 2, 3].map(async () => await store.bumpAgencyKeysGeneration(agency.code)))
    t.same(concurrent.sort(), [2, 3, 4], 'concurrent bumps are never lost')
    t.equal(await store.agencyKeysGeneration(agency.code), 4)
    t.equal(await store.agencyKeysGeneration('000.00.03.H41'), 0)
  })

  t.test('claimOnce: first claim wins, repeats lose until it expires, namespaces are separate', async (t) => {
    const store = await makeStore(t)
    t.equal(await store.claimOnce('assertion', 'jti-1', 60_000), true)
    t.equal(await store.claimOnce('assertion', 'jti-1', 60_000), false)
    t.equal(await store.claimOnce('download', 'jti-1', 60_000), true)
    t.equal(await store.claimOnce('assertion', 'short', 30), true)
    await new Promise((resolve) => setTimeout(resolve, 80))
    t.equal(await store.claimOnce('assertion', 'short', 30), true, 'claimable again once expired')
  })

  t.test('claimOnce: of many concurrent claims exactly one wins', async (t) => {
    const store = await makeStore(t)
    const results = await Promise.all(Array.from({ length: 50 }, async () => await store.claimOnce('assertion', 'race', 60_000)))
    t.equal(results.filter(Boolean).length, 1)
  })

  t.test('signing keys: compare-and-set by revision', async (t) => {
    const store = await makeStore(t)
    t.equal(await store.getSigningKeys(), undefined)
    t.equal(await store.putSigningKeys([{ kid: 'a' }], 1), false, 'cannot update what does not exist')
    t.equal(await store.putSigningKeys([{ kid: 'a' }], 0), true)
    t.equal(await store.putSigningKeys([{ kid: 'b' }], 0), false, 'a second creator loses')
    t.same(await store.getSigningKeys(), { revision: 1, keys: [{ kid: 'a' }] })
    t.equal(await store.putSigningKeys([{ kid: 'c' }, { kid: 'a' }], 1), true)
    t.same(await store.getSigningKeys(), { revision: 2, keys: [{ kid: 'c' }, { kid: 'a' }] })
  })
}

export function documentContract (t: Test, makeStore: StoreFactory): void {
  const version = (id: string, n: number, contentHash = 'h1'): import('../../src/store/index.js').StoredDocumentVersion => ({
    id, version: n, type: 'giay-khai-sinh', typeSchemaVersion: 1, subject: { kind: 'citizen', id: '001099012345' }, issuer: '000.00.12.H41',
    procedureCode: '1.001193', dossierCode: '000.00.41.H41-260101-0001', documentNumber: '12/2026', issuedAt: '2026-01-01', validFrom: '2026-01-01',
    data: { fullName: 'Nguyễn Văn An' }, createdAt: '2026-01-01T00:00:00.000Z', contentHash
  })
  const keys = { subjectHash: 'a'.repeat(64), naturalKey: '000.00.12.H41:giay-khai-sinh:abc' }

  t.test('documents: registered once per natural key; same content is existing, other content a conflict', async (t) => {
    const store = await makeStore(t)
    t.equal(await store.findRegistration(keys.naturalKey), undefined)
    const created = await store.registerDocument(keys, version('01J00000000000000000000001', 1))
    t.equal(created.outcome, 'created')
    t.same(await store.findRegistration(keys.naturalKey), { id: '01J00000000000000000000001', contentHash: 'h1' })
    const again = await store.registerDocument(keys, version('01J00000000000000000000002', 1))
    t.equal(again.outcome, 'existing')
    t.equal(again.document.versions[0]?.id, '01J00000000000000000000001', 'the first id stays')
    const other = await store.registerDocument(keys, version('01J00000000000000000000003', 1, 'h2'))
    t.equal(other.outcome, 'conflict')
    t.equal(await store.getDocument('01J00000000000000000000002'), undefined)
  })

  t.test('documents: versions, revocation and files; a subject\'s documents in one call', async (t) => {
    const store = await makeStore(t)
    const id = '01J00000000000000000000010'
    await store.registerDocument(keys, version(id, 1))
    t.same(await store.amendDocument(keys.subjectHash, version(id, 2), 1, { carryFile: true }), {}, 'appended; version 1 had no file to carry')
    t.equal(await store.amendDocument(keys.subjectHash, version(id, 3), 1), false, 'only on top of the current version')
    t.equal(await store.attachDocumentFile(keys.subjectHash, id, 2, { mediaType: 'application/pdf', size: 3, sha256: 'f'.repeat(64), uploadedAt: 'x' }), true)
    t.equal(await store.attachDocumentFile(keys.subjectHash, id, 2, { mediaType: 'application/pdf', size: 4, sha256: 'e'.repeat(64), uploadedAt: 'x' }), false)
    t.equal(await store.revokeDocument(keys.subjectHash, id, { at: 'now', reason: 'r', by: 'x' }), true)
    t.equal(await store.revokeDocument(keys.subjectHash, id, { at: 'now', reason: 'r', by: 'x' }), false)
    t.equal(await store.amendDocument(keys.subjectHash, version(id, 3), 2), false, 'not after revocation')
    const found = await store.getDocument(id)
    t.same(found?.document.versions.map((v) => v.version), [1, 2])
    t.equal(found?.document.files[2]?.size, 3)
    t.equal(found?.document.revoked?.reason, 'r')
    t.equal(found?.subjectHash, keys.subjectHash)
    await store.registerDocument({ ...keys, naturalKey: 'other' }, { ...version('01J00000000000000000000011', 1), type: 'giay-phep-lai-xe' })
    t.equal((await store.documentsOfSubject(keys.subjectHash)).length, 2)
    t.same((await store.documentsOfSubject(keys.subjectHash, ['giay-phep-lai-xe'])).map((d) => d.versions[0]?.id), ['01J00000000000000000000011'])
    t.same(await store.documentsOfSubject('b'.repeat(64)), [])
  })

  t.test('documents: an amendment carries the file of the version before forward, atomically, unless told not to', async (t) => {
    const store = await makeStore(t)
    const id = '01J00000000000000000000012'
    const file = { mediaType: 'application/pdf', size: 20_971_520, sha256: 'a'.repeat(64), uploadedAt: '2026-03-01T00:00:00.000Z' }
    await store.registerDocument(keys, version(id, 1))
    t.ok(await store.attachDocumentFile(keys.subjectHash, id, 1, file))
    t.same(await store.amendDocument(keys.subjectHash, version(id, 2), 1, { carryFile: true }), { file: { ...file, carriedFrom: 1 } })
    t.same(await store.amendDocument(keys.subjectHash, version(id, 3), 2, { carryFile: true }), { file: { ...file, carriedFrom: 1 } }, 'carried on, still naming the version it was uploaded to')
    t.equal(await store.attachDocumentFile(keys.subjectHash, id, 3, { ...file, sha256: 'b'.repeat(64) }), false, 'a carried file is the version\'s one file')
    t.same(await store.amendDocument(keys.subjectHash, version(id, 4), 3, { carryFile: false }), {}, 'not carried when the amendment replaces it')
    t.same(await store.amendDocument(keys.subjectHash, version(id, 5), 4), {}, 'nothing to carry from a version without a file')
    const found = (await store.getDocument(id))?.document
    t.same(found?.files, { 1: file, 2: { ...file, carriedFrom: 1 }, 3: { ...file, carriedFrom: 1 } })
    t.same((await store.documentsOfSubject(keys.subjectHash))[0]?.files[2], { ...file, carriedFrom: 1 })
  })

  t.test('documents: every id listed in pages; a version rewritten (re-encryption) only while it is still as read', async (t) => {
    const store = await makeStore(t)
    const ids = Array.from({ length: 7 }, (_, i) => `01J0000000000000000000002${i}`)
    for (const [i, id] of ids.entries()) await store.registerDocument({ subjectHash: String(i % 2).repeat(64), naturalKey: `k${i}` }, version(id, 1))
    const listed = new Set<string>()
    for await (const page of store.documentIdPages(3)) for (const id of page) listed.add(id)
    t.same([...listed].sort(), ids, 'every document, each in some page')

    const id = ids[0] as string
    const subjectHash = '0'.repeat(64)
    await store.amendDocument(subjectHash, version(id, 2), 1)
    const stored = (await store.getDocument(id))?.document.versions[0] as import('../../src/store/index.js').StoredDocumentVersion
    const sealed = { ...stored, data: { $sealed: 'enc:v1:k1:…' } }
    t.equal(await store.rewriteDocumentVersion(subjectHash, stored, sealed), true)
    t.equal(await store.rewriteDocumentVersion(subjectHash, stored, { ...stored, data: { $sealed: 'enc:v1:k0:…' } }), false, 'not over a version changed since it was read')
    t.equal(await store.rewriteDocumentVersion(subjectHash, version(id, 3), version(id, 3)), false, 'not a version that does not exist')
    t.equal(await store.rewriteDocumentVersion('f'.repeat(64), sealed, stored), false, 'not in another subject\'s partition')
    const after = await store.getDocument(id)
    t.same(after?.document.versions.map((v) => v.data), [{ $sealed: 'enc:v1:k1:…' }, { fullName: 'Nguyễn Văn An' }], 'that version only, the others as they were')
  })
}

export function reuseContract (t: Test, makeStore: StoreFactory): void {
  const grant = { requester: '000.20.41.H41', documentId: '01J00000000000000000000001', version: 1, sha256: 'a'.repeat(64), mediaType: 'application/pdf', size: 10, dossierCode: '000.20.41.H41-260301-0001', procedureCode: '1.001193' }

  t.test('download grants: single use, bound in time, peeking does not use them up', async (t) => {
    const store = await makeStore(t)
    await store.putDownloadGrant('token-1', grant, 60_000)
    t.same(await store.peekDownloadGrant('token-1'), grant)
    t.same(await store.takeDownloadGrant('token-1'), grant)
    t.equal(await store.takeDownloadGrant('token-1'), undefined, 'once only')
    await store.putDownloadGrant('token-2', grant, 30)
    await new Promise((resolve) => setTimeout(resolve, 80))
    t.equal(await store.takeDownloadGrant('token-2'), undefined, 'expired')
    await store.putDownloadGrant('token-3', grant, 60_000)
    const takers = await Promise.all(Array.from({ length: 20 }, async () => await store.takeDownloadGrant('token-3')))
    t.equal(takers.filter(Boolean).length, 1, 'of concurrent takers exactly one gets it')
  })

  t.test('agreements, reuse records and withdrawn consents', async (t) => {
    const store = await makeStore(t)
    const agreement = { id: 'a1', requester: '000.20.41.H41', documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName'] }, fileDownload: false, hiddenAllowed: false, validFrom: '2026-01-01', status: 'active' as const, createdAt: 'x', updatedAt: 'x' }
    t.same(await store.putAgreement(agreement), { created: true })
    t.same(await store.putAgreement({ ...agreement, status: 'suspended' }), { created: false })
    t.equal((await store.getAgreement('a1'))?.status, 'suspended')
    t.same((await store.listAgreements()).map((a) => a.id), ['a1'])
    await store.recordReuse('h'.repeat(64), 'D1', { requester: 'R', version: 1, dossierCode: 'X', procedureCode: 'P', at: 't' })
    await store.recordReuse('h'.repeat(64), 'D1', { requester: 'S', version: 2, dossierCode: 'Y', procedureCode: 'P', at: 't' })
    t.same((await store.reusesOf('h'.repeat(64), 'D1')).map((r) => r.requester), ['R', 'S'])
    t.same(await store.reusesOf('h'.repeat(64), 'D2'), [])
    t.equal(await store.consentRevoked('c1'), false)
    await store.revokeConsent('c1', 60_000)
    t.equal(await store.consentRevoked('c1'), true)
  })

  t.test('reuse counters: per day, summed over the days asked', async (t) => {
    const store = await makeStore(t)
    t.same(await store.reuseCounts(['2026-11-01']), {}, 'a day with nothing counted')
    await store.addReuseCounts('2026-11-01', { 'p\t1.001193\tqueries': 2, 'p\t1.001193\tfound': 1 })
    await store.addReuseCounts('2026-11-01', { 'p\t1.001193\tqueries': 1 })
    await store.addReuseCounts('2026-11-02', { 'p\t1.001193\tqueries': 5, 'a\tX\tdenials': 1 })
    await store.addReuseCounts('2026-11-03', { 'p\t1.001193\tqueries': 100 })
    t.same(await store.reuseCounts(['2026-11-01', '2026-11-02']), { 'p\t1.001193\tqueries': 8, 'p\t1.001193\tfound': 1, 'a\tX\tdenials': 1 })
    t.same(await store.reuseCounts([]), {})
    const concurrent = Array.from({ length: 50 }, async () => { await store.addReuseCounts('2026-11-04', { n: 1 }) })
    await Promise.all(concurrent)
    t.same(await store.reuseCounts(['2026-11-04']), { n: 50 }, 'concurrent increments are all kept')
  })
}
