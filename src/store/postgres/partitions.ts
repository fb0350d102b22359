/**
 * Monthly partitions of the archive's two id-partitioned tables (audit_events and its side table
 * audit_event_documents): one pair a calendar month (UTC, the ULID's clock), named
 * `<table>_YYYY_MM`, holding the ids from the month's first millisecond's time prefix to the next
 * month's. Each pair is created and dropped together, under the schema's advisory lock.
 */
import { decodeTime, encodeTime } from 'ulid'
import pg from 'pg'
import { StatedError } from '../../lib/error-description.js'

export const PARTITIONED_TABLES = ['audit_events', 'audit_event_documents'] as const

/** a calendar month: year and month 0–11 */
export interface Month { year: number, month: number }

export function monthOf (time: Date | number): Month {
  const date = new Date(time)
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() }
}

export function monthStart ({ year, month }: Month): Date {
  return new Date(Date.UTC(year, month, 1))
}

export function nextMonth ({ year, month }: Month): Month {
  return month === 11 ? { year: year + 1, month: 0 } : { year, month: month + 1 }
}

/** `2026_11`: the suffix of the month's partitions */
export function monthSuffix ({ year, month }: Month): string {
  return `${year}_${String(month + 1).padStart(2, '0')}`
}

/** the month a partition name's suffix names, or undefined for another table */
export function monthOfPartition (name: string, table: string): Month | undefined {
  const match = new RegExp(`^${table}_([0-9]{4})_([0-9]{2})$`).exec(name)
  return match ? { year: Number(match[1]), month: Number(match[2]) - 1 } : undefined
}

/** the lowest id of a time: its ULID time prefix, then the lowest random part */
function idBound (time: Date | number): string {
  return encodeTime(new Date(time).getTime(), 10) + '0'.repeat(16)
}

/** the time prefix ids before `time` are below (an index page's or a retention's bound) */
export function timePrefix (time: Date): string {
  return encodeTime(time.getTime(), 10)
}

/** the month of an id's time */
export function monthOfId (id: string): Month {
  try {
    return monthOf(decodeTime(id.slice(0, 10) + '0'.repeat(16)))
  } catch {
    throw new StatedError('an archived audit event id is a ULID')
  }
}

/** the months from `from`'s to `to`'s, both included */
export function monthsBetween (from: Date, to: Date): Month[] {
  const months: Month[] = []
  const last = monthOf(to)
  for (let m = monthOf(from); m.year < last.year || (m.year === last.year && m.month <= last.month); m = nextMonth(m)) months.push(m)
  return months
}

/** the statements creating a month's partitions, when missing */
export function createPartitionsSql (schema: string, month: Month): string {
  const from = idBound(monthStart(month))
  const to = idBound(monthStart(nextMonth(month)))
  return PARTITIONED_TABLES.map((table) =>
    `CREATE TABLE IF NOT EXISTS ${schema}.${table}_${monthSuffix(month)} PARTITION OF ${schema}.${table} FOR VALUES FROM ('${from}') TO ('${to}')`
  ).join(';\n')
}

/** the statements detaching and dropping partitions (of any table) */
export function dropPartitionsSql (schema: string, partitions: Array<{ table: string, name: string }>): string {
  return partitions.map(({ table, name }) => {
    const partition = `${schema}.${pg.escapeIdentifier(name)}`
    return `ALTER TABLE ${schema}.${pg.escapeIdentifier(table)} DETACH PARTITION ${partition};\nDROP TABLE ${partition}`
  }).join(';\n')
}
