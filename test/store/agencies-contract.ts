import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

/** The agencies contract: records kept as given, listed in code order, and the keys generation. */
export function agenciesContract (t: Test, makeStores: StoresFactory): void {
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
    const store = (await makeStores(t)).agencies
    t.equal(await store.getAgency(agency.code), undefined)
    t.same(await store.putAgency(agency), { created: true })
    t.same(await store.getAgency(agency.code), agency)
    t.same(await store.putAgency({ ...agency, status: 'suspended' }), { created: false })
    t.equal((await store.getAgency(agency.code))?.status, 'suspended')
    await store.putAgency({ ...agency, code: '000.00.03.H41', name: 'Sở Kế hoạch và Đầu tư' })
    t.same((await store.listAgencies()).map((a) => a.code), ['000.00.03.H41', '000.00.12.H41'])
  })
  t.test('agencies: a record read back is a copy, not shared state', async (t) => {
    const store = (await makeStores(t)).agencies
    await store.putAgency(agency)
    const read = await store.getAgency(agency.code)
    read?.roles.push('admin')
    t.same((await store.getAgency(agency.code))?.roles, ['issuer'])
  })
  t.test('agencies revision: 0 at first, moved on by every write, and by nothing else', async (t) => {
    const store = (await makeStores(t)).agencies
    t.equal(await store.agenciesRevision(), 0)
    await store.putAgency(agency)
    const first = await store.agenciesRevision()
    t.ok(first > 0, 'a new agency moves it')
    await store.getAgency(agency.code)
    await store.listAgencies()
    await store.bumpAgencyKeysGeneration(agency.code)
    t.equal(await store.agenciesRevision(), first, 'reads do not move it')
    await Promise.all([1, 2, 3].map(async (i) => await store.putAgency({ ...agency, name: `${agency.name} ${i}` })))
    t.equal(await store.agenciesRevision(), first + 3, 'concurrent writes each move it')
  })
  t.test('agency keys generation: 0 until moved on, then one more each time, per agency', async (t) => {
    const store = (await makeStores(t)).agencies
    t.equal(await store.agencyKeysGeneration(agency.code), 0)
    t.equal(await store.bumpAgencyKeysGeneration(agency.code), 1)
    const concurrent = await Promise.all([1, 2, 3].map(async () => await store.bumpAgencyKeysGeneration(agency.code)))
    t.same(concurrent.sort(), [2, 3, 4], 'concurrent bumps are never lost')
    t.equal(await store.agencyKeysGeneration(agency.code), 4)
    t.equal(await store.agencyKeysGeneration('000.00.03.H41'), 0)
  })
}
