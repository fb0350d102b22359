import type { Test } from 'tap'
import type { StoresFactory } from './stores-contract.js'

const T0 = Date.parse('2026-11-25T03:00:00Z')

function auditEvent (id: string, seq: number, prevHash: string) {
  return { id, chain: 'C1', seq, prevHash, hash: `h${seq}`.padEnd(64, '0'), actor: 'A', action: 'document.revoked', outcome: 'granted', time: new Date(T0).toISOString() }
}

// what a body is rebuilt from later: the document, with the status and latest version when published
const event = (doc: string, version: number, kind: string, status = 'valid') => ({
  id: `${doc}.${version}.${kind}`, type: `document.${kind}` as 'document.indexed', documentId: doc, version, published: { status, latestVersion: version }
})

/**
 * The outbox contract: sources (queued by announcing audit events, in the same write),
 * publication (once per event id), leased deliveries in order per destination and document,
 * settlement, replay and counts.
 */
export function outboxContract (t: Test, makeStores: StoresFactory): void {
  t.test('an announced audit event queues its source atomically', async (t) => {
    const stores = await makeStores(t)
    const store = stores.outbox
    t.ok(await stores.audit.appendAuditEvent(auditEvent('E1', 1, '0'.repeat(64)), { announce: true }))
    t.ok(await stores.audit.appendAuditEvent(auditEvent('E2', 2, 'h1'.padEnd(64, '0')), {}), 'an event that announces nothing')
    t.same(await store.dueOutboxSources(T0 - 1, 10), [], 'not due before the event time')
    t.same(await store.dueOutboxSources(T0, 10), ['a:E1'], 'only the announcing event is a source')
    t.same(await store.dueOutboxSources(T0, 10), ['a:E1'], 'reading leaves it where it is')
    await store.scheduleOutboxSource('x:D1:1', T0 + 5000)
    await store.scheduleOutboxSource('x:D0:1', T0 - 5000)
    t.same(await store.dueOutboxSources(T0 + 5000, 10), ['x:D0:1', 'a:E1', 'x:D1:1'], 'oldest first')
    t.same(await store.dueOutboxSources(T0 + 5000, 2), ['x:D0:1', 'a:E1'], 'at most the limit')
    await store.dropOutboxSource('a:E1')
    t.same(await store.dueOutboxSources(T0 + 9000, 10), ['x:D0:1', 'x:D1:1'])
  })
  t.test('an event is published once, with its deliveries and schedule, and its source dropped', async (t) => {
    const store = (await makeStores(t)).outbox
    await store.scheduleOutboxSource('a:E1', T0)
    const first = await store.publishOutboxEvent('a:E1', event('D1', 1, 'indexed'), [{ destination: 'portal', extra: { subject: { kind: 'citizen', id: 'x' } } }, { destination: 'agency:A' }], [{ source: 'x:D1:1', at: T0 + 60_000 }], T0)
    t.equal(first?.cursor, 1)
    t.same(await store.dueOutboxSources(T0 + 1000, 10), [], 'the source is gone, the expiry not yet due')
    t.same(await store.dueOutboxSources(T0 + 60_000, 10), ['x:D1:1'])
    t.match(await store.outboxEvent('D1.1.indexed'), { id: 'D1.1.indexed', cursor: 1, documentId: 'D1', type: 'document.indexed' })
    t.equal(await store.outboxEvent('D1.2.amended'), undefined)
    await store.scheduleOutboxSource('a:E9', T0)
    t.equal(await store.publishOutboxEvent('a:E9', event('D1', 1, 'indexed'), [{ destination: 'portal' }], [], T0), undefined, 'the same fact again is not published twice')
    t.same(await store.dueOutboxSources(T0 + 1000, 10), [], 'and its source is dropped all the same')
    const claimed = await store.claimOutboxDeliveries(T0, 5000, 10, 'L1')
    t.same(claimed.map((c) => c.delivery.destination).sort(), ['agency:A', 'portal'])
    const portal = claimed.find((c) => c.delivery.destination === 'portal')
    t.same(portal?.delivery.extra, { subject: { kind: 'citizen', id: 'x' } })
    t.match(portal, { delivery: { eventId: 'D1.1.indexed', cursor: 1, state: 'queued', attempts: 0, documentId: 'D1' }, event: { id: 'D1.1.indexed', cursor: 1, type: 'document.indexed', documentId: 'D1', version: 1, published: { status: 'valid', latestVersion: 1 } } })
    t.same(await store.outboxStatus(), [{ destination: 'agency:A', queued: 1, delivered: 0, dead: 0, oldestQueuedAt: new Date(T0).toISOString() }, { destination: 'portal', queued: 1, delivered: 0, dead: 0, oldestQueuedAt: new Date(T0).toISOString() }])
  })
  t.test('deliveries go one at a time per destination and document, in cursor order, under a lease', async (t) => {
    const store = (await makeStores(t)).outbox
    await store.publishOutboxEvent(undefined, event('D1', 1, 'indexed'), [{ destination: 'portal' }], [], T0)
    await store.publishOutboxEvent(undefined, event('D2', 1, 'indexed'), [{ destination: 'portal' }], [], T0)
    await store.publishOutboxEvent(undefined, event('D1', 2, 'amended'), [{ destination: 'portal' }], [], T0)
    await store.publishOutboxEvent(undefined, event('D1', 2, 'revoked'), [{ destination: 'portal' }], [], T0)
    const first = await store.claimOutboxDeliveries(T0, 5000, 10, 'L1')
    t.same(first.map((c) => c.event.id).sort(), ['D1.1.indexed', 'D2.1.indexed'], 'a later event of D1 waits for the earlier one')
    t.same(await store.claimOutboxDeliveries(T0 + 4999, 5000, 10, 'L2'), [], 'leased deliveries are not handed to a second worker')
    t.equal(await store.settleOutboxDelivery('portal', 'D1.1.indexed', 'L2', { state: 'delivered', at: 'now' }, T0), false, 'only the lease holder settles')
    t.ok(await store.settleOutboxDelivery('portal', 'D1.1.indexed', 'L1', { state: 'retry', nextAttemptAt: T0 + 2000, error: 'HTTP 500' }, T0))
    t.same(await store.claimOutboxDeliveries(T0 + 1999, 5000, 10, 'L1'), [], 'a retry waits for its time, and D1 waits with it')
    const retried = await store.claimOutboxDeliveries(T0 + 2000, 5000, 10, 'L3')
    t.same(retried.map((c) => [c.event.id, c.delivery.attempts, c.delivery.lastError]), [['D1.1.indexed', 1, 'HTTP 500']])
    t.ok(await store.settleOutboxDelivery('portal', 'D1.1.indexed', 'L3', { state: 'delivered', at: 'then' }, T0 + 2100))
    t.same((await store.claimOutboxDeliveries(T0 + 2100, 5000, 10, 'L4')).map((c) => c.event.id), ['D1.2.amended'], 'the next event of D1 is due once the first is settled')
    t.ok(await store.settleOutboxDelivery('portal', 'D1.2.amended', 'L4', { state: 'dead', at: 'then', error: 'gave up' }, T0 + 2200))
    t.same((await store.claimOutboxDeliveries(T0 + 2200, 5000, 10, 'L5')).map((c) => c.event.id), ['D1.2.revoked'], 'a dead delivery lets the queue go on')
    t.same(await store.outboxStatus(), [{ destination: 'portal', queued: 2, delivered: 1, dead: 1, oldestQueuedAt: new Date(T0).toISOString() }])
    const listed = await store.outboxDeliveries('portal', 0, 10)
    t.same(listed.map((d) => [d.eventId, d.state, d.attempts]), [['D1.1.indexed', 'delivered', 2], ['D2.1.indexed', 'queued', 0], ['D1.2.amended', 'dead', 1], ['D1.2.revoked', 'queued', 0]])
    t.same((await store.outboxDeliveries('portal', 2, 1)).map((d) => d.eventId), ['D1.2.amended'], 'listed from a cursor')
  })
  t.test('replay queues settled deliveries after a cursor again, page by page', async (t) => {
    const store = (await makeStores(t)).outbox
    for (let i = 1; i <= 5; i++) await store.publishOutboxEvent(undefined, event(`D${i}`, 1, 'indexed'), [{ destination: 'portal' }], [], T0)
    for (const c of await store.claimOutboxDeliveries(T0, 5000, 10, 'L')) await store.settleOutboxDelivery('portal', c.event.id, 'L', { state: 'delivered', at: 'x' }, T0)
    t.same(await store.outboxStatus(), [{ destination: 'portal', queued: 0, delivered: 5, dead: 0 }])
    t.same(await store.replayOutbox('portal', 1, 2, T0 + 10), { requeued: 2, next: 3 })
    t.same(await store.replayOutbox('portal', 3, 2, T0 + 10), { requeued: 2, next: 5 })
    t.same(await store.replayOutbox('portal', 5, 2, T0 + 10), { requeued: 0 })
    t.same(await store.outboxStatus(), [{ destination: 'portal', queued: 4, delivered: 1, dead: 0, oldestQueuedAt: new Date(T0 + 10).toISOString() }], 'a replayed delivery waits from when it was queued again')
    t.same((await store.claimOutboxDeliveries(T0 + 10, 5000, 10, 'M')).map((c) => [c.event.id, c.delivery.attempts]).sort(), [['D2.1.indexed', 0], ['D3.1.indexed', 0], ['D4.1.indexed', 0], ['D5.1.indexed', 0]])
    t.same(await store.replayOutbox('portal', 0, 10, T0 + 20), { requeued: 1 }, 'deliveries still queued are left alone')
    t.same(await store.replayOutbox('agency:NOBODY', 0, 10, T0), { requeued: 0 })
  })
  t.test('the status tells how long the oldest queued delivery of each destination has waited', async (t) => {
    const store = (await makeStores(t)).outbox
    t.same(await store.outboxStatus(), [], 'nothing queued, nothing to tell')
    await store.publishOutboxEvent(undefined, event('D1', 1, 'indexed'), [{ destination: 'portal' }, { destination: 'agency:A' }], [], T0)
    await store.publishOutboxEvent(undefined, event('D2', 1, 'indexed'), [{ destination: 'portal' }], [], T0 + 1000)
    await store.publishOutboxEvent(undefined, event('D1', 2, 'amended'), [{ destination: 'portal' }], [], T0 + 2000)
    const oldest = async (): Promise<Record<string, string | undefined>> => Object.fromEntries((await store.outboxStatus()).map((s) => [s.destination, s.oldestQueuedAt]))
    t.same(await oldest(), { 'agency:A': new Date(T0).toISOString(), portal: new Date(T0).toISOString() })
    const claimed = await store.claimOutboxDeliveries(T0 + 3000, 5000, 10, 'L')
    t.ok(await store.settleOutboxDelivery('portal', 'D1.1.indexed', 'L', { state: 'retry', nextAttemptAt: T0 + 4000, error: 'HTTP 503' }, T0 + 3000))
    t.same(await oldest(), { 'agency:A': new Date(T0).toISOString(), portal: new Date(T0).toISOString() }, 'a retried delivery is still waiting, since it was first queued')
    t.ok(await store.settleOutboxDelivery('agency:A', 'D1.1.indexed', 'L', { state: 'dead', at: 'then', error: 'gave up' }, T0 + 3000))
    t.ok(await store.settleOutboxDelivery('portal', 'D2.1.indexed', 'L', { state: 'delivered', at: 'then' }, T0 + 3000))
    t.same(await oldest(), { 'agency:A': undefined, portal: new Date(T0).toISOString() }, 'a dead letter waits no more; a delivered one neither')
    t.equal(claimed.length, 3)
    t.same((await store.claimOutboxDeliveries(T0 + 4000, 5000, 10, 'M')).map((c) => c.event.id), ['D1.1.indexed'])
    t.ok(await store.settleOutboxDelivery('portal', 'D1.1.indexed', 'M', { state: 'delivered', at: 'then' }, T0 + 4000))
    t.same(await oldest(), { 'agency:A': undefined, portal: new Date(T0 + 2000).toISOString() }, 'the next oldest queued is the one that waited longest')
    t.same(await store.replayOutbox('agency:A', 0, 10, T0 + 5000), { requeued: 1 })
    t.same(await oldest(), { 'agency:A': new Date(T0 + 5000).toISOString(), portal: new Date(T0 + 2000).toISOString() }, 'a replayed dead letter waits from its replay')
  })
  t.test('an event reads back with what held when it was published, whatever its document id', async (t) => {
    const store = (await makeStores(t)).outbox
    const ulidDoc = '01J00000EE0000000000000001'
    const statuses = ['valid', 'pending', 'expired', 'revoked', 'superseded']
    for (const [i, status] of statuses.entries()) {
      const published = await store.publishOutboxEvent(undefined, { ...event(ulidDoc, i + 1, 'amended', status), published: { status, latestVersion: 7 } }, [{ destination: 'portal' }], [], T0)
      t.same(await store.outboxEvent(`${ulidDoc}.${i + 1}.amended`), published)
    }
    t.same(await store.outboxEvent(`${ulidDoc}.1.amended`), { id: `${ulidDoc}.1.amended`, cursor: 1, type: 'document.amended', documentId: ulidDoc, version: 1, published: { status: 'valid', latestVersion: 7 } })
    t.equal(await store.publishOutboxEvent(undefined, event(ulidDoc, 1, 'amended'), [{ destination: 'portal' }], [], T0), undefined, 'published once')
    t.equal(await store.outboxEvent(`${ulidDoc}.1.revoked`), undefined, 'another kind is another event')
    const claimed = await store.claimOutboxDeliveries(T0, 5000, 10, 'L')
    t.same(claimed.map((c) => c.event), [await store.outboxEvent(`${ulidDoc}.1.amended`)], 'one at a time per document')
  })
  t.test('an event keeps the trace of the change it announces, for its deliveries to continue', async (t) => {
    const store = (await makeStores(t)).outbox
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const published = await store.publishOutboxEvent(undefined, { ...event('01J00000EE0000000000000002', 1, 'indexed'), traceparent }, [{ destination: 'portal' }], [], T0)
    t.equal(published?.traceparent, traceparent)
    t.equal((await store.outboxEvent('01J00000EE0000000000000002.1.indexed'))?.traceparent, traceparent)
    const [claimed] = await store.claimOutboxDeliveries(T0, 5000, 10, 'L')
    t.equal(claimed?.event.traceparent, traceparent, 'a claimed delivery has it')
    await store.publishOutboxEvent(undefined, event('D9', 1, 'indexed'), [{ destination: 'portal' }], [], T0)
    t.equal((await store.outboxEvent('D9.1.indexed'))?.traceparent, undefined, 'an event of an untraced change has none')
  })
}
