import type { Settings } from '../session.js'

/** What a page is given: where to draw, and the gateway's settings. */
export interface PageContext {
  main: HTMLElement
  settings: Settings
  scopes: string[]
}
