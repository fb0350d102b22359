/**
 * How an audit event is stored in the `ev` hash: a MessagePack array whose place says what each
 * value is (no field names), ids and hashes as bytes (binary.ts), the action and outcome as small
 * numbers, and nothing that is known otherwise: the id is the hash field, and `time` is the
 * id's own ULID time (AuditService makes both from one clock reading; an event whose `time` says
 * otherwise keeps it). Whatever does not have the expected shape stays as it is, in `extra` or
 * as text, so an event always reads back exactly as it was appended, and its hash (canonical
 * JSON of that event) still verifies.
 *
 * Events stored by the earlier layout are JSON objects: they start with `{`, which a MessagePack
 * array never does (0x90–0x9f, 0xdc, 0xdd), and are still read.
 *
 * Layout 1: [1, chain, seq, actor, action, outcome, subject, documents, purpose, requestId,
 * clientAddress, detail, prevHash, hash, time, extra], trailing empty places left out; an empty
 * place is nil (the field is absent). A few bytes matter: a value of 253 bytes or more takes
 * Redis's next allocation class (320 instead of 256 bytes), so the usual shapes of purpose and
 * detail are stored without their field names.
 */
import { decodeTime } from 'ulid'
import type { StoredAuditEvent } from '../audit.js'
import { bytesToHex, compactHash, compactId, expandHash, expandId, isJson, isUlid, jsonPlain, pack, unpack } from './binary.js'

const LAYOUT = 1

/** Known actions and outcomes, stored as their place here: append only, never reorder (stored events refer to them). */
const ACTIONS = [
  'access.refused', 'agency.created', 'agency.keys_refreshed', 'agency.updated', 'agreement.created', 'agreement.updated',
  'attestation.verified', 'audit.checkpoints_read', 'audit.exported', 'audit.searched', 'audit.unconfirmed', 'audit.verified',
  'consent.revoked', 'document.amended', 'document.file_uploaded', 'document.index_failed', 'document.index_repeated',
  'document.indexed', 'document.revoked', 'document_type.changed', 'file.downloaded', 'portal.access_history',
  'portal.citizen_documents', 'reuse.queried', 'stats.read', 'token.issued', 'token.refused', 'webhook.dead',
  'webhook.delivered', 'webhook.failed', 'webhook.replay_requested'
]
const OUTCOMES = ['granted', 'empty', 'denied', 'error']
const ACTION_CODE = new Map(ACTIONS.map((action, i) => [action, i]))
const OUTCOME_CODE = new Map(OUTCOMES.map((outcome, i) => [outcome, i]))

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/

/** the fields an event's places hold; any other goes to `extra` */
const PLACED = new Set(['id', 'chain', 'seq', 'actor', 'action', 'outcome', 'subject', 'documents', 'purpose', 'requestId', 'clientAddress', 'detail', 'prevHash', 'hash', 'time'])

/** a free-form value (detail, purpose, extra): as MessagePack when plain, else its JSON text */
const freeForm = (value: unknown): unknown => jsonPlain(value) && typeof value === 'object' && value !== null && !Array.isArray(value) ? value : JSON.stringify(value)
const fromFreeForm = (value: unknown): unknown => typeof value === 'string' ? JSON.parse(value) : value

/** documents as [id, version, id, version, …] (nil: no version), when each is exactly { id, version? } */
function packDocuments (documents: unknown): unknown[] | undefined {
  if (!Array.isArray(documents)) return undefined
  const out: unknown[] = []
  for (const document of documents as unknown[]) {
    if (typeof document !== 'object' || document === null || Array.isArray(document)) return undefined
    const { id, version, ...rest } = document as Record<string, unknown>
    if (typeof id !== 'string' || Object.values(rest).some((v) => v !== undefined)) return undefined
    if (version !== undefined && !Number.isSafeInteger(version)) return undefined
    out.push(compactId(id), version ?? null)
  }
  return out
}

function unpackDocuments (packed: unknown[]): Array<{ id: string, version?: number }> {
  const out: Array<{ id: string, version?: number }> = []
  for (let i = 0; i < packed.length; i += 2) {
    const version = packed[i + 1]
    out.push({ id: expandId(packed[i] as Buffer | string), ...(version === null || version === undefined ? {} : { version: version as number }) })
  }
  return out
}

/** the ISO time of a ULID's timestamp: what AuditService writes as an event's `time` */
function idTime (id: string): string | undefined {
  return isUlid(id) ? new Date(decodeTime(id)).toISOString() : undefined
}

/** The field an event is stored under in the `ev` hash (and its index members): its id as 16 bytes when a ULID. */
export function eventField (id: string): Buffer | string {
  return compactId(id)
}

export function encodeAuditEvent (event: StoredAuditEvent): Buffer {
  const e = event as Record<string, unknown>
  const extra: Record<string, unknown> = {}
  for (const key of Object.keys(e)) if (!PLACED.has(key) && e[key] !== undefined) extra[key] = e[key]
  // a place holds its field when it has the expected shape; otherwise the field goes to extra
  const place = (key: string, ok: boolean, packed: () => unknown): unknown => {
    if (e[key] === undefined) return null
    if (ok) return packed()
    extra[key] = e[key]
    return null
  }
  const str = (key: string): boolean => typeof e[key] === 'string'
  const documents = packDocuments(e.documents)
  const time = idTime(event.id)
  const tuple = [
    LAYOUT,
    place('chain', str('chain'), () => compactId(e.chain as string)),
    place('seq', Number.isSafeInteger(e.seq), () => e.seq),
    // null (the gateway itself) as false: nil is "absent"
    place('actor', str('actor') || e.actor === null, () => e.actor ?? false),
    place('action', str('action'), () => ACTION_CODE.get(e.action as string) ?? e.action),
    place('outcome', str('outcome'), () => OUTCOME_CODE.get(e.outcome as string) ?? e.outcome),
    place('subject', str('subject'), () => compactHash(e.subject as string)),
    place('documents', documents !== undefined, () => documents),
    place('purpose', true, () => {
      const purpose = e.purpose as Record<string, unknown>
      // the usual { procedureCode, dossierCode } as a pair of strings, without its names
      const keys = jsonPlain(purpose) && typeof purpose === 'object' && purpose !== null ? Object.keys(purpose) : []
      return keys.length === 2 && keys[0] === 'procedureCode' && keys[1] === 'dossierCode' && typeof purpose.procedureCode === 'string' && typeof purpose.dossierCode === 'string'
        ? [purpose.procedureCode, purpose.dossierCode]
        : freeForm(purpose)
    }),
    place('requestId', str('requestId'), () => UUID.test(e.requestId as string) ? Buffer.from((e.requestId as string).replaceAll('-', ''), 'hex') : e.requestId),
    place('clientAddress', str('clientAddress'), () => IPV4.test(e.clientAddress as string) ? Buffer.from((e.clientAddress as string).split('.').map(Number)) : e.clientAddress),
    // the usual { type } (an indexing) as [type]: a free-form detail is otherwise never an array
    place('detail', true, () => {
      const detail = e.detail as Record<string, unknown>
      return typeof detail === 'object' && detail !== null && !Array.isArray(detail) && Object.getPrototypeOf(detail) === Object.prototype &&
        Object.keys(detail).length === 1 && typeof detail.type === 'string' ? [detail.type] : freeForm(detail)
    }),
    place('prevHash', str('prevHash'), () => compactHash(e.prevHash as string)),
    place('hash', str('hash'), () => compactHash(e.hash as string)),
    // kept only when it is not the id's own time
    e.time === undefined ? null : e.time === time ? true : (extra.time = e.time, null),
    null
  ]
  if (Object.keys(extra).length) tuple[15] = freeForm(extra)
  // trailing nils say nothing
  while (tuple[tuple.length - 1] === null) tuple.pop()
  return pack(tuple)
}

/** an `ev` value, of either layout, back to the event stored under `id` */
export function decodeAuditEvent (id: string, value: Buffer): StoredAuditEvent {
  if (isJson(value)) return JSON.parse(value.toString('utf8')) as StoredAuditEvent
  const t = unpack<unknown[]>(value)
  if (t[0] !== LAYOUT) throw new TypeError(`unknown audit event layout ${String(t[0])}`)
  const event: Record<string, unknown> = { id }
  const at = (i: number): unknown => t[i] ?? null
  if (at(1) !== null) event.chain = expandId(t[1] as Buffer | string)
  if (at(2) !== null) event.seq = t[2]
  if (at(14) === true) event.time = idTime(id)
  if (at(3) !== null) event.actor = t[3] === false ? null : t[3]
  if (at(4) !== null) event.action = typeof t[4] === 'number' ? ACTIONS[t[4]] : t[4]
  if (at(5) !== null) event.outcome = typeof t[5] === 'number' ? OUTCOMES[t[5]] : t[5]
  if (at(6) !== null) event.subject = expandHash(t[6] as Buffer | string)
  if (at(7) !== null) event.documents = unpackDocuments(t[7] as unknown[])
  if (at(8) !== null) event.purpose = Array.isArray(t[8]) ? { procedureCode: t[8][0], dossierCode: t[8][1] } : fromFreeForm(t[8])
  if (at(9) !== null) {
    const r = t[9]
    event.requestId = typeof r === 'string' ? r : bytesToHex(r as Uint8Array).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
  }
  if (at(10) !== null) event.clientAddress = typeof t[10] === 'string' ? t[10] : [...(t[10] as Uint8Array)].join('.')
  if (at(11) !== null) event.detail = Array.isArray(t[11]) ? { type: t[11][0] } : fromFreeForm(t[11])
  if (at(12) !== null) event.prevHash = expandHash(t[12] as Buffer | string)
  if (at(13) !== null) event.hash = expandHash(t[13] as Buffer | string)
  if (at(15) !== null) Object.assign(event, fromFreeForm(t[15]))
  return event as StoredAuditEvent
}
