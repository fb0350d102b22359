import { getJson } from '../api.js'
import { rateChart } from '../chart.js'
import { field, h, option, uid } from '../dom.js'
import { formatNumber, formatRate, t } from '../i18n.js'
import type { TextKey } from '../i18n.js'
import { csvButton, dataTable } from '../table.js'
import type { Column } from '../table.js'
import type { PageContext } from './page.js'

/** The reform's figure: GET /v1/stats/reuse per day, per month and per group, with the target line. */

interface Figures { queries: number, found: number, denials: number, downloads: number, reuseRate: number | null }
interface Group extends Figures { key: string, name?: string }
interface Report {
  from: string
  to: string
  groupBy: Grouping
  total: Figures
  groups: Group[]
  series?: Array<{ period: string, total: Figures, groups: Group[] }>
}
type Grouping = 'procedure' | 'agency' | 'documentType'

const GROUP_LABEL: Record<Grouping, TextKey> = { procedure: 'groupProcedure', agency: 'groupAgency', documentType: 'groupDocumentType' }

function figureColumns<Row extends Figures> (): Array<Column<Row>> {
  return [
    { title: t('queries'), text: (r) => formatNumber(r.queries), csv: (r) => r.queries, numeric: true },
    { title: t('found'), text: (r) => formatNumber(r.found), csv: (r) => r.found, numeric: true },
    { title: t('denials'), text: (r) => formatNumber(r.denials), csv: (r) => r.denials, numeric: true },
    { title: t('downloads'), text: (r) => formatNumber(r.downloads), csv: (r) => r.downloads, numeric: true },
    { title: t('reuseRate'), text: (r) => formatRate(r.reuseRate), csv: (r) => r.reuseRate ?? '', numeric: true }
  ]
}

function query (params: Record<string, string>): string {
  return `v1/stats/reuse?${new URLSearchParams(params).toString()}`
}

/** one chart and its table, under a heading */
function block (title: string, chart: HTMLElement, table: HTMLElement, csv: HTMLButtonElement): HTMLElement {
  const id = uid('h')
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h3', { id }, title), chart, table, h('div', { class: 'actions' }, csv))
}

export async function reusePage (ctx: PageContext): Promise<void> {
  const from = h('input', { type: 'date', name: 'from' })
  const to = h('input', { type: 'date', name: 'to' })
  const groupBy = h('select', { name: 'groupBy' }, (Object.keys(GROUP_LABEL) as Grouping[]).map((g) => option(g, t(GROUP_LABEL[g]))))
  const results = h('div', { class: 'results', 'aria-live': 'polite' })
  const form = h('form', { class: 'filters', 'aria-label': t('reuseTitle') },
    field(t('periodFrom'), from), field(t('periodTo'), to), field(t('groupBy'), groupBy),
    h('div', { class: 'field submit' }, h('button', { type: 'submit' }, t('show'))))

  const target = ctx.settings.reuseTargetPercent
  ctx.main.replaceChildren(
    h('h2', { id: 'page-title', tabindex: -1 }, t('reuseTitle')),
    h('p', null, t('reuseIntro', { target: `${formatNumber(target)} %` })),
    form,
    results
  )

  const show = async (): Promise<void> => {
    results.replaceChildren(h('p', { role: 'status' }, t('loading')))
    const grouping = groupBy.value as Grouping
    const period: Record<string, string> = { groupBy: grouping }
    if (from.value) period.from = from.value
    if (to.value) period.to = to.value
    try {
      const daily = await getJson<Report>(query({ ...period, interval: 'day' }))
      from.value = daily.from
      to.value = daily.to
      const monthly = await getJson<Report>(query({ groupBy: grouping, from: daily.from, to: daily.to, interval: 'month' }))
      results.replaceChildren(...render(daily, monthly, grouping, target))
    } catch (err) {
      results.replaceChildren(h('p', { role: 'alert', class: 'error' }, t('error', { message: (err as Error).message })))
    }
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); void show() })
  await show()
}

function render (daily: Report, monthly: Report, grouping: Grouping, target: number): HTMLElement[] {
  const total = daily.total
  const totals = h('section', { class: 'card totals', 'aria-labelledby': 'totals-title' },
    h('h3', { id: 'totals-title' }, `${t('totals')} (${daily.from} – ${daily.to})`),
    h('dl', { class: 'figures' },
      ([['queries', formatNumber(total.queries), total.queries], ['found', formatNumber(total.found), total.found], ['denials', formatNumber(total.denials), total.denials],
        ['downloads', formatNumber(total.downloads), total.downloads], ['reuseRate', formatRate(total.reuseRate), total.reuseRate ?? '']] as Array<[TextKey, string, number | string]>)
        .map(([key, text, raw]) => h('div', { class: 'figure', 'data-measure': key }, h('dt', null, t(key)), h('dd', { 'data-value': String(raw) }, text)))
    )
  )

  // a step of the series: the overall figures, and each charted group's rate
  type Step = Figures & { period: string, byGroup: Map<string, number | null> }
  // the groups with the most queries get a line of their own (a legend of a dozen is unreadable)
  const charted = daily.groups.slice(0, 6).map((g) => g.key)
  const steps = (report: Report): Step[] => (report.series ?? []).map((s) => ({
    period: s.period,
    ...s.total,
    byGroup: new Map(charted.map((key) => [key, s.groups.find((g) => g.key === key)?.reuseRate ?? null]))
  }))
  const lines = (rows: Step[]) => [
    { label: t('reuseRate'), rates: rows.map((r) => r.reuseRate) },
    ...charted.map((key) => ({ label: key, rates: rows.map((r) => r.byGroup.get(key) ?? null) }))
  ]
  const groupRateColumns: Array<Column<Step>> = charted.map((key) => ({
    title: `${t('reuseRate')} ${key}`, text: (r) => formatRate(r.byGroup.get(key) ?? null), csv: (r) => r.byGroup.get(key) ?? '', numeric: true
  }))

  const days = steps(daily)
  const dayColumns: Array<Column<Step>> = [{ title: t('day'), text: (r) => r.period }, ...figureColumns<Step>(), ...groupRateColumns]
  const months = steps(monthly)
  const monthColumns: Array<Column<Step>> = [{ title: t('month'), text: (r) => r.period }, ...figureColumns<Step>(), ...groupRateColumns]
  const groupName = t(GROUP_LABEL[grouping]).toLocaleLowerCase()
  const groupColumns: Array<Column<Group>> = [
    { title: t('key'), text: (r) => r.key },
    ...(grouping === 'agency' ? [{ title: t('name'), text: (r: Group) => r.name ?? '' }] : []),
    ...figureColumns<Group>()
  ]
  const stamp = `${daily.from}_${daily.to}`
  return [
    totals,
    block(t('perDay'), rateChart(t('perDay'), { name: t('day'), labels: days.map((d) => d.period) }, lines(days), target, 'lines'), dataTable(t('perDay'), dayColumns, days), csvButton(`reuse-per-day_${stamp}.csv`, dayColumns, days)),
    block(t('perMonth'), rateChart(t('perMonth'), { name: t('month'), labels: months.map((m) => m.period) }, lines(months), target, 'lines'), dataTable(t('perMonth'), monthColumns, months), csvButton(`reuse-per-month_${stamp}.csv`, monthColumns, months)),
    block(t('perGroup', { group: groupName }), rateChart(t('perGroup', { group: groupName }), { name: t(GROUP_LABEL[grouping]), labels: daily.groups.map((g) => g.key) }, [{ label: t('reuseRate'), rates: daily.groups.map((g) => g.reuseRate) }], target, 'bars'),
      dataTable(t('perGroup', { group: groupName }), groupColumns, daily.groups), csvButton(`reuse-per-${grouping}_${stamp}.csv`, groupColumns, daily.groups))
  ]
}
