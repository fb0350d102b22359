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
