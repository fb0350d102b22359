import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { DEMO_AGENCIES } from '../../src/demo.js'
import type { GatewayProcess } from './gateway-process.js'

/**
 * A newcomer's first minute, as test/first-run.test.ts (the embedded store) and
 * test/first-run-redis.test.ts (Redis) check it: the start's banner, its printed commands run in
 * bash as pasted, and what they must show.
 */

export const root = fileURLToPath(new URL('../../', import.meta.url))
export const run = promisify(execFile)
/** no AUDIT_LOG_FILE, as a newcomer starts it */
export const asStarted = { unset: ['AUDIT_LOG_FILE'] }

/** the start's last words: the demo banner, or what it says instead of one */
export async function startMessage (gateway: GatewayProcess): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    if (/API reference:|No demo:|No agency is registered/.test(gateway.stderr())) return gateway.stderr()
    if (gateway.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no start message: ${gateway.stderr()}`)
}

/** the commands the banner prints, as printed (comment lines included) */
export function printedCommands (banner: string): string[] {
  const lines = banner.split('\n')
  const start = lines.findIndex((line) => line.includes('Paste into bash'))
  const end = lines.findIndex((line, i) => i > start + 1 && line.trim() === '')
  return lines.slice(start + 2, end)
}

/**
 * Runs the printed commands in one bash in the gateway's folder, as a newcomer pastes them, and
 * returns what each group (a comment line starts one) printed.
 */
export async function runPrinted (t: Test, commands: string[]): Promise<string[]> {
  t.ok(commands.length > 10 && commands.every((line) => line !== ''), 'the banner prints commands')
  // each group, which a comment line starts, is told apart in the output; the rest runs as printed
  const script = commands.map((line) => line.trimStart().startsWith('#') ? 'echo "=== group"' : line).join('\n')
  const { stdout } = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() }, timeout: 180_000 })
  return stdout.split('=== group\n').slice(1)
}

/** the printed commands reach a found result, its file's bytes, the portal's history and the audit trail */
export async function checkPrintedCommands (t: Test, banner: string): Promise<void> {
  const [agencies, query, download, portal, audit] = await runPrinted(t, printedCommands(banner)) as [string, string, string, string, string]
  t.same((JSON.parse(agencies) as { agencies: Array<{ code: string }> }).agencies.map((a) => a.code).sort(), DEMO_AGENCIES.map((a) => a.code).sort(), 'admin: the registered agencies')
  const answer = JSON.parse(query) as { results: Array<{ found: boolean, documents: Array<{ file?: { sha256: string }, download?: string }> }> }
  t.equal(answer.results[0]?.found, true, 'requester: the printed reuse query answers found: true')
  const sha256 = answer.results[0]?.documents[0]?.file?.sha256
  t.ok(sha256 && answer.results[0]?.documents[0]?.download, 'the result has a file and a download link')
  const saved = /^saved (.+)$/m.exec(download)?.[1]
  t.ok(saved, 'the download says where it saved the file')
  const bytes = readFileSync(saved!.startsWith('/') ? saved! : join(root, saved!))
  t.equal(bytes.subarray(0, 5).toString(), '%PDF-', 'a PDF')
  t.equal(createHash('sha256').update(bytes).digest('hex'), sha256, "the file's bytes are the ones the answer describes")
  const history = JSON.parse(portal) as { items: Array<{ agency: { code: string } }> }
  t.ok(history.items.some((item) => item.agency.code === '000.20.41.H41'), "portal: the citizen's access history shows the ward's query")
  const [search, stats] = audit.trim().split('\n')
  t.ok((JSON.parse(search!) as { events: Array<{ action: string }> }).events.some((e) => e.action === 'reuse.queried'), 'auditor: the audit search finds the query')
  t.ok((JSON.parse(stats!) as { total: { queries: number, downloads: number } }).total.downloads >= 1, 'auditor: the statistics count the download')
}

export function auditEvents (file: string): Array<{ action: string, actor: string | null, detail?: Record<string, unknown> }> {
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { audit?: { action: string, actor: string | null, detail?: Record<string, unknown> } }).audit).filter((e) => e !== undefined)
}
