import { ProblemError } from '../lib/problem.js'
import type { AgencyStore, DocumentStore, ReuseRecordStore } from '../store/index.js'
import type { Call, WarnLogger } from './call.js'
import { today } from './document-status.js'

/**
 * Reuse statistics — the figures a province reports on (the reuse rate): counters kept per
 * Vietnam calendar day as queries, refusals and downloads happen, never computed by a scan of
 * the audit trail. They hold codes only (procedure, agency, document type), no personal data.
 */

export const STATS_GROUPINGS = ['procedure', 'agency', 'documentType'] as const
export type StatsGrouping = typeof STATS_GROUPINGS[number]
/** the steps of a time series: each Vietnam calendar day, or each calendar month */
export const STATS_INTERVALS = ['day', 'month'] as const
export type StatsInterval = typeof STATS_INTERVALS[number]

const MEASURES = ['queries', 'found', 'denials', 'downloads'] as const
type Measure = typeof MEASURES[number]

/** the longest period one answer covers: two years, a leap day included */
export const MAX_RANGE_DAYS = 731
/** the period when none is asked for: the last 30 days, today included */
export const DEFAULT_RANGE_DAYS = 30

/**
 * The store field of one counter: the measure alone for the total, else measure, grouping and
 * key joined by tabs. No procedure, agency or document-type code can hold a tab (their patterns
 * forbid it), so two counters can never share a field, whatever dots the codes contain.
 */
export function counterField (measure: Measure, grouping?: StatsGrouping, key?: string): string {
  return grouping === undefined ? measure : `${measure}\t${grouping}\t${key ?? ''}`
}


export interface ReuseFigures {
  queries: number
  found: number
  denials: number
  downloads: number
  /** found / queries; null when there were no queries */
  reuseRate: number | null
}

export interface ReuseStatsGroup extends ReuseFigures {
  key: string
  /** the agency's name (groupBy=agency) */
  name?: string
}

export interface ReuseStatsReport {
  from: string
  to: string
  groupBy: StatsGrouping
  total: ReuseFigures
  groups: ReuseStatsGroup[]
  /** with an interval: the same figures for each day (YYYY-MM-DD) or month (YYYY-MM) of the period, in order */
  interval?: StatsInterval
  series?: Array<{ period: string, total: ReuseFigures, groups: ReuseStatsGroup[] }>
}

export interface ReuseStatsPeriod {
  from?: string | undefined
  to?: string | undefined
  groupBy: StatsGrouping
  interval?: StatsInterval | undefined
}

interface Who {
  requester: string
  procedureCode: string
}

const DAY_MS = 86_400_000
const dayNumber = (day: string): number => Date.parse(`${day}T00:00:00Z`) / DAY_MS
const dayOf = (n: number): string => new Date(n * DAY_MS).toISOString().slice(0, 10)

/**
 * The calendar days from `from` to `to`, inclusive. Without `to`: today (in Vietnam); without
 * `from`: the 30 days ending at `to`. Dates are YYYY-MM-DD, already checked by the route schema.
 */
export function statsDays (from: string | undefined, to: string | undefined, now = new Date()): { from: string, to: string, days: string[] } {
  const last = to ?? today(now)
  const first = from ?? dayOf(dayNumber(last) - (DEFAULT_RANGE_DAYS - 1))
  const count = dayNumber(last) - dayNumber(first) + 1
  if (count < 1) throw new ProblemError(400, 'invalid_date_range', '`to` is before `from`')
  if (count > MAX_RANGE_DAYS) throw new ProblemError(400, 'date_range_too_long', `the period covers ${count} days; at most ${MAX_RANGE_DAYS} are answered at once`)
  const start = dayNumber(first)
  return { from: first, to: last, days: Array.from({ length: count }, (_, i) => dayOf(start + i)) }
}

function figures (counts: Partial<Record<Measure, number>>): ReuseFigures {
  const queries = counts.queries ?? 0
  const found = counts.found ?? 0
  return { queries, found, denials: counts.denials ?? 0, downloads: counts.downloads ?? 0, reuseRate: queries > 0 ? found / queries : null }
}

export interface ReuseStatsDeps {
  /** the daily counters */
  reuseRecords: Pick<ReuseRecordStore, 'addReuseCounts' | 'reuseCounts'>
  /** a downloaded document's type */
  documents: Pick<DocumentStore, 'getDocument'>
  /** agency names, for a report by agency */
  agencies: Pick<AgencyStore, 'listAgencies'>
}

export class ReuseStats {
  constructor (private readonly deps: ReuseStatsDeps) {}

  /** The report an auditor reads, released once the read is on record. */
  async reportFor (call: Call, period: ReuseStatsPeriod): Promise<ReuseStatsReport> {
    const { from, to, groupBy, interval } = period
    const report = await this.report({ ...(from ? { from } : {}), ...(to ? { to } : {}), groupBy, ...(interval ? { interval } : {}) })
    await call.audit({ action: 'stats.read', outcome: 'granted', detail: { from: report.from, to: report.to, groupBy, ...(interval ? { interval } : {}) } })
    return report
  }

  /**
   * An answered reuse query (full or status mode). `foundTypes`: the types it found a valid
   * result of. One store call; a failure is logged and swallowed, never the caller's problem.
   */
  async countQuery (log: WarnLogger, query: Who & { documentTypes: string[], foundTypes: string[] }, now = new Date()): Promise<void> {
    const found = query.foundTypes.length > 0 ? 1 : 0
    const increments = this.perWho(query, { queries: 1, found })
    for (const type of new Set(query.documentTypes)) {
      increments[counterField('queries', 'documentType', type)] = 1
      if (query.foundTypes.includes(type)) increments[counterField('found', 'documentType', type)] = 1
    }
    await this.add(log, now, increments)
  }

  /**
   * A reuse query refused with 403; counted for every type it asked for. The caller passes only
   * codes that exist (types in the catalogue, a procedure some agreement names; without one the
   * denial counts in the total and for the agency only), so a caller cannot make counters up.
   */
  async countDenial (log: WarnLogger, query: Partial<Who> & { requester: string, documentTypes: string[] }, now = new Date()): Promise<void> {
    const increments = this.perWho(query, { denials: 1 })
    for (const type of new Set(query.documentTypes)) increments[counterField('denials', 'documentType', type)] = 1
    await this.add(log, now, increments)
  }

  /** A file actually downloaded; its document type is read from the document. */
  async countDownload (log: WarnLogger, download: Who & { documentId: string, version: number }, now = new Date()): Promise<void> {
    try {
      const found = await this.deps.documents.getDocument(download.documentId)
      const versions = found?.document.versions ?? []
      const type = (versions.find((v) => v.version === download.version) ?? versions[0])?.type
      const increments = this.perWho(download, { downloads: 1 })
      if (type !== undefined) increments[counterField('downloads', 'documentType', type)] = 1
      await this.deps.reuseRecords.addReuseCounts(today(now), increments)
    } catch (err) {
      warn(log, err)
    }
  }

  /**
   * The figures over [from, to] (inclusive calendar days), in total and per group; with an
   * interval, also for each day or month of the period (the days are read one by one then: as
   * many store reads as the period has days, the same counters summed differently).
   */
  async report (period: { from?: string, to?: string, groupBy: StatsGrouping, interval?: StatsInterval }, now = new Date()): Promise<ReuseStatsReport> {
    const { from, to, days } = statsDays(period.from, period.to, now)
    const names = period.groupBy === 'agency' ? new Map((await this.deps.agencies.listAgencies()).map((a) => [a.code, a.name])) : undefined
    if (period.interval === undefined) {
      const counts = await this.deps.reuseRecords.reuseCounts(days)
      return { from, to, groupBy: period.groupBy, ...summed([counts], period.groupBy, names) }
    }
    const daily = await Promise.all(days.map(async (day) => await this.deps.reuseRecords.reuseCounts([day])))
    const steps = new Map<string, Array<Record<string, number>>>()
    days.forEach((day, i) => {
      const step = period.interval === 'month' ? day.slice(0, 7) : day
      const list = steps.get(step) ?? []
      list.push(daily[i] as Record<string, number>)
      steps.set(step, list)
    })
    const series = [...steps].map(([step, counts]) => ({ period: step, ...summed(counts, period.groupBy, names) }))
    return { from, to, groupBy: period.groupBy, ...summed(daily, period.groupBy, names), interval: period.interval, series }
  }

  /** the total and the procedure and agency counters of one event */
  private perWho (who: Partial<Who> & { requester: string }, measures: Partial<Record<Measure, number>>): Record<string, number> {
    const increments: Record<string, number> = {}
    for (const [measure, n] of Object.entries(measures) as Array<[Measure, number]>) {
      if (n === 0) continue
      increments[counterField(measure)] = n
      if (who.procedureCode !== undefined) increments[counterField(measure, 'procedure', who.procedureCode)] = n
      increments[counterField(measure, 'agency', who.requester)] = n
    }
    return increments
  }

  private async add (log: WarnLogger, now: Date, increments: Record<string, number>): Promise<void> {
    try {
      await this.deps.reuseRecords.addReuseCounts(today(now), increments)
    } catch (err) {
      warn(log, err)
    }
  }
}

/** the counters of some days summed: in total and per group of `groupBy`, most queries first */
function summed (days: Array<Record<string, number>>, groupBy: StatsGrouping, names: Map<string, string> | undefined): { total: ReuseFigures, groups: ReuseStatsGroup[] } {
  const total: Partial<Record<Measure, number>> = {}
  const byKey = new Map<string, Partial<Record<Measure, number>>>()
  for (const counts of days) {
    for (const [field, n] of Object.entries(counts)) {
      const [measure, grouping, key] = field.split('\t') as [Measure, string?, string?]
      if (!MEASURES.includes(measure)) continue
      if (grouping === undefined) {
        total[measure] = (total[measure] ?? 0) + n
      } else if (grouping === groupBy && key !== undefined) {
        const group = byKey.get(key) ?? {}
        group[measure] = (group[measure] ?? 0) + n
        byKey.set(key, group)
      }
    }
  }
  const groups: ReuseStatsGroup[] = [...byKey].map(([key, counts]) => {
    const name = names?.get(key)
    return { key, ...(name !== undefined ? { name } : {}), ...figures(counts) }
  })
  groups.sort((a, b) => b.queries - a.queries || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return { total: figures(total), groups }
}

// the logger describes the error (lib/error-description.ts): nothing from the query reaches the log
function warn (log: WarnLogger, err: unknown): void {
  log.warn({ err }, 'reuse statistics not counted')
}
