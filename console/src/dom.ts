/** A small element builder: the console has no framework, only elements made here. */

type Child = Node | string | number | null | undefined | false
type Props = Record<string, unknown>

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, props?: Props | null, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value as EventListener)
    } else if (name === 'class') {
      el.className = String(value)
    } else if (name === 'value' || name === 'checked' || name === 'selected') {
      (el as unknown as Record<string, unknown>)[name] = value
    } else {
      el.setAttribute(name, value === true ? '' : String(value))
    }
  }
  append(el, children)
  return el
}

export function append (el: Element, children: Array<Child | Child[]>): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'number' ? String(child) : child)
  }
}

let ids = 0
/** a fresh id, to tie a label to its control */
export function uid (prefix: string): string {
  return `${prefix}-${++ids}`
}

/** A labelled control: the label names it for a screen reader and for a test alike. */
export function field (label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= uid('f')
  const hintEl = hint ? h('small', { id: `${control.id}-hint`, class: 'hint' }, hint) : null
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl)
}

export function option (value: string, label: string, selected = false): HTMLOptionElement {
  return h('option', { value, selected }, label)
}

/** Saves text as a file through a blob URL (no server round trip, nothing kept). */
export function saveFile (name: string, type: string, parts: BlobPart[]): void {
  const url = URL.createObjectURL(new Blob(parts, { type }))
  const a = h('a', { href: url, download: name, hidden: true })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
