import 'uplot/dist/uPlot.min.css'
import './console.css'
import { field, h, option } from './dom.js'
import { applyLang, currentLang, setLang, t } from './i18n.js'
import type { Lang, TextKey } from './i18n.js'
import { agenciesPage } from './pages/agencies.js'
import { auditPage } from './pages/audit.js'
import { deliveriesPage } from './pages/deliveries.js'
import type { PageContext } from './pages/page.js'
import { reusePage } from './pages/reuse.js'
import { SignInError, current, readKeyFile, renewNow, signIn, signOut, whenSessionLost } from './session.js'
import type { AgencyKey, Settings } from './session.js'

/**
 * The console's shell: sign-in, the header (language, sign-out), the pages a token's scopes
 * open, and the hash route (#/reuse…: never anything personal). A page the scopes do not open
 * is neither linked nor drawn: reached by its address, it says so and shows nothing else.
 */

interface Route { path: string, title: TextKey, scope: string, render: (ctx: PageContext) => Promise<void> }

const ROUTES: Route[] = [
  { path: 'reuse', title: 'navReuse', scope: 'audit:read', render: reusePage },
  { path: 'audit', title: 'navAudit', scope: 'audit:read', render: auditPage },
  { path: 'agencies', title: 'navAgencies', scope: 'admin', render: agenciesPage },
  { path: 'deliveries', title: 'navDeliveries', scope: 'admin', render: deliveriesPage }
]

const root = document.getElementById('app') as HTMLElement
let settings: Settings
let flash: { key: TextKey, vars?: Record<string, string> } | undefined

function languageSwitch (): HTMLElement {
  const select = h('select', { name: 'lang', class: 'lang' }, option('vi', 'Tiếng Việt', currentLang() === 'vi'), option('en', 'English', currentLang() === 'en'))
  select.addEventListener('change', () => {
    setLang(select.value as Lang)
    render()
    document.querySelector<HTMLSelectElement>('select.lang')?.focus()
  })
  return field(t('language'), select)
}

function header (signedIn: boolean): HTMLElement {
  const session = current()
  return h('header', { class: 'top' },
    h('a', { class: 'skip', href: '#main' , onclick: (e: Event) => { e.preventDefault(); document.getElementById('main')?.focus() } }, t('skipToContent')),
    h('div', { class: 'brand' }, h('h1', null, t('appTitle')), h('p', null, t('appSubtitle'))),
    h('div', { class: 'session' },
      languageSwitch(),
      signedIn && session
        ? h('div', { class: 'who' },
          h('p', { 'data-agency': session.agency }, t('signedInAs', { agency: session.agency })),
          h('p', { class: 'scopes' }, t('scopes', { scopes: session.scopes.join(' ') })),
          h('button', { type: 'button', class: 'secondary', onclick: () => { signOut(); flash = { key: 'signedOut' }; location.hash = ''; render() } }, t('signOut')))
        : null))
}

function signInView (): HTMLElement {
  const file = h('input', { type: 'file', name: 'key', accept: '.json,.jwk,application/json', required: true })
  const code = h('input', { type: 'text', name: 'agency', autocomplete: 'off', spellcheck: 'false', placeholder: '000.00.00.A02' })
  const message = h('div', { role: 'alert', class: 'error' })
  const button = h('button', { type: 'submit' }, t('signIn'))
  let key: AgencyKey | undefined
  file.addEventListener('change', () => {
    key = undefined
    message.replaceChildren()
    const chosen = file.files?.[0]
    if (!chosen) return
    readKeyFile(chosen).then((read) => {
      key = read
      // confirm or type the agency: the file may name it
      if (read.agency && !code.value) code.value = read.agency
    }, (err: Error) => { message.textContent = err.message })
  })
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title' }, t('signInTitle')),
    h('p', null, t('signInIntro')),
    field(t('keyFile'), file, t('keyFileHint')),
    field(t('agencyCode'), code, t('agencyCodeHint')),
    message,
    h('div', { class: 'actions' }, button))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void (async () => {
      message.replaceChildren()
      const chosen = file.files?.[0]
      if (!chosen) { message.textContent = t('chooseKey'); return }
      button.disabled = true
      button.textContent = t('signingIn')
      try {
        key ??= await readKeyFile(chosen)
        if (!code.value.trim() && key.agency) code.value = key.agency
        await signIn(key, code.value.trim(), settings)
        // the file input let go of the file: nothing of the key is left in the page
        file.value = ''
        key = undefined
        flash = undefined
        if (!location.hash) location.hash = `#/${firstRoute()?.path ?? ''}`
        render()
      } catch (err) {
        message.textContent = err instanceof SignInError ? err.message : t('error', { message: (err as Error).message })
        button.disabled = false
        button.textContent = t('signIn')
      }
    })()
  })
  return form
}

const allowed = (route: Route): boolean => current()?.scopes.includes(route.scope) === true
const firstRoute = (): Route | undefined => ROUTES.find(allowed)

function render (): void {
  document.title = t('appTitle')
  const session = current()
  const main = h('main', { id: 'main', tabindex: -1 })
  if (!session) {
    root.replaceChildren(header(false), h('div', { class: 'layout' }, main))
    if (flash) main.append(h('p', { role: 'status', class: 'notice' }, t(flash.key, flash.vars)))
    main.append(signInView())
    return
  }
  const path = location.hash.replace(/^#\/?/, '')
  const route = ROUTES.find((r) => r.path === path) ?? firstRoute()
  const nav = h('nav', { 'aria-label': t('navLabel') }, h('ul', null, ROUTES.filter(allowed).map((r) =>
    h('li', null, h('a', { href: `#/${r.path}`, 'aria-current': r === route ? 'page' : null }, t(r.title))))))
  root.replaceChildren(header(true), h('div', { class: 'layout' }, nav, main))
  if (!route) {
    main.append(h('p', { role: 'alert' }, t('noPage')))
    return
  }
  if (!allowed(route)) {
    // guarded here too: the address alone opens nothing (and the API refuses anyway)
    main.append(h('h2', { id: 'page-title' }, t(route.title)), h('p', { role: 'alert', class: 'error' }, t('notAllowed', { scope: route.scope })))
    return
  }
  document.title = `${t(route.title)} — ${t('appTitle')}`
  void route.render({ main, settings, scopes: session.scopes })
}

async function start (): Promise<void> {
  applyLang()
  const response = await fetch('console/settings.json', { cache: 'no-cache', credentials: 'omit' })
  settings = await response.json() as Settings
  whenSessionLost((reason) => { flash = { key: 'sessionLost', vars: { reason } }; render() })
  window.addEventListener('hashchange', () => { render(); document.getElementById('page-title')?.focus() })
  render()
}

// for the browser tests: renewal without waiting for the token's lifetime
Object.defineProperty(window, 'reuseConsole', { value: Object.freeze({ renewNow }) })

void start()
