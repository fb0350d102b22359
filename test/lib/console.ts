import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'

/**
 * The console's tests: the console built as `npm run build` builds it (again only when a source
 * is newer than the build), Debian's chromium driven by playwright-core, and a folder for the
 * screenshots (git-ignored).
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
export const SCREENSHOTS = join(root, 'test-output', 'console')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

function newest (dir: string): number {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

export function ensureConsoleBuilt (): void {
  const manifest = join(root, 'dist', 'console', 'manifest.json')
  const sources = Math.max(newest(join(root, 'console', 'src')), statSync(join(root, 'scripts', 'build-console.mjs')).mtimeMs)
  if (existsSync(manifest) && statSync(manifest).mtimeMs >= sources) return
  execFileSync(process.execPath, [join(root, 'scripts', 'build-console.mjs')], { cwd: root, stdio: 'ignore' })
}

/** One headless chromium for a test file; CI installs Debian's package when it is missing (.ci/run). */
export async function launchBrowser (): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`the console tests need chromium at ${CHROMIUM} (Debian: apt-get install -y chromium; or set CHROMIUM_PATH)`)
  mkdirSync(SCREENSHOTS, { recursive: true })
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-default-apps',
      '--disable-sync', '--no-first-run', '--disable-extensions', '--metrics-recording-only', '--disable-dev-shm-usage',
      '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication'
    ]
  })
}
