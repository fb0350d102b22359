import type { Test } from 'tap'
import type { StoredDocumentVersion } from '../../src/store/index.js'
import type { StoresFactory } from './stores-contract.js'

/** The documents contract: registration once per natural key, versions, files, revocation, pages of ids, rewrites. */
export function documentsContract (t: Test, makeStores: StoresFactory): void {
  const version = (id: string, n: number, contentHash = 'h1'): StoredDocumentVersion => ({
    id, version: n, type: 'giay-khai-sinh', typeSchemaVersion: 1, subject: { kind: 'citizen', id: '001099012345' }, issuer: '000.00.12.H41',
    procedureCode: '1.001193', dossierCode: '000.00.41.H41-260101-0001', documentNumber: '12/2026', issuedAt: '2026-01-01', validFrom: '2026-01-01',
    data: { fullName: 'Nguyễn Văn An' }, createdAt: '2026-01-01T00:00:00.000Z', contentHash
  })
  const keys = { subjectHash: 'a'.repeat(64), naturalKey: '000.00.12.H41:giay-khai-sinh:abc' }

  t.test('documents: registered once per natural key; same content is existing, other content a conflict', async (t) => {
    const store = (await makeStores(t)).documents
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
  t.test('documents: a batch registers each line once, in order, a repeated natural key within it included', async (t) => {
    const store = (await makeStores(t)).documents
    const ids = Array.from({ length: 5 }, (_, i) => `01J0000000000000000000003${i}`)
    const line = (i: number, naturalKey: string, contentHash = 'h1'): { keys: typeof keys, first: StoredDocumentVersion } =>
      ({ keys: { subjectHash: String(i % 3).repeat(64), naturalKey }, first: version(ids[i] as string, 1, contentHash) })
    await store.registerDocument(line(0, 'b0').keys, line(0, 'b0').first)
    t.same(await store.findRegistrations(['b1', 'b0', 'b2']), [undefined, { id: ids[0], contentHash: 'h1' }, undefined], 'found in the order asked')
    const outcomes = await store.registerDocuments([line(1, 'b1'), line(2, 'b0'), line(3, 'b1'), line(4, 'b0', 'h2')])
    t.same(outcomes.map((o) => o.outcome), ['created', 'existing', 'existing', 'conflict'])
    t.same(outcomes.map((o) => o.document.versions[0]?.id), [ids[1], ids[0], ids[1], ids[0]], 'a natural key keeps its first id, within a batch too')
    t.same(await store.findRegistrations(['b0', 'b1']), [{ id: ids[0], contentHash: 'h1' }, { id: ids[1], contentHash: 'h1' }])
    t.equal(await store.getDocument(ids[3] as string), undefined, 'the repeated line wrote nothing of its own')
    t.same((await store.getDocument(ids[1] as string))?.document.versions, [version(ids[1] as string, 1)], 'the version read back is the one written')
    t.same(await store.registerDocuments([]), [])
  })
  t.test('documents: versions, revocation and files; a subject\'s documents in one call', async (t) => {
    const store = (await makeStores(t)).documents
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
    const store = (await makeStores(t)).documents
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
    const store = (await makeStores(t)).documents
    const ids = Array.from({ length: 7 }, (_, i) => `01J0000000000000000000002${i}`)
    for (const [i, id] of ids.entries()) await store.registerDocument({ subjectHash: String(i % 2).repeat(64), naturalKey: `k${i}` }, version(id, 1))
    const listed = new Set<string>()
    for await (const page of store.documentIdPages(3)) for (const id of page) listed.add(id)
    t.same([...listed].sort(), ids, 'every document, each in some page')

    const id = ids[0] as string
    const subjectHash = '0'.repeat(64)
    await store.amendDocument(subjectHash, version(id, 2), 1)
    const stored = (await store.getDocument(id))?.document.versions[0] as StoredDocumentVersion
    const sealed = { ...stored, data: { $sealed: 'enc:v1:k1:…' } }
    t.equal(await store.rewriteDocumentVersion(subjectHash, stored, sealed), true)
    t.equal(await store.rewriteDocumentVersion(subjectHash, stored, { ...stored, data: { $sealed: 'enc:v1:k0:…' } }), false, 'not over a version changed since it was read')
    t.equal(await store.rewriteDocumentVersion(subjectHash, version(id, 3), version(id, 3)), false, 'not a version that does not exist')
    t.equal(await store.rewriteDocumentVersion('f'.repeat(64), sealed, stored), false, 'not in another subject\'s partition')
    const after = await store.getDocument(id)
    t.same(after?.document.versions.map((v) => v.data), [{ $sealed: 'enc:v1:k1:…' }, { fullName: 'Nguyễn Văn An' }], 'that version only, the others as they were')
  })
}
