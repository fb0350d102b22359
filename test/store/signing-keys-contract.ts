import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

/** The signing keys contract: one key set, replaced only by compare-and-set on its revision. */
export function signingKeysContract (t: Test, makeStores: StoresFactory): void {
  t.test('signing keys: compare-and-set by revision', async (t) => {
    const store = (await makeStores(t)).signingKeys
    t.equal(await store.getSigningKeys(), undefined)
    t.equal(await store.putSigningKeys([{ kid: 'a' }], 1), false, 'cannot update what does not exist')
    t.equal(await store.putSigningKeys([{ kid: 'a' }], 0), true)
    t.equal(await store.putSigningKeys([{ kid: 'b' }], 0), false, 'a second creator loses')
    t.same(await store.getSigningKeys(), { revision: 1, keys: [{ kid: 'a' }] })
    t.equal(await store.putSigningKeys([{ kid: 'c' }, { kid: 'a' }], 1), true)
    t.same(await store.getSigningKeys(), { revision: 2, keys: [{ kid: 'c' }, { kid: 'a' }] })
  })

  t.test('signing keys: of many rotations racing from the same revision exactly one wins', async (t) => {
    const store = (await makeStores(t)).signingKeys
    t.ok(await store.putSigningKeys([{ kid: 'a' }], 0))
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await store.putSigningKeys([{ kid: `r${i}` }, { kid: 'a' }], 1)))
    t.equal(results.filter(Boolean).length, 1)
    const winner = results.indexOf(true)
    t.same(await store.getSigningKeys(), { revision: 2, keys: [{ kid: `r${winner}` }, { kid: 'a' }] })
  })

  t.test('signing keys: the set read back is a copy, not shared state', async (t) => {
    const store = (await makeStores(t)).signingKeys
    const keys = [{ kid: 'a', use: 'sig' }]
    await store.putSigningKeys(keys, 0)
    keys.push({ kid: 'changed-after', use: 'sig' })
    const read = await store.getSigningKeys()
    read?.keys.push({ kid: 'b' })
    t.same(await store.getSigningKeys(), { revision: 1, keys: [{ kid: 'a', use: 'sig' }] })
  })
}
