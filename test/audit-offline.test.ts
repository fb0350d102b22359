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
import { parseCheckpoints, readAuditLog, verifyAuditFile, verifyAuditTrail } from '../src/services/audit-verify.js'
import type { FastifyInstance } from 'fastify'
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
  // the admin's registration from configuration is the first event: the checkpoint pins the sixth
  for (let i = 0; i < 3; i++) await tokenFor(app, issuer)
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

async function cliVerify (lines: string[], args: string[] = [], jwks = jwksFile): Promise<{ code: number, result: any, stderr: string }> {
  const file = join(dir, `cli-${Math.random().toString(36).slice(2)}.log`)
  writeFileSync(file, lines.length ? lines.join('\n') + '\n' : '')
  const parse = (stdout: string): any => stdout.trim() ? JSON.parse(stdout) : undefined
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'verify', file, '--jwks', jwks, ...args], { cwd: root, env: { ...process.env, ...coverageEnv() } })
    return { code: 0, result: parse(stdout), stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, result: parse(e.stdout), stderr: e.stderr }
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
  t.equal(eventLines.length, 10, 'the admin from configuration, a token, an agency, seven tokens')
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

t.test('a file in which nothing can be checked is an error, never ok', async (t) => {
  const empty = await cliVerify([])
  t.equal(empty.code, 2, 'an empty file')
  t.equal(empty.result.ok, false)
  t.equal(empty.result.checked, 0)
  t.match(empty.result.reason, /nothing to verify.*empty/)
  t.match(empty.stderr, /does not verify: nothing to verify/)

  // the gateway's other log, or the log with every event line removed
  const other = await cliVerify([JSON.stringify({ level: 30, time: 1, msg: 'server listening' }), ...original.filter((line) => !isEvent(line))])
  t.equal(other.code, 2, 'a log without its events')
  t.match(other.result.reason, /nothing to verify.*2 checkpoint\(s\) and 1 other log record/)

  const unknown = await cliVerify(['{"hello":"world"}'])
  t.equal(unknown.code, 2, 'JSON of no known shape is not skipped')
  t.match(unknown.result.reason, /line 1: .*neither an audit event, a checkpoint nor a log record/)
  const garbage = await cliVerify([...original.slice(0, 2), 'not json at all', ...original.slice(2)])
  t.equal(garbage.code, 2, 'nor is a line that is not JSON')
  t.match(garbage.result.reason, /line 3: the line is not JSON/)
})

/** one change to one event, its hash and every later one recomputed, so that every link holds */
function rehashedFrom (events: any[], n: number, change: (event: any) => void): any[] {
  const out = events.map((e) => ({ ...e }))
  change(out[n])
  for (let i = n; i < out.length; i++) {
    if (i > n && out[i].chain === out[n].chain) out[i].prevHash = out[i - 1].hash
    if (out[i].chain === out[n].chain) out[i].hash = eventHash(out[i])
  }
  return out
}

t.test('exports: the API\'s and the command-line tool\'s', async (t) => {
  const auditor = await makeAgency('000.00.00.A02')
  const app: FastifyInstance = await build(t, { env: adminEnv(admin) })
  const adminToken = await tokenFor(app, admin)
  const issuer = await makeAgency('000.00.12.H41')
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  await register(app, adminToken, auditor, ['auditor'])
  for (let i = 0; i < 2; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const middle = new Date().toISOString()
  await new Promise((resolve) => setTimeout(resolve, 5))
  for (let i = 0; i < 3; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const end = new Date().toISOString()
  const jwks = join(dir, 'exports-jwks.json')
  writeFileSync(jwks, JSON.stringify(app.signingKeys.jwks()))
  const auditorToken = await tokenFor(app, auditor)
  const get = async (url: string): Promise<{ statusCode: number, body: string, json: () => any }> => await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auditorToken}` } })

  const exported = (await get(`/v1/audit/export?to=${end}`)).body.trim().split('\n')
  const events = exported.map((line) => JSON.parse(line))
  t.equal(events.length, 9, 'the admin from configuration, a token, two agencies, five tokens')
  const checkpointsAnswer = await get(`/v1/audit/checkpoints?to=${end}`)
  t.equal(checkpointsAnswer.statusCode, 200)
  const checkpointsFile = join(dir, 'checkpoints.json')
  writeFileSync(checkpointsFile, checkpointsAnswer.body)
  t.equal(checkpointsAnswer.json().checkpoints.length, 2)
  const cli = async (lines: string[], args: string[] = []): ReturnType<typeof cliVerify> => await cliVerify(lines, args, jwks)
  // what the command runs, in this process (each command run costs seconds)
  const verify = async (lines: string[], args: string[] = []): Promise<{ code: number, result: any }> => {
    const file = join(dir, `in-${Math.random().toString(36).slice(2)}.ndjson`)
    writeFileSync(file, lines.join('\n') + '\n')
    const option = (name: string): string | undefined => args[args.indexOf(name) + 1]
    const checkpoints = args.includes('--checkpoint') ? parseCheckpoints(readFileSync(option('--checkpoint') as string, 'utf8'), 'checkpoints') : []
    const result = await verifyAuditFile(file, createLocalJWKSet(app.signingKeys.jwks()), { checkpoints, ...(args.includes('--from') ? { from: option('--from') as string } : {}) })
    return { code: result.ok ? 0 : 2, result }
  }

  t.test('an API export verifies, each event counted', async (t) => {
    const alone = await cli(exported)
    t.equal(alone.code, 0)
    t.same(alone.result, { ok: true, checked: 9, chains: 1, checkpoints: 0 })
    t.match(alone.stderr, /no signed checkpoint was checked/, 'and says what it could not check')
    const withCheckpoints = await cli(exported, ['--checkpoint', checkpointsFile])
    t.same(withCheckpoints.result, { ok: true, checked: 9, chains: 1, checkpoints: 2 })
    t.equal(withCheckpoints.stderr, '')
  })

  t.test('a changed field, a deleted line, two swapped lines in an API export', async (t) => {
    const changed = exported.map((line, i) => i === 4 ? JSON.stringify({ ...events[4], outcome: 'denied' }) : line)
    const edited = await cli(changed)
    t.equal(edited.code, 2, 'the tool exits non-zero')
    t.equal(edited.result.firstBadEvent, events[4].id)
    t.match(edited.result.reason, /altered/)

    const deleted = await verify(exported.filter((_, i) => i !== 5))
    t.equal(deleted.code, 2)
    t.equal(deleted.result.firstBadEvent, events[6].id)
    t.match(deleted.result.reason, /missing/)

    const swapped = [...exported]
    ;[swapped[7], swapped[8]] = [swapped[8] as string, swapped[7] as string]
    const reordered = await verify(swapped)
    t.equal(reordered.code, 2)
    t.equal(reordered.result.firstBadEvent, events[8].id)

    const first = await verify(exported.slice(1))
    t.equal(first.code, 2, 'the first line deleted')
    t.match(first.result.reason, /missing and no signed checkpoint vouches/)
  })

  t.test('an export re-hashed throughout, or cut at its end, is caught by the checkpoints of the API', async (t) => {
    const rehashed = rehashedFrom(events, 3, (e) => { e.actor = '000.00.99.H41' }).map((e) => JSON.stringify(e))
    t.equal((await verify(rehashed)).code, 0, 'on its own, every link holds')
    const caught = await cli(rehashed, ['--checkpoint', checkpointsFile])
    t.equal(caught.code, 2)
    t.equal(caught.result.firstBadEvent, checkpointsPinned(events, checkpointsAnswer.json().checkpoints[0]).id)
    t.match(caught.result.reason, /differs from what a signed checkpoint recorded/)

    const cut = exported.slice(0, 8)
    t.equal((await verify(cut)).code, 0, 'on its own, a cleanly cut export cannot tell')
    const tail = await verify(cut, ['--checkpoint', checkpointsFile])
    t.equal(tail.code, 2)
    t.equal(tail.result.firstBadEvent, `${events[0].chain}#9`)
    t.match(tail.result.reason, /cut off its end/)
  })

  t.test('a range export is vouched for by the checkpoints made in its range', async (t) => {
    const ranged = (await get(`/v1/audit/export?from=${middle}&to=${end}`)).body.trim().split('\n')
    t.equal(ranged.length, 3)
    const rangeCheckpoints = join(dir, 'range-checkpoints.json')
    writeFileSync(rangeCheckpoints, (await get(`/v1/audit/checkpoints?from=${middle}&to=${end}`)).body)
    t.equal(JSON.parse(readFileSync(rangeCheckpoints, 'utf8')).checkpoints.length, 1)
    const ok = await verify(ranged, ['--from', middle, '--checkpoint', rangeCheckpoints])
    t.same(ok.result, { ok: true, checked: 3, chains: 1, checkpoints: 1 })
    const unsaid = await cli(ranged, ['--checkpoint', rangeCheckpoints])
    t.equal(unsaid.code, 2, 'a chain starting mid-way, when the file is not said to be a range')
    t.match(unsaid.result.reason, /--from/)
    const unvouched = await verify(ranged, ['--from', middle])
    t.equal(unvouched.code, 2, 'without a checkpoint, nothing vouches for where the range starts')
    t.match(unvouched.result.reason, /nothing vouches for these events/)
    const rehashed = rehashedFrom(ranged.map((line) => JSON.parse(line)), 0, (e) => { e.outcome = 'denied' }).map((e) => JSON.stringify(e))
    const caught = await verify(rehashed, ['--from', middle, '--checkpoint', rangeCheckpoints])
    t.equal(caught.code, 2, 'a range re-hashed throughout')
    t.match(caught.result.reason, /differs from what a signed checkpoint recorded/)
  })

  t.test('the command-line export holds its checkpoints and verifies on its own', async (t) => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    const keyFile = join(dir, 'auditor.private.jwk.json')
    writeFileSync(keyFile, JSON.stringify(auditor.privateKey))
    const out = join(dir, 'cli-export.ndjson')
    const exportArgs = ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'export', '--key', keyFile, '--gateway', address, '--out', out, '--quiet']
    const { stderr } = await run(process.execPath, exportArgs, { cwd: root, env: { ...process.env, ...coverageEnv() } })
    t.match(stderr, /events and 2 checkpoints written to/)
    const written = readFileSync(out, 'utf8').trim().split('\n')
    const writtenEvents = written.filter((line) => JSON.parse(line).checkpoint === undefined)
    t.ok(writtenEvents.length > 9)
    const whole = await cli(written)
    t.same(whole.result, { ok: true, checked: writtenEvents.length, chains: 1, checkpoints: 2 })

    const changed = written.map((line, i) => i === 2 ? line.replace('"granted"', '"denied"') : line)
    t.equal((await verify(changed)).result.firstBadEvent, JSON.parse(written[2] as string).id, 'a changed field')
    t.equal((await verify(written.filter((_, i) => i !== 2))).code, 2, 'a deleted line')
    const swapped = [...written]
    ;[swapped[1], swapped[2]] = [swapped[2] as string, swapped[1] as string]
    t.equal((await verify(swapped)).code, 2, 'two swapped lines')
    const cut = [...written.slice(0, 8), ...written.filter((line) => JSON.parse(line).checkpoint !== undefined)]
    const tail = await verify(cut)
    t.equal(tail.code, 2, 'a cut tail, against its own checkpoints')
    t.match(tail.result.reason, /cut off its end/)
    const rehashed = [...rehashedFrom(writtenEvents.map((line) => JSON.parse(line)), 2, (e) => { e.outcome = 'denied' }).map((e) => JSON.stringify(e)), ...written.slice(writtenEvents.length)]
    t.match((await verify(rehashed)).result.reason, /differs from what a signed checkpoint recorded/, 're-hashed throughout')

    const rangeOut = join(dir, 'cli-range.ndjson')
    await run(process.execPath, [...exportArgs.slice(0, -3), '--out', rangeOut, '--from', middle, '--quiet'], { cwd: root, env: { ...process.env, ...coverageEnv() } })
    const range = readFileSync(rangeOut, 'utf8').trim().split('\n')
    t.equal((await cli(range, ['--from', middle])).result.ok, true, 'a range exported with --from verifies with it')
  })
})

/** the event a checkpoint pins: its head of the events' chain */
function checkpointsPinned (events: any[], checkpoint: { chains: Array<{ chain: string, seq: number }> }): any {
  const head = checkpoint.chains.find((c) => c.chain === events[0].chain)
  return events.find((e) => e.chain === head?.chain && e.seq === head?.seq)
}
