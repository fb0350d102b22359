import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

/** The agreements contract: records kept as given, replaced, listed in id order. */
export function agreementsContract (t: Test, makeStores: StoresFactory): void {
  t.test('agreements: created, replaced, read and listed', async (t) => {
    const store = (await makeStores(t)).agreements
    const agreement = { id: 'a1', requester: '000.20.41.H41', documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName'] }, fileDownload: false, hiddenAllowed: false, validFrom: '2026-01-01', status: 'active' as const, createdAt: 'x', updatedAt: 'x' }
    t.same(await store.putAgreement(agreement), { created: true })
    t.same(await store.putAgreement({ ...agreement, status: 'suspended' }), { created: false })
    t.equal((await store.getAgreement('a1'))?.status, 'suspended')
    t.same((await store.listAgreements()).map((a) => a.id), ['a1'])
    t.equal(await store.getAgreement('a0'), undefined)
    await store.putAgreement({ ...agreement, id: 'a0' })
    t.same((await store.listAgreements()).map((a) => a.id), ['a0', 'a1'], 'in id order')
    t.same(await store.getAgreement('a0'), { ...agreement, id: 'a0' }, 'read back unchanged')
  })

  t.test('agreements revision: 0 at first, moved on by every write, and by nothing else', async (t) => {
    const store = (await makeStores(t)).agreements
    const agreement = { id: 'a1', requester: '000.20.41.H41', documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName'] }, fileDownload: false, hiddenAllowed: false, validFrom: '2026-01-01', status: 'active' as const, createdAt: 'x', updatedAt: 'x' }
    t.equal(await store.agreementsRevision(), 0)
    await store.putAgreement(agreement)
    const first = await store.agreementsRevision()
    t.ok(first > 0, 'a new agreement moves it')
    await store.listAgreements()
    await store.getAgreement('a1')
    t.equal(await store.agreementsRevision(), first, 'reads do not move it')
    await Promise.all(['suspended', 'active'].map(async (status) => await store.putAgreement({ ...agreement, status: status as 'active' })))
    t.equal(await store.agreementsRevision(), first + 2, 'concurrent writes each move it')
  })

  t.test('agreements: a record read back is a copy, not shared state', async (t) => {
    const store = (await makeStores(t)).agreements
    const agreement = { id: 'a1', requester: '000.20.41.H41', documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName'] }, fileDownload: false, hiddenAllowed: false, validFrom: '2026-01-01', status: 'active' as const, createdAt: 'x', updatedAt: 'x' }
    await store.putAgreement(agreement)
    const read = await store.getAgreement('a1')
    read?.documentTypes.push('giay-phep-lai-xe')
    ;(await store.listAgreements())[0]?.procedureCodes.push('x')
    t.same(await store.getAgreement('a1'), agreement)
  })
}
