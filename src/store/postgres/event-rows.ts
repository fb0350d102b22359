/**
 * An audit event as an archive row, and back. The fields searches and verification use are
 * columns; the rest of the event is JSON text (`body`). A field goes to its column, and out of the
 * body, only when the column gives it back exactly (a string PostgreSQL's text keeps as it is, a
 * time that is already its own ISO 8601 form, a safe integer): anything else stays in the body,
 * and the body wins on reading. So an event reads back deep-equal to what was archived, whatever
 * it holds, and the verifier's hash over it is the archiver's.
 */
import { historyVisibility } from '../audit-keys.js'
import type { StoredAuditEvent } from '../audit.js'
import { StatedError } from '../../lib/error-description.js'

/** the columns of audit_events, in the order rows are written */
export const EVENT_COLUMNS = ['seq', 'time', 'history_from', 'id', 'chain', 'actor', 'action', 'outcome', 'subject', 'prev_hash', 'hash', 'body'] as const

export type EventRow = Record<typeof EVENT_COLUMNS[number], string | null>

/** a row as read: pg gives bigint as text and timestamptz as a Date */
export interface StoredEventRow {
  id: string
  chain: string
  seq: string
  time: Date | null
  actor: string | null
  action: string | null
  outcome: string | null
  subject: string | null
  prev_hash: string
  hash: string
  body: string
}

/** the columns auditEvents and auditChainSlice read */
export const READ_COLUMNS = 'id, chain, seq, "time", actor, action, outcome, subject, prev_hash, hash, body'

/** a string text keeps exactly: no NUL (PostgreSQL refuses it) and no lone surrogate (UTF-8 cannot hold it) */
export function keepable (value: unknown): value is string {
  return typeof value === 'string' && !value.includes('\u0000') && value.isWellFormed()
}

/** a calendar day PostgreSQL reads as the same day */
function isDay (value: string): boolean {
  const time = Date.parse(`${value}T00:00:00Z`)
  return Number.isFinite(time) && new Date(time).toISOString().slice(0, 10) === value
}

/** fields that are columns, in the order an event is rebuilt (the audit service's order) */
const HEAD_FIELDS = ['id', 'chain', 'seq', 'time', 'actor', 'action', 'outcome', 'subject'] as const
const TAIL_FIELDS = ['prevHash', 'hash'] as const

function required (event: StoredAuditEvent, field: 'id' | 'chain' | 'prevHash' | 'hash'): string {
  const value = event[field]
  if (!keepable(value)) throw new StatedError(`an archived audit event needs a text ${field}`)
  return value
}

export function eventRow (event: StoredAuditEvent): EventRow {
  if (!Number.isSafeInteger(event.seq)) throw new StatedError('an archived audit event needs an integer seq')
  const body: Record<string, unknown> = { ...event }
  for (const field of ['id', 'chain', 'seq', 'prevHash', 'hash'] as const) delete body[field]
  const column = (field: 'actor' | 'action' | 'outcome' | 'subject'): string | null => {
    const value = event[field]
    if (!keepable(value)) return null
    delete body[field]
    return value
  }
  // the time column holds the event's time whenever it reads as one; the body keeps it unless exact
  const parsed = typeof event.time === 'string' ? Date.parse(event.time) : NaN
  const time = Number.isFinite(parsed) ? new Date(parsed).toISOString() : null
  if (time !== null && time === event.time) delete body.time
  const history = historyVisibility(event)
  // a hidden access with an impossible date is never shown (fail closed, as the hot tier would for one it cannot read)
  const historyFrom = history === 'visible' ? '-infinity' : history !== undefined && isDay(history.from) ? history.from : null
  return {
    seq: String(event.seq),
    time,
    history_from: historyFrom,
    id: required(event, 'id'),
    chain: required(event, 'chain'),
    actor: column('actor'),
    action: column('action'),
    outcome: column('outcome'),
    subject: column('subject'),
    prev_hash: required(event, 'prevHash'),
    hash: required(event, 'hash'),
    body: JSON.stringify(body)
  }
}

/** the event as archived: its columns and body merged, the body's fields winning */
export function rowEvent (row: StoredEventRow): StoredAuditEvent {
  const body = JSON.parse(row.body) as Record<string, unknown>
  const columns: Record<string, unknown> = {
    id: row.id,
    chain: row.chain,
    seq: Number(row.seq),
    time: row.time?.toISOString() ?? null,
    actor: row.actor,
    action: row.action,
    outcome: row.outcome,
    subject: row.subject,
    prevHash: row.prev_hash,
    hash: row.hash
  }
  const entries: Array<[string, unknown]> = []
  const take = (field: string): void => {
    if (Object.hasOwn(body, field)) entries.push([field, body[field]])
    else if (columns[field] !== null) entries.push([field, columns[field]])
  }
  HEAD_FIELDS.forEach(take)
  for (const [field, value] of Object.entries(body)) {
    if (!(HEAD_FIELDS as readonly string[]).includes(field) && !(TAIL_FIELDS as readonly string[]).includes(field)) entries.push([field, value])
  }
  TAIL_FIELDS.forEach(take)
  // fromEntries defines each field (a `__proto__` field stays a field)
  return Object.fromEntries(entries) as StoredAuditEvent
}

/** the document ids an event is indexed under, as the hot tier indexes them (audit-keys.ts) */
export function documentIds (event: StoredAuditEvent): string[] {
  if (!Array.isArray(event.documents)) return []
  return [...new Set(event.documents.map((document) => `${(document as { id?: unknown } | null)?.id}`))].filter(keepable)
}

/** a value in COPY's text format: `\N` for NULL, backslash and the row and column separators escaped */
export function copyText (value: string | null): string {
  if (value === null) return '\\N'
  return value.replace(/[\\\t\n\r]/g, (c) => c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')
}

/** rows as one COPY text-format chunk */
export function copyRows (rows: Array<Array<string | null>>): string {
  let out = ''
  for (const row of rows) out += row.map(copyText).join('\t') + '\n'
  return out
}
