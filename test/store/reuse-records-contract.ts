import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

/** The reuse records contract: reuse records, withdrawn consents, single-use download grants, per-day counters. */
export function reuseRecordsContract (t: Test, makeStores: StoresFactory): void {
  const grant = { requester: '000.20.41.H41', documentId: '01J00000000000000000000001', version: 1, sha256: 'a'.repeat(64), mediaType: 'application/pdf', size: 10, dossierCode: '000.20.41.H41-260301-0001', procedureCode: '1.001193' }

  t.test('download grants: single use, bound in time, peeking does not use them up', async (t) => {
    const store = (await makeStores(t)).reuseRecords
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
  t.test('reuse records and withdrawn consents', async (t) => {
    const store = (await makeStores(t)).reuseRecords
    await store.recordReuse('h'.repeat(64), 'D1', { requester: 'R', version: 1, dossierCode: 'X', procedureCode: 'P', at: 't' })
    await store.recordReuse('h'.repeat(64), 'D1', { requester: 'S', version: 2, dossierCode: 'Y', procedureCode: 'P', at: 't' })
    t.same((await store.reusesOf('h'.repeat(64), 'D1')).map((r) => r.requester), ['R', 'S'])
    t.same(await store.reusesOf('h'.repeat(64), 'D2'), [])
    t.equal(await store.consentRevoked('c1'), false)
    await store.revokeConsent('c1', 60_000)
    t.equal(await store.consentRevoked('c1'), true)
  })
  t.test('reuse counters: per day, summed over the days asked', async (t) => {
    const store = (await makeStores(t)).reuseRecords
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
