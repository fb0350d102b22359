import { getJson, sendJson } from '../api.js'
import { field, h, option, uid } from '../dom.js'
import { formatTime, t } from '../i18n.js'
import type { TextKey } from '../i18n.js'
import { dataTable } from '../table.js'
import type { Column } from '../table.js'
import type { PageContext } from './page.js'
import type { AgreementRecord } from '../../../src/store/agreements.js'

/**
 * Agencies and agreements: who may reuse what, for which procedures and fields, until when;
 * suspended agencies marked; each agency's public keys by kid. The agency editor (PUT
 * /v1/agencies/{code}) is an admin's: the page is reached only with the admin scope.
 */

type Role = 'issuer' | 'requester' | 'portal' | 'auditor' | 'admin'
interface Jwk { kid?: string, kty?: string, crv?: string, alg?: string }
interface Agency {
  code: string
  name: string
  roles: Role[]
  status: 'active' | 'suspended'
  issuableTypes?: string[]
  jwks?: { keys: Jwk[] }
  jwksUri?: string
  webhookUrl?: string
  updatedAt: string
}
/** an agreement as GET /v1/agreements lists it: the stored record */
type Agreement = AgreementRecord

const ROLES: Role[] = ['issuer', 'requester', 'portal', 'auditor', 'admin']
const ROLE_LABEL: Record<Role, TextKey> = { issuer: 'roleIssuer', requester: 'roleRequester', portal: 'rolePortal', auditor: 'roleAuditor', admin: 'roleAdmin' }

function statusBadge (status: 'active' | 'suspended'): HTMLElement {
  return h('span', { class: `badge ${status}` }, t(status === 'suspended' ? 'statusSuspended' : 'statusActive'))
}

export async function agenciesPage (ctx: PageContext): Promise<void> {
  const editor = h('div', { class: 'editor' })
  const agenciesHolder = h('div', null, h('p', { role: 'status' }, t('loading')))
  const agreementsHolder = h('div', null)
  const notice = h('div', { role: 'status', 'aria-live': 'polite' })
  ctx.main.replaceChildren(
    h('h2', { id: 'page-title', tabindex: -1 }, t('navAgencies')),
    notice,
    h('section', { class: 'card', 'aria-labelledby': 'agencies-title' }, h('h3', { id: 'agencies-title' }, t('agenciesTitle')), agenciesHolder, editor),
    h('section', { class: 'card', 'aria-labelledby': 'agreements-title' }, h('h3', { id: 'agreements-title' }, t('agreementsTitle')), agreementsHolder)
  )

  const load = async (): Promise<void> => {
    try {
      const [{ agencies }, { agreements }] = await Promise.all([
        getJson<{ agencies: Agency[] }>('v1/agencies'),
        getJson<{ agreements: Agreement[] }>('v1/agreements')
      ])
      agenciesHolder.replaceChildren(agencyTable(agencies, (agency) => { openEditor(agency) }))
      agreementsHolder.replaceChildren(agreementTable(agreements, agencies))
    } catch (err) {
      agenciesHolder.replaceChildren(h('p', { role: 'alert', class: 'error' }, t('error', { message: (err as Error).message })))
    }
  }

  const openEditor = (agency: Agency): void => {
    const name = h('input', { type: 'text', name: 'name', value: agency.name, required: true, maxlength: 300 })
    const status = h('select', { name: 'status' }, option('active', t('statusActive'), agency.status === 'active'), option('suspended', t('statusSuspended'), agency.status === 'suspended'))
    const roleBoxes = ROLES.map((role) => {
      const id = uid('role')
      const box = h('input', { type: 'checkbox', id, name: 'roles', value: role, checked: agency.roles.includes(role) })
      return { role, box, el: h('div', { class: 'check' }, box, h('label', { for: id }, `${t(ROLE_LABEL[role])} (${role})`)) }
    })
    const issuable = h('input', { type: 'text', name: 'issuableTypes', value: (agency.issuableTypes ?? []).join(', '), autocomplete: 'off', spellcheck: 'false' })
    const message = h('div', { role: 'alert' })
    const titleId = uid('h')
    const form = h('form', { class: 'card editing', 'aria-labelledby': titleId },
      h('h4', { id: titleId, tabindex: -1 }, t('editAgency', { code: agency.code })),
      field(t('name'), name),
      h('fieldset', null, h('legend', null, t('roles')), roleBoxes.map((r) => r.el)),
      field(t('issuableTypes'), issuable, t('issuableTypesHint')),
      field(t('status'), status),
      message,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('save')), h('button', { type: 'button', class: 'secondary', onclick: () => { editor.replaceChildren() } }, t('cancel')))
    )
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const roles = roleBoxes.filter((r) => r.box.checked).map((r) => r.role)
      const types = issuable.value.split(',').map((s) => s.trim()).filter((s) => s !== '')
      // PUT replaces the whole agency: what the form does not edit (keys, webhook) is sent as it was
      const body: Record<string, unknown> = {
        name: name.value.trim(),
        roles,
        status: status.value,
        ...(roles.includes('issuer') ? { issuableTypes: types } : {}),
        ...(agency.jwksUri ? { jwksUri: agency.jwksUri } : { jwks: agency.jwks }),
        ...(agency.webhookUrl ? { webhookUrl: agency.webhookUrl } : {})
      }
      void (async () => {
        try {
          await sendJson('PUT', `v1/agencies/${encodeURIComponent(agency.code)}`, body)
          editor.replaceChildren()
          notice.replaceChildren(h('p', { class: 'ok' }, t('saved', { code: agency.code })))
          await load()
        } catch (err) {
          message.replaceChildren(h('p', { class: 'error' }, t('error', { message: (err as Error).message })))
        }
      })()
    })
    editor.replaceChildren(form)
    form.querySelector('h4')?.focus()
  }

  await load()
}

function agencyTable (agencies: Agency[], edit: (agency: Agency) => void): HTMLElement {
  const wrap = dataTable<Agency>(t('agenciesTitle'), [
    { title: t('code'), text: (a) => a.code },
    { title: t('name'), text: (a) => a.name },
    { title: t('roles'), text: (a) => a.roles.map((r) => t(ROLE_LABEL[r])).join(', ') },
    { title: t('status'), text: (a) => t(a.status === 'suspended' ? 'statusSuspended' : 'statusActive'), csv: (a) => a.status },
    { title: t('keys'), text: (a) => a.jwksUri ? t('keysFromUri', { uri: a.jwksUri }) : (a.jwks?.keys ?? []).map((k) => `${k.kid ?? '?'} (${[k.alg, k.kty, k.crv].filter(Boolean).join(' ')})`).join('\n') },
    { title: t('issuableTypes'), text: (a) => (a.issuableTypes ?? []).join(', ') || t('none') },
    { title: t('webhook'), text: (a) => a.webhookUrl ?? t('none') },
    { title: '', text: () => '' }
  ], agencies)
  // the status as a badge, and an edit button per row
  wrap.querySelectorAll('tbody tr').forEach((row, i) => {
    const agency = agencies[i] as Agency
    row.setAttribute('data-agency', agency.code)
    if (agency.status === 'suspended') row.classList.add('suspended')
    const cells = row.children
    cells[3]?.replaceChildren(statusBadge(agency.status))
    cells[4]?.classList.add('keys')
    cells[7]?.replaceChildren(h('button', { type: 'button', class: 'secondary', 'aria-label': t('editAgency', { code: agency.code }), onclick: () => { edit(agency) } }, t('edit')))
    cells[7]?.setAttribute('title', formatTime(agency.updatedAt))
  })
  return wrap
}

function agreementTable (agreements: Agreement[], agencies: Agency[]): HTMLElement {
  const names = new Map(agencies.map((a) => [a.code, a.name]))
  const columns: Array<Column<Agreement>> = [
    { title: t('agreementId'), text: (a) => a.id },
    { title: t('requester'), text: (a) => `${a.requester}${names.has(a.requester) ? ` — ${names.get(a.requester)}` : ''}` },
    { title: t('documentTypes'), text: (a) => a.documentTypes.join(', ') },
    { title: t('procedures'), text: (a) => a.procedureCodes.join(', ') },
    { title: t('fields'), text: (a) => Object.entries(a.fields).map(([type, fields]) => `${type}: ${fields.includes('*') ? t('allFields') : fields.join(', ')}`).join('\n') },
    { title: t('fileDownload'), text: (a) => t(a.fileDownload ? 'yes' : 'no') },
    { title: t('validity'), text: (a) => a.validUntil ? t('validFromUntil', { from: a.validFrom, until: a.validUntil }) : t('validFromOn', { from: a.validFrom }) },
    { title: t('status'), text: (a) => t(a.status === 'suspended' ? 'statusSuspended' : 'statusActive') }
  ]
  const wrap = dataTable(t('agreementsTitle'), columns, agreements)
  wrap.querySelectorAll('tbody tr').forEach((row, i) => {
    const agreement = agreements[i] as Agreement
    row.children[7]?.replaceChildren(statusBadge(agreement.status))
    row.children[4]?.classList.add('lines')
  })
  return wrap
}
