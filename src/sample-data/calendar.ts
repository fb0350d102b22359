/**
 * Calendar dates of the sample data as whole days since 1970-01-01 (UTC), so no time zone or DST
 * ever interferes, and the Civil Code's way of counting a period of validity.
 */

const DAY_MS = 86_400_000
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/

export function toDay (iso: string): number {
  const m = ISO_DATE.exec(iso)
  if (m === null) throw new RangeError(`not a YYYY-MM-DD date: ${iso}`)
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const ms = Date.UTC(y, mo - 1, d)
  const back = new Date(ms)
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    throw new RangeError(`not a calendar date: ${iso}`)
  }
  return ms / DAY_MS
}

export function iso (day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10)
}

export function yearOf (day: number): number { return new Date(day * DAY_MS).getUTCFullYear() }

/** dd/mm/yyyy, as dates are written inside Vietnamese text */
export function vnDate (day: number): string {
  const [y, m, d] = iso(day).split('-')
  return `${d}/${m}/${y}`
}

/** Adds calendar months; a day that does not exist in the target month becomes its last day. */
export function addMonths (day: number, months: number): number {
  const date = new Date(day * DAY_MS)
  const y = date.getUTCFullYear()
  const m = date.getUTCMonth() + months
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate()
  return Date.UTC(y, m, Math.min(date.getUTCDate(), lastDay)) / DAY_MS
}

export function addYears (day: number, years: number): number { return addMonths(day, years * 12) }

/** Whole years of age on `day` for someone born on `born`. */
export function ageOn (born: number, day: number): number {
  let age = yearOf(day) - yearOf(born)
  if (addYears(born, age) > day) age--
  return age
}

const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$/

/**
 * The last day of validity of a document issued on `from` and valid for an ISO 8601 duration of
 * years, months and days (Civil Code 2015 Art. 148: a period in months ends on the corresponding
 * day of its last month, or on that month's last day).
 */
export function validUntilFor (from: string, duration: string): string {
  const m = DURATION.exec(duration)
  if (m === null || duration === 'P') throw new RangeError(`unsupported ISO 8601 duration: ${duration}`)
  return iso(addMonths(toDay(from), Number(m[1] ?? 0) * 12 + Number(m[2] ?? 0)) + Number(m[3] ?? 0))
}

/** days in an average year, for spans where a day either way does not matter */
export const YEAR = 365.25
