import t from 'tap'
import { decodeTime, monotonicFactory } from 'ulid'
import { decodeAuditEvent, encodeAuditEvent } from '../../src/store/redis/codec-audit.js'
import type { StoredAuditEvent } from '../../src/store/index.js'

/** An audit event reads back exactly as JSON would have kept it, whatever its shape; only its size changes. */
const ulid = monotonicFactory()
const asJson = (event: unknown): unknown => JSON.parse(JSON.stringify(event))
const roundTrip = (event: Record<string, unknown>): unknown => decodeAuditEvent(event.id as string, encodeAuditEvent(event as StoredAuditEvent))

const id = ulid()
const indexing = {
  id,
  chain: ulid(),
  seq: 653,
  time: new Date(decodeTime(id)).toISOString(),
  actor: '000.00.12.H41',
  action: 'document.indexed',
  outcome: 'granted',
  subject: 'aac4712cf20c1803577bb0fce90163edcd723e3ef48fd00a9c16e255f8932d42',
  documents: [{ id: ulid(), version: 1 }],
  purpose: { procedureCode: '1.002809', dossierCode: '000.00.11.H48-250407-0693' },
  requestId: 'a1187f54-b455-4e7f-a893-07d2a773adea',
  clientAddress: '127.0.0.1',
  detail: { type: 'giay-phep-lai-xe' },
  prevHash: '11283192e315b2c37764a9b2dc9849e4884f6cb4e25433f3ad57a113cdc6b44c',
  hash: '51138eefdc54ea370a264b58a38d0f00cbcb67230d84f3fd82941d96d2a319e4'
}

t.test('an indexing event: the same event back, in a third of its JSON size, never starting like JSON', async (t) => {
  const stored = encodeAuditEvent(indexing)
  t.same(roundTrip(indexing), indexing)
  t.same(Object.keys(roundTrip(indexing) as object), Object.keys(indexing), 'fields in the order the audit service writes them')
  t.ok(stored.length < JSON.stringify(indexing).length / 2.5, `${stored.length} bytes`)
  t.not(stored[0], 0x7b)
})

t.test('whatever does not have the usual shape is kept as it is', async (t) => {
  const odd: Array<Record<string, unknown>> = [
    { ...indexing, actor: null, detail: { type: 'x', more: [1, 2.5, null, true, { deep: 'Sở Tư pháp' }] } },
    { ...indexing, id: 'X1', chain: 'C1', subject: 's1', documents: [{ id: 'D1' }, { id: 'D1', version: 2 }], time: '2026-01-01T00:00:00.000Z' },
    { ...indexing, time: '2020-01-01T00:00:00.000Z', subject: 'AB'.repeat(32), prevHash: 'short', hash: 'f'.repeat(63) },
    { ...indexing, requestId: 'req-1', clientAddress: '::ffff:10.0.0.1', purpose: { dossierCode: 'b', procedureCode: 'a' }, action: 'something.new', outcome: 'other' },
    { ...indexing, clientAddress: '010.0.0.1', detail: { at: new Date(0), gone: undefined }, extra: { field: 1 }, other: 'kept' },
    { ...indexing, documents: [{ id: 'D1', version: 1, note: 'x' }], purpose: { procedureCode: 'a' }, detail: { type: 7 } },
    { id, chain: 'C1', seq: 1, prevHash: '0'.repeat(64), hash: 'a'.repeat(64), actor: 'A', detail: { __proto__: null, type: 'y' } },
    { id, chain: 'C1', seq: 1.5, prevHash: '0'.repeat(64), hash: 'a'.repeat(64), actor: 'A', subject: '', documents: [] }
  ]
  for (const event of odd) t.same(roundTrip(event), asJson(event), JSON.stringify(event).slice(0, 80))
})

t.test('an event recorded in a trace keeps its trace and span ids, fields the layout has no place for', async (t) => {
  const traced = { ...indexing, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' }
  t.same(roundTrip(traced), traced)
  t.same(roundTrip({ ...indexing, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }), { ...indexing, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }, 'a trace id alone too')
})

t.test('an event of the earlier layout (JSON) is read as it is', async (t) => {
  t.same(decodeAuditEvent(id, Buffer.from(JSON.stringify(indexing))), indexing)
})
