import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

/** The catalogue contract: document types, replaced only by compare-and-set on their schema version. */
export function catalogueContract (t: Test, makeStores: StoresFactory): void {
  const type = (schemaVersion: number, title = 'Giấy khai sinh') => ({
    code: 'giay-khai-sinh',
    schemaVersion,
    definition: { code: 'giay-khai-sinh', title, schemaVersion },
    schemas: Object.fromEntries(Array.from({ length: schemaVersion }, (_, i) => [i + 1, { type: 'object', title: `v${i + 1}` }])),
    updatedAt: '2026-01-01T00:00:00.000Z'
  })

  t.test('document types: created at expected version 0, then replaced only on top of the stored version', async (t) => {
    const store = (await makeStores(t)).catalogue
    t.equal(await store.getDocumentType('giay-khai-sinh'), undefined)
    t.equal(await store.putDocumentType(type(1), 1), false, 'cannot update what does not exist')
    t.equal(await store.putDocumentType(type(1), 0), true)
    t.equal(await store.putDocumentType(type(1, 'other'), 0), false, 'a second creator loses')
    t.same(await store.getDocumentType('giay-khai-sinh'), type(1))
    t.equal(await store.putDocumentType(type(2), 2), false, 'not over a version it did not read')
    t.equal(await store.putDocumentType(type(2), 1), true)
    t.same(await store.getDocumentType('giay-khai-sinh'), type(2), 'every schema version kept')
  })

  t.test('document types: of many admins changing a type from the same version exactly one wins', async (t) => {
    const store = (await makeStores(t)).catalogue
    await store.putDocumentType(type(1), 0)
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await store.putDocumentType(type(2, `title ${i}`), 1)))
    t.equal(results.filter(Boolean).length, 1)
    t.equal((await store.getDocumentType('giay-khai-sinh'))?.definition.title, `title ${results.indexOf(true)}`)
  })

  t.test('document types: listed in code order, as copies', async (t) => {
    const store = (await makeStores(t)).catalogue
    await store.putDocumentType(type(1), 0)
    await store.putDocumentType({ ...type(1), code: 'giay-phep-lai-xe' }, 0)
    await store.putDocumentType({ ...type(1), code: 'can-cuoc' }, 0)
    const listed = await store.listDocumentTypes()
    t.same(listed.map((d) => d.code), ['can-cuoc', 'giay-khai-sinh', 'giay-phep-lai-xe'])
    listed[0]!.schemas[9] = {}
    t.same((await store.getDocumentType('can-cuoc'))?.schemas, type(1).schemas)
  })
}
