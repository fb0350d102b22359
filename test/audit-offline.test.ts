import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { createLocalJWKSet } from 'jose'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { readAuditLog, verifyAuditTrail } from '../src/services/audit-verify.js'
import { eventHash } from '../src/services/audit.js'
import { coverageEnv } from './lib/child-coverage.js'

/**
 * The audit log file alone verifies the chain offline, and every kind of tampering with it is
 * found, by the library and by `reuse-gateway audit verify`.
 */
const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'rg-offline-'))

// a gateway writes a log: tokens, agency changes, a checkpoint mid-way, and one at shutdown
const admin = await makeAgency(ADMIN_CODE)
let logFile = ''
let jwksFile = ''
await t.test('a gateway writes its audit log', async (t) => {
  const app = await build(t, { env: adminEnv(admin) })
  logFile = app.config.auditLogFile as string
  const adminToken = await tokenFor(app, admin)
  const issuer = await makeAgency('000.00.12.H41')
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  for (let i = 0; i < 4; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  for (let i = 0; i < 4; i++) await tokenFor(app, issuer)
  jwksFile = join(dir, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify(app.signingKeys.jwks()))
  await app.close()
})

const original = readFileSync(logFile, 'utf8').trim().split('\n')
const isEvent = (line: string): boolean => JSON.parse(line).audit !== undefined
const eventLines = original.filter(isEvent)
const eventOf = (line: string): any => JSON.parse(line).audit

async function verifyLines (lines: string[], extra: string[] = []): Promise<Awaited<ReturnType<typeof verifyAuditTrail>>> {
  const file = join(dir, `log-${Math.random().toString(36).slice(2)}.log`)
  writeFileSync(file, lines.join('\n') + '\n')
  const contents = await readAuditLog(file)
  return await verifyAuditTrail(contents.events(), [...contents.checkpoints, ...extra.map((jws) => ({ jws }))], createLocalJWKSet(JSON.parse(readFileSync(jwksFile, 'utf8'))))
}

async function cliVerify (lines: string[], args: string[] = []): Promise<{ code: number, result: any }> {
  const file = join(dir, `cli-${Math.random().toString(36).slice(2)}.log`)
  writeFileSync(file, lines.join('\n') + '\n')
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'verify', file, '--jwks', jwksFile, ...args], { cwd: root, env: { ...process.env, ...coverageEnv() } })
    return { code: 0, result: JSON.parse(stdout) }
  } catch (err) {
    const e = err as { code: number, stdout: string }
    return { code: e.code, result: JSON.parse(e.stdout) }
  }
}

/** replaces the n-th event line (0-based among event lines) */
function withEvent (n: number, change: (event: any) => any): string[] {
  let i = -1
  return original.map((line) => {
    if (!isEvent(line)) return line
    i++
    if (i !== n) return line
    const record = JSON.parse(line)
    record.audit = change(record.audit)
    return JSON.stringify(record)
  })
}

t.test('the untouched log verifies, with the library and the command-line tool', async (t) => {
  t.equal(eventLines.length, 10, 'a token, an agency, eight tokens')
  t.ok(original.some((line) => JSON.parse(line).checkpoint), 'checkpoints are in the log')
  const result = await verifyLines(original)
  t.same(result, { ok: true, checked: eventLines.length, chains: 1, checkpoints: 2 })
  const cli = await cliVerify(original)
  t.equal(cli.code, 0)
  t.equal(cli.result.ok, true)
})

function expectBad (t: Test, result: any, firstBad: string, reason: RegExp): void {
  t.equal(result.ok, false)
  t.equal(result.firstBadEvent, firstBad)
  t.match(result.reason, reason)
}

t.test('an edited event', async (t) => {
  const lines = withEvent(5, (e) => ({ ...e, outcome: 'denied' }))
  expectBad(t, await verifyLines(lines), eventOf(eventLines[5] as string).id, /altered/)
  const cli = await cliVerify(lines)
  t.equal(cli.code, 2, 'the tool exits non-zero')
  t.equal(cli.result.firstBadEvent, eventOf(eventLines[5] as string).id)
})

t.test('an edited event with a recomputed hash', async (t) => {
  const lines = withEvent(2, (e) => { const changed = { ...e, actor: '000.00.99.H41' }; changed.hash = eventHash(changed); return changed })
  expectBad(t, await verifyLines(lines), eventOf(eventLines[3] as string).id, /link/)
  // the event a checkpoint pinned cannot be re-hashed unnoticed either
  const pinned = withEvent(5, (e) => { const changed = { ...e, actor: '000.00.99.H41' }; changed.hash = eventHash(changed); return changed })
  expectBad(t, await verifyLines(pinned), eventOf(eventLines[5] as string).id, /checkpoint/)
})

t.test('a line that no longer parses', async (t) => {
  const lines = original.map((line) => line === eventLines[3] ? line.slice(0, 40) + '"audit"' : line)
  const result = await verifyLines(lines)
  t.equal(result.ok, false)
})

t.test('a deleted event in the middle', async (t) => {
  const lines = original.filter((line) => line !== eventLines[4])
  expectBad(t, await verifyLines(lines), eventOf(eventLines[5] as string).id, /missing/)
  t.equal((await cliVerify(lines)).result.firstBadEvent, eventOf(eventLines[5] as string).id)
})

t.test('reordered events', async (t) => {
  const lines = [...original]
  const a = lines.indexOf(eventLines[6] as string)
  const b = lines.indexOf(eventLines[7] as string)
  ;[lines[a], lines[b]] = [lines[b] as string, lines[a] as string]
  expectBad(t, await verifyLines(lines), eventOf(eventLines[7] as string).id, /missing|out of order/)
})

t.test('a truncated tail: events cut after the last checkpoint was written', async (t) => {
  const lastEvents = new Set(eventLines.slice(-3))
  const lines = original.filter((line) => !lastEvents.has(line))
  const cut = eventOf(eventLines[eventLines.length - 3] as string)
  expectBad(t, await verifyLines(lines), `${cut.chain}#${cut.seq}`, /cut off its end/)
})

t.test('a truncated tail with its checkpoints: caught by a checkpoint kept elsewhere', async (t) => {
  const lastCheckpoint = JSON.parse(original.filter((line) => JSON.parse(line).checkpoint).at(-1) as string).checkpoint.jws as string
  const keep = original.indexOf(eventLines[eventLines.length - 4] as string)
  const lines = original.slice(0, keep + 1)
  t.equal((await verifyLines(lines)).ok, true, 'on its own, a cleanly cut log cannot tell')
  const cpFile = join(dir, 'checkpoint.jws')
  writeFileSync(cpFile, lastCheckpoint)
  const cli = await cliVerify(lines, ['--checkpoint', cpFile])
  t.equal(cli.code, 2)
  t.match(cli.result.reason, /cut off its end/)
})

t.test('a forged checkpoint', async (t) => {
  const lines = original.map((line) => {
    const record = JSON.parse(line)
    if (!record.checkpoint) return line
    const [h, p, s] = record.checkpoint.jws.split('.')
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
    claims.chains[0].seq += 5
    record.checkpoint.jws = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
    return JSON.stringify(record)
  })
  const result = await verifyLines(lines)
  t.equal(result.ok, false)
  t.match(result.reason, /forged or altered/)
  t.equal((await cliVerify(lines)).code, 2)
})
