import type { Test } from 'tap'
import type { StoredAuditEvent } from '../../src/store/index.js'
import type { StoresFactory } from './stores-contract.js'

/**
 * The audit contract, run against the embedded store and a real Redis. The
 * store knows nothing of hashing: it keeps events, refuses anything that would fork or skip a
 * chain, and keeps the time indexes search and retention rely on exact.
 */

// ids sort by time like ULIDs: a fixed 10-character time part, then a counter
const idAt = (n: number): string => `01J00000AB${String(n).padStart(16, '0')}`
const hashOf = (chain: string, seq: number): string => `${Buffer.from(chain).toString('hex')}${seq.toString(16)}`.padStart(64, 'a')
const GENESIS = '0'.repeat(64)

interface Draft { actor?: string | null, subject?: string, documents?: Array<{ id: string, version?: number }> }

/** the events of one chain, linked (hashes are stand-ins: the store never recomputes them) */
function chainOf (chain: string, drafts: Draft[], firstId: number): StoredAuditEvent[] {
  return drafts.map((draft, i) => ({
    id: idAt(firstId + i),
    chain,
    seq: i + 1,
    prevHash: i === 0 ? GENESIS : hashOf(chain, i),
    hash: hashOf(chain, i + 1),
    actor: draft.actor ?? null,
    action: 'token.issued',
    outcome: 'granted',
    ...(draft.subject ? { subject: draft.subject } : {}),
    ...(draft.documents ? { documents: draft.documents } : {})
  }))
}

export function auditContract (t: Test, makeStores: StoresFactory): void {
  t.test('audit append: seq 1 starts a chain; only head + 1 with the head\'s hash extends it', async (t) => {
    const store = (await makeStores(t)).audit
    const [first, second, third] = chainOf('C1', [{}, {}, {}], 1) as [StoredAuditEvent, StoredAuditEvent, StoredAuditEvent]
    t.equal(await store.auditChainHead('C1'), undefined)
    t.equal(await store.appendAuditEvent(second), false, 'no seq 2 on an empty chain')
    t.equal(await store.appendAuditEvent(first), true)
    t.same(await store.auditChainHead('C1'), { seq: 1, hash: first.hash })
    t.equal(await store.appendAuditEvent({ ...first, id: idAt(99) }), false, 'no second seq 1')
    t.equal(await store.appendAuditEvent(third), false, 'no skipping a seq')
    t.equal(await store.appendAuditEvent({ ...second, prevHash: 'f'.repeat(64) }), false, 'no link to another hash')
    t.equal(await store.appendAuditEvent(second), true)
    t.equal(await store.appendAuditEvent(second), false, 'the same event twice is refused')
    t.same(await store.auditChainHead('C1'), { seq: 2, hash: second.hash })
    t.same(await store.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 10 }), [first.id, second.id],
      'refused appends left nothing behind')
    t.same(await store.auditEvents([idAt(99)]), [])
  })
  t.test('audit append: of many writers racing for the same position exactly one wins', async (t) => {
    const store = (await makeStores(t)).audit
    const [first] = chainOf('C1', [{}], 1) as [StoredAuditEvent]
    await store.appendAuditEvent(first)
    const rivals = Array.from({ length: 20 }, (_, i) => ({ ...first, id: idAt(10 + i), seq: 2, prevHash: first.hash, hash: `${i}`.padStart(64, 'b') }))
    const results = await Promise.all(rivals.map(async (event) => await store.appendAuditEvent(event)))
    t.equal(results.filter(Boolean).length, 1)
    const winner = rivals[results.indexOf(true)] as StoredAuditEvent
    t.same(await store.auditChainHead('C1'), { seq: 2, hash: winner.hash })
    t.same((await store.auditChainSlice('C1', 1, 10)).map((e) => e.id), [first.id, winner.id])
  })
  t.test('audit chains are independent and listed in id order', async (t) => {
    const store = (await makeStores(t)).audit
    for (const event of chainOf('C2', [{}, {}], 10)) t.equal(await store.appendAuditEvent(event), true)
    for (const event of chainOf('C1', [{}], 20)) t.equal(await store.appendAuditEvent(event), true)
    t.same(await store.auditChains(), ['C1', 'C2'])
    t.same(await store.auditChainHead('C2'), { seq: 2, hash: hashOf('C2', 2) })
    t.same(await store.auditChainHead('C1'), { seq: 1, hash: hashOf('C1', 1) })
  })
  t.test('audit events are read back unchanged, in the order asked, missing ones left out', async (t) => {
    const store = (await makeStores(t)).audit
    const events = chainOf('C1', [{ actor: 'A', subject: 's1', documents: [{ id: 'D1', version: 2 }] }, {}, {}], 1)
    for (const event of events) await store.appendAuditEvent({ ...event, detail: { note: 'Sở Tư pháp', n: 1 }, purpose: { procedureCode: '1.001193' } })
    const read = await store.auditEvents([idAt(3), idAt(42), idAt(1)])
    t.same(read.map((e) => e.id), [idAt(3), idAt(1)])
    t.same(read[1], { ...events[0], detail: { note: 'Sở Tư pháp', n: 1 }, purpose: { procedureCode: '1.001193' } })
    t.same((await store.auditChainSlice('C1', 2, 10)).map((e) => e.seq), [2, 3], 'a slice stops at the head')
    t.same(await store.auditChainSlice('C9', 1, 10), [])
  })
  t.test('audit indexes: per agency, subject and document, bounded by id, either direction', async (t) => {
    const store = (await makeStores(t)).audit
    const drafts: Draft[] = Array.from({ length: 12 }, (_, i) => ({
      actor: i % 2 === 0 ? 'A' : 'B',
      ...(i % 3 === 0 ? { subject: 's1' } : {}),
      // the same document twice in one event is one index entry
      documents: i % 4 === 0 ? [{ id: 'D1', version: 1 }, { id: 'D1', version: 2 }] : [{ id: `X${i}` }]
    }))
    for (const event of chainOf('C1', drafts, 1)) await store.appendAuditEvent(event)
    const page = async (index: Parameters<typeof store.auditIndexPage>[0]['index'], extra: { fromId?: string, toId?: string, newestFirst?: boolean, count?: number } = {}): Promise<string[]> =>
      await store.auditIndexPage({ index, newestFirst: extra.newestFirst ?? true, count: extra.count ?? 100, ...(extra.fromId ? { fromId: extra.fromId } : {}), ...(extra.toId ? { toId: extra.toId } : {}) })
    t.same(await page({ kind: 'agency', value: 'A' }), [11, 9, 7, 5, 3, 1].map(idAt), 'newest first')
    t.same(await page({ kind: 'agency', value: 'B' }, { newestFirst: false }), [2, 4, 6, 8, 10, 12].map(idAt), 'oldest first')
    t.same(await page({ kind: 'subject', value: 's1' }), [10, 7, 4, 1].map(idAt))
    t.same(await page({ kind: 'document', value: 'D1' }), [9, 5, 1].map(idAt))
    t.same(await page({ kind: 'agency', value: 'nobody' }), [])
    t.same(await page({ kind: 'all' }, { fromId: idAt(4), toId: idAt(8) }), [7, 6, 5, 4].map(idAt), 'from inclusive, to exclusive')
    t.same(await page({ kind: 'all' }, { fromId: idAt(4), toId: idAt(8), newestFirst: false, count: 2 }), [4, 5].map(idAt))
    t.same(await page({ kind: 'all' }, { toId: idAt(8), count: 2 }), [7, 6].map(idAt), 'a page resumes below its last id')
    // a time-only bound (an id's 10-character time part) takes every id of that instant or later
    t.same(await page({ kind: 'agency', value: 'A' }, { fromId: idAt(1).slice(0, 10), count: 1, newestFirst: false }), [idAt(1)])
  })
  t.test('audit history index: a subject\'s visible accesses only; hidden ones move in from their day on, and retention removes them wherever they are', async (t) => {
    const store = (await makeStores(t)).audit
    const access = (detail: Record<string, unknown>, outcome = 'granted', action = 'reuse.queried') => ({ actor: 'A', subject: 's1', action, outcome, detail })
    const drafts = [
      access({}), // 1 seen at once
      access({ hidden: true, hiddenUntil: '2027-03-01' }), // 2
      access({}, 'empty'), // 3 released nothing
      access({ hidden: true, hiddenUntil: '2027-01-15' }), // 4
      access({}, 'granted', 'portal.access_history'), // 5 not an access
      access({ hidden: true, hiddenUntil: 'someday' }), // 6 no readable date: never shown
      access({ hidden: true, hiddenUntil: '2027-01-15' }), // 7
      access({}) // 8
    ]
    const events = chainOf('C1', drafts.map(({ actor, subject }) => ({ actor, subject })), 1)
      .map((event, i) => ({ ...event, action: drafts[i]?.action, outcome: drafts[i]?.outcome, detail: drafts[i]?.detail }))
    for (const event of events) t.equal(await store.appendAuditEvent(event), true)
    const history = async (): Promise<string[]> => await store.auditIndexPage({ index: { kind: 'history', value: 's1' }, newestFirst: true, count: 100 })
    t.same(await history(), [8, 1].map(idAt))
    t.equal(await store.revealAuditHistory('s1', '2027-01-14', 10), 0, 'nothing due the day before')
    t.equal(await store.revealAuditHistory('s2', '2099-12-31', 10), 0, 'another subject\'s history is its own')
    t.equal(await store.revealAuditHistory('s1', '2027-01-15', 1), 1, 'at most as many as asked')
    t.equal(await store.revealAuditHistory('s1', '2027-01-15', 10), 1)
    t.same(await history(), [8, 7, 4, 1].map(idAt), 'in their place in time')
    t.equal(await store.revealAuditHistory('s1', '2099-12-31', 10), 1)
    t.same(await history(), [8, 7, 4, 2, 1].map(idAt))
    t.equal(await store.pruneAudit({ C1: 3 }), 3)
    t.same(await history(), [8, 7, 4].map(idAt), 'retention removes revealed ones too')
    t.same(await store.auditIndexPage({ index: { kind: 'subject', value: 's1' }, newestFirst: true, count: 100 }), [8, 7, 6, 5, 4].map(idAt), 'the subject index keeps them all')
  })
  t.test('audit history index: retention removes hidden accesses not yet revealed', async (t) => {
    const store = (await makeStores(t)).audit
    const events = chainOf('C1', [{ actor: 'A', subject: 's1' }, { actor: 'A', subject: 's1' }], 1)
      .map((event) => ({ ...event, action: 'reuse.queried', outcome: 'granted', detail: { hidden: true, hiddenUntil: '2027-01-15' } }))
    for (const event of events) await store.appendAuditEvent(event)
    t.equal(await store.pruneAudit({ C1: 1 }), 1)
    t.equal(await store.revealAuditHistory('s1', '2099-12-31', 10), 1, 'only the kept one is left to reveal')
    t.same(await store.auditIndexPage({ index: { kind: 'history', value: 's1' }, newestFirst: true, count: 100 }), [idAt(2)])
  })
  t.test('audit checkpoints are kept in order, as copies', async (t) => {
    const store = (await makeStores(t)).audit
    t.same(await store.auditCheckpoints(), [])
    const cp = (n: number): { time: string, jws: string, chains: Array<{ chain: string, seq: number, hash: string }> } =>
      ({ time: `2026-01-01T00:00:0${n}.000Z`, jws: `h.p${n}.s`, chains: [{ chain: 'C1', seq: n, hash: hashOf('C1', n) }] })
    await store.putAuditCheckpoint(cp(1))
    await store.putAuditCheckpoint(cp(2))
    const read = await store.auditCheckpoints()
    t.same(read, [cp(1), cp(2)])
    read[0]?.chains.push({ chain: 'X', seq: 1, hash: 'x' })
    t.same((await store.auditCheckpoints())[0], cp(1))
  })
  t.test('audit retention removes a chain\'s oldest events and their index entries, nothing else', async (t) => {
    const store = (await makeStores(t)).audit
    for (const event of chainOf('C1', Array.from({ length: 6 }, (_, i) => ({ actor: 'A', subject: `s${i % 2}`, documents: [{ id: `D${i}` }] })), 1)) await store.appendAuditEvent(event)
    for (const event of chainOf('C2', [{ actor: 'A' }, { actor: 'A' }], 20)) await store.appendAuditEvent(event)
    t.equal(await store.pruneAudit({ C1: 4 }), 4)
    t.same((await store.auditChainSlice('C1', 1, 10)).map((e) => e.seq), [5, 6])
    t.same(await store.auditEvents([idAt(1), idAt(4)]), [])
    t.same(await store.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 100 }), [5, 6, 20, 21].map(idAt))
    t.same(await store.auditIndexPage({ index: { kind: 'agency', value: 'A' }, newestFirst: false, count: 100 }), [5, 6, 20, 21].map(idAt))
    t.same(await store.auditIndexPage({ index: { kind: 'subject', value: 's1' }, newestFirst: false, count: 100 }), [6].map(idAt))
    t.same(await store.auditIndexPage({ index: { kind: 'document', value: 'D2' }, newestFirst: false, count: 100 }), [])
    t.same(await store.auditChainHead('C1'), { seq: 6, hash: hashOf('C1', 6) }, 'the head stays')
    t.equal(await store.pruneAudit({ C1: 4 }), 0, 'a second run finds nothing more')
    const [, , , , , , next] = chainOf('C1', Array.from({ length: 7 }, () => ({})), 30)
    t.equal(await store.appendAuditEvent(next as StoredAuditEvent), true, 'the chain goes on after retention')
  })
  t.test('audit archive bookkeeping: archived checkpoints trimmed oldest first, a mark that only rises, idle archived chains forgotten only while their head stays', async (t) => {
    const store = (await makeStores(t)).audit
    for (let n = 1; n <= 4; n++) await store.putAuditCheckpoint({ time: `2026-01-01T00:00:0${n}.000Z`, jws: `h.p${n}.s`, chains: [] })
    await store.pruneAuditCheckpoints(0)
    t.equal(await store.auditCheckpointCount(), 4)
    await store.pruneAuditCheckpoints(3)
    t.same((await store.auditCheckpoints()).map((cp) => cp.jws), ['h.p4.s'], 'the newest stays')

    t.equal(await store.auditArchiveMark(), undefined, 'nothing archived yet')
    await store.setAuditArchiveMark(idAt(5))
    await store.setAuditArchiveMark(idAt(3))
    t.equal(await store.auditArchiveMark(), idAt(5), 'a lower id leaves the mark where it is')
    await store.setAuditArchiveMark(idAt(9))
    t.equal(await store.auditArchiveMark(), idAt(9))

    const events = chainOf('C1', [{ actor: 'A' }, { actor: 'A' }], 1)
    for (const event of events) await store.appendAuditEvent(event)
    await store.pruneAudit({ C1: 2 })
    t.equal(await store.forgetAuditChain('C1', { seq: 1, hash: hashOf('C1', 1) }), false, 'not at its head: kept')
    t.same(await store.auditChains(), ['C1'])
    t.equal(await store.forgetAuditChain('C1', { seq: 2, hash: hashOf('C1', 2) }), true)
    t.same(await store.auditChains(), [])
    t.equal(await store.auditChainHead('C1'), undefined)
    t.equal(await store.forgetAuditChain('C1', { seq: 2, hash: hashOf('C1', 2) }), false, 'once')
  })
}
