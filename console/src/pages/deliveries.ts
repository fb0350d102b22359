import { getJson, sendJson } from '../api.js'
import { field, h, option, uid } from '../dom.js'
import { formatNumber, formatTime, t } from '../i18n.js'
import { dataTable } from '../table.js'
import type { PageContext } from './page.js'
import type { TextKey } from '../i18n.js'

/** The outbox for an admin: the backlog per destination, its dead letters, and replay. */

interface DestinationStatus { destination: string, queued: number, delivered: number, dead: number, oldestQueuedAt?: string }
const STATE_LABEL: Record<Delivery['state'], TextKey> = { queued: 'stateQueued', delivered: 'stateDelivered', dead: 'stateDead' }

interface Delivery { event: string, cursor: number, state: 'queued' | 'delivered' | 'dead', attempts: number, nextAttemptAt?: string, lastError?: string, settledAt?: string }

export async function deliveriesPage (ctx: PageContext): Promise<void> {
  const statusHolder = h('div', null, h('p', { role: 'status' }, t('loading')))
  const listHolder = h('div', { 'aria-live': 'polite' })
  const replayHolder = h('div', null)
  ctx.main.replaceChildren(
    h('h2', { id: 'page-title', tabindex: -1 }, t('deliveriesTitle')),
    h('p', null, t('deliveriesIntro')),
    h('section', { class: 'card', 'aria-labelledby': 'backlog-title' }, h('h3', { id: 'backlog-title' }, t('backlogTitle')), statusHolder),
    listHolder,
    replayHolder
  )

  const showDeliveries = async (destination: string, deadOnly: boolean): Promise<void> => {
    listHolder.replaceChildren(h('p', { role: 'status' }, t('loading')))
    try {
      const all: Delivery[] = []
      let after = 0
      // by cursor, a page at a time (a destination's whole history, at most a few pages on a console)
      for (let pages = 0; pages < 20; pages++) {
        const { deliveries } = await getJson<{ deliveries: Delivery[] }>(`v1/webhooks/deliveries?${new URLSearchParams({ destination, after: String(after), limit: '1000' }).toString()}`)
        all.push(...deliveries)
        if (deliveries.length < 1000) break
        after = (deliveries[deliveries.length - 1] as Delivery).cursor
      }
      const shown = deadOnly ? all.filter((d) => d.state === 'dead') : all
      const titleId = uid('h')
      const caption = `${t('deliveriesOf', { destination })}${deadOnly ? ` — ${t('dead')}` : ''}`
      listHolder.replaceChildren(h('section', { class: 'card', 'aria-labelledby': titleId },
        h('h3', { id: titleId }, caption),
        dataTable<Delivery>(caption, [
          { title: t('cursor'), text: (d) => String(d.cursor), numeric: true },
          { title: t('event'), text: (d) => d.event },
          { title: t('state'), text: (d) => t(STATE_LABEL[d.state]) },
          { title: t('attempts'), text: (d) => formatNumber(d.attempts), numeric: true },
          { title: t('lastError'), text: (d) => d.lastError ?? t('none') },
          { title: t('settledAt'), text: (d) => d.settledAt ? formatTime(d.settledAt) : t('none') }
        ], shown, t('noDeliveries'))))
    } catch (err) {
      listHolder.replaceChildren(h('p', { role: 'alert', class: 'error' }, t('error', { message: (err as Error).message })))
    }
  }

  const load = async (): Promise<void> => {
    try {
      const { destinations } = await getJson<{ destinations: DestinationStatus[] }>('v1/webhooks/status')
      const hasOldest = destinations.some((d) => d.oldestQueuedAt !== undefined)
      const table = dataTable<DestinationStatus>(t('backlogTitle'), [
        { title: t('destination'), text: (d) => d.destination },
        { title: t('queued'), text: (d) => formatNumber(d.queued), csv: (d) => d.queued, numeric: true },
        { title: t('delivered'), text: (d) => formatNumber(d.delivered), csv: (d) => d.delivered, numeric: true },
        { title: t('dead'), text: (d) => formatNumber(d.dead), csv: (d) => d.dead, numeric: true },
        ...(hasOldest ? [{ title: t('oldestQueued'), text: (d: DestinationStatus) => d.oldestQueuedAt ? formatTime(d.oldestQueuedAt) : t('none') }] : []),
        { title: '', text: () => '' }
      ], destinations, t('noDestinations'))
      table.querySelectorAll('tbody tr').forEach((row, i) => {
        const d = destinations[i] as DestinationStatus
        row.setAttribute('data-destination', d.destination)
        row.lastElementChild?.replaceChildren(
          h('button', { type: 'button', class: 'secondary', 'aria-label': t('showDeliveries', { destination: d.destination }), onclick: () => { void showDeliveries(d.destination, false) } }, t('allDeliveries')),
          ' ',
          h('button', { type: 'button', class: 'secondary', disabled: d.dead === 0, 'aria-label': `${t('onlyDead')}: ${d.destination}`, onclick: () => { void showDeliveries(d.destination, true) } }, t('onlyDead'))
        )
      })
      statusHolder.replaceChildren(table)
      replayHolder.replaceChildren(replayForm(destinations.map((d) => d.destination), async () => await load()))
    } catch (err) {
      statusHolder.replaceChildren(h('p', { role: 'alert', class: 'error' }, t('error', { message: (err as Error).message })))
    }
  }
  await load()
}

function replayForm (destinations: string[], reload: () => Promise<void>): HTMLElement {
  if (destinations.length === 0) return h('div')
  const destination = h('select', { name: 'destination' }, destinations.map((d) => option(d, d)))
  const after = h('input', { type: 'number', name: 'after', min: 0, step: 1, value: '0', required: true })
  const message = h('div', { role: 'status', 'aria-live': 'polite' })
  const form = h('form', { class: 'card filters', 'aria-labelledby': 'replay-title' },
    h('h3', { id: 'replay-title' }, t('replayTitle')),
    field(t('destination'), destination), field(t('replayAfter'), after),
    h('div', { class: 'field submit' }, h('button', { type: 'submit' }, t('replay'))),
    message)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void (async () => {
      try {
        const result = await sendJson<{ destination: string, requeued: number }>('POST', 'v1/webhooks/replay', { after: Number(after.value), destination: destination.value })
        await reload()
        // the reload replaced this form: the message goes to the new one
        document.querySelector('#replay-title')?.parentElement?.querySelector('[role=status]')?.replaceChildren(h('p', { class: 'ok' }, t('replayed', { count: formatNumber(result.requeued), destination: result.destination })))
      } catch (err) {
        message.replaceChildren(h('p', { class: 'error' }, t('error', { message: (err as Error).message })))
      }
    })()
  })
  return form
}
