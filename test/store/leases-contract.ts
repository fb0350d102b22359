import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

/** The leases contract: a named lease held by one owner at a time, and claim-once markers (replay guards). */
export function leasesContract (t: Test, makeStores: StoresFactory): void {
  t.test('claimOnce: first claim wins, repeats lose until it expires, namespaces are separate', async (t) => {
    const store = (await makeStores(t)).leases
    t.equal(await store.claimOnce('assertion', 'jti-1', 60_000), true)
    t.equal(await store.claimOnce('assertion', 'jti-1', 60_000), false)
    t.equal(await store.claimOnce('download', 'jti-1', 60_000), true)
    t.equal(await store.claimOnce('assertion', 'short', 30), true)
    await new Promise((resolve) => setTimeout(resolve, 80))
    t.equal(await store.claimOnce('assertion', 'short', 30), true, 'claimable again once expired')
  })
  t.test('claimOnce: of many concurrent claims exactly one wins', async (t) => {
    const store = (await makeStores(t)).leases
    const results = await Promise.all(Array.from({ length: 50 }, async () => await store.claimOnce('assertion', 'race', 60_000)))
    t.equal(results.filter(Boolean).length, 1)
  })
  t.test('a lease is held by one owner at a time and renewed by it', async (t) => {
    const store = (await makeStores(t)).leases
    t.ok(await store.holdLease('fan-out', 'P1', 300))
    t.notOk(await store.holdLease('fan-out', 'P2', 300))
    t.ok(await store.holdLease('fan-out', 'P1', 300), 'renewed by its owner')
    await new Promise((resolve) => setTimeout(resolve, 350))
    t.ok(await store.holdLease('fan-out', 'P2', 300), 'free again once it lapsed')
  })

  t.test('a lease taken over once it lapsed belongs to the new owner; leases are named apart', async (t) => {
    const store = (await makeStores(t)).leases
    t.ok(await store.holdLease('fan-out', 'P1', 50))
    t.ok(await store.holdLease('delivery', 'P2', 60_000), 'another name is another lease')
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.ok(await store.holdLease('fan-out', 'P2', 60_000), 'stolen after its ttl')
    t.notOk(await store.holdLease('fan-out', 'P1', 60_000), 'the old owner cannot renew it')
    t.notOk(await store.holdLease('delivery', 'P1', 60_000))
  })

  t.test('of many processes racing for a free lease exactly one gets it', async (t) => {
    const store = (await makeStores(t)).leases
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await store.holdLease('race', `P${i}`, 60_000)))
    t.equal(results.filter(Boolean).length, 1)
  })
}
