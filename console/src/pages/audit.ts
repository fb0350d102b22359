import { call, getJson, sendJson } from '../api.js'
import { field, h, option, saveFile, uid } from '../dom.js'
import { formatNumber, formatTime, t } from '../i18n.js'
import { dataTable } from '../table.js'
import type { Column } from '../table.js'
import type { PageContext } from './page.js'

/**
 * The audit trail: search (POST: a subject identifier travels in the body only, never in a URL,
 * and is kept in no storage), verification of a time range, and an NDJSON export of it.
 */

interface AuditEvent {
  id: string
  time: string
  actor: string | null
  action: string
  outcome: string
  documents?: Array<{ id: string, version?: number }>
  purpose?: { procedureCode?: string, dossierCode?: string }
}
interface SearchResult { events: AuditEvent[], nextCursor?: string }
interface VerifyResult { ok: boolean, checked: number, complete?: boolean, nextCursor?: string, firstBadEvent?: string, reason?: string }

const ACTIONS = ['reuse.queried', 'file.downloaded', 'document.indexed', 'document.amended', 'document.revoked', 'document.file_uploaded', 'consent.revoked',
  'token.issued', 'token.refused', 'access.refused', 'agency.created', 'agency.updated', 'agreement.created', 'agreement.updated', 'audit.searched', 'audit.verified', 'audit.exported', 'stats.read', 'webhook.replay_requested']

/** a datetime-local value (the user's clock) as an instant */
function instant (value: string): string | undefined {
  if (!value) return undefined
  const time = new Date(value)
  return Number.isNaN(time.getTime()) ? undefined : time.toISOString()
}

export async function auditPage (ctx: PageContext): Promise<void> {
  const agency = h('input', { type: 'text', name: 'agency', autocomplete: 'off', spellcheck: 'false', placeholder: '000.00.00.H41' })
  const kind = h('select', { name: 'subjectKind' }, option('citizen', t('subjectCitizen')), option('organization', t('subjectOrganization')))
  // not remembered by the browser's form history either
  const subject = h('input', { type: 'text', name: 'subject-id', autocomplete: 'off', spellcheck: 'false', inputmode: 'numeric' })
  const documentId = h('input', { type: 'text', name: 'documentId', autocomplete: 'off', spellcheck: 'false' })
  const actionsId = uid('actions')
  const action = h('input', { type: 'text', name: 'action', autocomplete: 'off', spellcheck: 'false', list: actionsId })
  const outcome = h('select', { name: 'outcome' }, option('', t('anyOutcome')), option('granted', t('outcomeGranted')), option('empty', t('outcomeEmpty')), option('denied', t('outcomeDenied')), option('error', t('outcomeError')))
  const from = h('input', { type: 'datetime-local', name: 'from', step: 1 })
  const to = h('input', { type: 'datetime-local', name: 'to', step: 1 })
  const verifyButton = h('button', { type: 'button', class: 'secondary' }, t('verify'))
  const exportButton = h('button', { type: 'button', class: 'secondary' }, t('exportNdjson'))
  const verdict = h('div', { class: 'verdict', role: 'status', 'aria-live': 'polite' })
  const results = h('div', { class: 'results', 'aria-live': 'polite' })
  const form = h('form', { class: 'filters', 'aria-label': t('auditTitle'), autocomplete: 'off' },
    field(t('agency'), agency), field(t('subjectKind'), kind), field(t('subjectId'), subject), field(t('documentId'), documentId),
    field(t('action'), action), h('datalist', { id: actionsId }, ACTIONS.map((a) => h('option', { value: a }))), field(t('outcome'), outcome),
    field(t('timeFrom'), from), field(t('timeTo'), to),
    h('div', { class: 'field submit' }, h('button', { type: 'submit' }, t('search'))),
    h('div', { class: 'field submit' }, verifyButton),
    h('div', { class: 'field submit' }, exportButton))

  ctx.main.replaceChildren(h('h2', { id: 'page-title', tabindex: -1 }, t('auditTitle')), h('p', null, t('auditIntro')), form, verdict, results)

  const range = (): Record<string, string> => {
    const out: Record<string, string> = {}
    const start = instant(from.value)
    const end = instant(to.value)
    if (start) out.from = start
    if (end) out.to = end
    return out
  }
  const fail = (where: HTMLElement, err: unknown): void => {
    where.replaceChildren(h('p', { role: 'alert', class: 'error' }, t('error', { message: (err as Error).message })))
  }

  const columns: Array<Column<AuditEvent>> = [
    { title: t('time'), text: (e) => formatTime(e.time), csv: (e) => e.time },
    { title: t('action'), text: (e) => e.action },
    { title: t('outcome'), text: (e) => e.outcome },
    { title: t('actor'), text: (e) => e.actor ?? t('none') },
    { title: t('documents'), text: (e) => (e.documents ?? []).map((d) => d.version === undefined ? d.id : `${d.id} v${d.version}`).join(', ') || t('none') },
    { title: t('eventId'), text: (e) => e.id }
  ]

  const search = async (): Promise<void> => {
    // the filters of this search, the subject among them, live in this closure only
    const filters: Record<string, unknown> = { limit: 50, ...range() }
    if (agency.value.trim()) filters.agency = agency.value.trim()
    if (subject.value.trim()) filters.subject = { kind: kind.value, id: subject.value.trim() }
    if (documentId.value.trim()) filters.documentId = documentId.value.trim()
    if (action.value.trim()) filters.action = action.value.trim()
    if (outcome.value) filters.outcome = outcome.value
    const events: AuditEvent[] = []
    const page = async (cursor?: string): Promise<void> => {
      results.replaceChildren(h('p', { role: 'status' }, t('loading')))
      try {
        const found = await sendJson<SearchResult>('POST', 'v1/audit/search', cursor ? { ...filters, cursor } : filters)
        events.push(...found.events)
        const next = found.nextCursor
        results.replaceChildren(
          h('h3', null, `${t('results')} — ${t('resultsCount', { count: formatNumber(events.length) })}`),
          dataTable(t('results'), columns, events, t('noEvents')),
          ...(next ? [h('button', { type: 'button', class: 'secondary', onclick: () => { void page(next) } }, t('nextPage'))] : [])
        )
      } catch (err) {
        fail(results, err)
      }
    }
    await page()
  }

  const verify = async (): Promise<void> => {
    const params = range()
    verifyButton.disabled = true
    try {
      let cursor: string | undefined
      for (;;) {
        const answer = await getJson<VerifyResult>(`v1/audit/verify?${new URLSearchParams({ ...params, ...(cursor ? { cursor } : {}) }).toString()}`)
        if (!answer.ok) {
          verdict.replaceChildren(h('p', { class: 'bad' }, t('broken', { event: answer.firstBadEvent ?? t('none'), reason: answer.reason ?? '' })))
          return
        }
        if (answer.complete === false && answer.nextCursor) {
          cursor = answer.nextCursor
          verdict.replaceChildren(h('p', null, t('verifying', { checked: formatNumber(answer.checked) })))
          continue
        }
        verdict.replaceChildren(h('p', { class: 'ok' }, t('intact', { checked: formatNumber(answer.checked) })))
        return
      }
    } catch (err) {
      fail(verdict, err)
    } finally {
      verifyButton.disabled = false
    }
  }

  const exportRange = async (): Promise<void> => {
    const params = range()
    exportButton.disabled = true
    try {
      const parts: string[] = []
      let url: string | undefined = `v1/audit/export?${new URLSearchParams(params).toString()}`
      while (url !== undefined) {
        const response = await call(url)
        parts.push(await response.text())
        // Link: <export?…&cursor=…>; rel="next", relative to the page it came with
        const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get('link') ?? '')?.[1]
        url = next === undefined ? undefined : new URL(next, response.url).toString()
      }
      const text = parts.join('')
      const count = text.split('\n').filter((line) => line.trim() !== '').length
      saveFile(`audit${params.from ? `_${params.from}` : ''}${params.to ? `_${params.to}` : ''}.ndjson`.replace(/:/g, '-'), 'application/x-ndjson', [text])
      verdict.replaceChildren(h('p', null, t('exported', { count: formatNumber(count) })))
    } catch (err) {
      fail(verdict, err)
    } finally {
      exportButton.disabled = false
    }
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); void search() })
  verifyButton.addEventListener('click', () => { void verify() })
  exportButton.addEventListener('click', () => { void exportRange() })
}
