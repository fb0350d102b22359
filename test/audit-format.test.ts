import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import canonicalizeModule from 'canonicalize'
import { compactVerify, createLocalJWKSet } from 'jose'
import type { JSONWebKeySet } from 'jose'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { verifyAuditFile } from '../src/services/audit-verify.js'

/**
 * docs/audit-format.md is enough to verify the trail: a verifier written from that page alone
 * (below, sharing no code with the gateway: an RFC 8785 library, node:crypto and a JOSE
 * library) agrees with the gateway's own verifier on untouched and tampered trails.
 */

// ---- the outsider's verifier, from docs/audit-format.md ----

const canonicalize = canonicalizeModule as unknown as (value: unknown) => string
const GENESIS = '0'.repeat(64)

interface Verdict { ok: boolean, at?: string }

async function outsiderVerify (lines: string[], keptApart: string[], jwks: JSONWebKeySet, options: { from?: string } = {}): Promise<Verdict> {
  const keys = createLocalJWKSet(jwks)
  const events: any[] = []
  const checkpoints = keptApart.map((jws) => ({ jws, fromLog: false }))
  // telling lines apart
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue
    let record: any
    try { record = JSON.parse(line) } catch { return { ok: false, at: `line ${i + 1}` } }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) return { ok: false, at: `line ${i + 1}` }
    const logRecord = typeof record.level === 'number' && typeof record.msg === 'string'
    if ('audit' in record) events.push(record.audit)
    else if ('checkpoint' in record) checkpoints.push({ jws: record.checkpoint.jws, fromLog: logRecord })
    else if (logRecord) continue
    else if (['hash', 'prevHash', 'chain', 'seq'].some((member) => member in record)) events.push(record)
    else return { ok: false, at: `line ${i + 1}` }
  }
  // 1. checkpoints
  const pins = new Map<string, string>()
  const highest = new Map<string, number>()
  const writers = new Set<string>()
  for (const checkpoint of checkpoints) {
    let claims: { writer: string, chains: Array<{ chain: string, seq: number, hash: string }> }
    try {
      const { payload, protectedHeader } = await compactVerify(checkpoint.jws, keys)
      if (protectedHeader.typ !== 'audit-checkpoint+jwt') return { ok: false, at: 'checkpoint' }
      claims = JSON.parse(new TextDecoder().decode(payload))
    } catch {
      return { ok: false, at: 'checkpoint' }
    }
    if (checkpoint.fromLog) writers.add(claims.writer)
    for (const head of claims.chains) {
      const position = `${head.chain}#${head.seq}`
      if (pins.has(position) && pins.get(position) !== head.hash) return { ok: false, at: position }
      pins.set(position, head.hash)
      highest.set(head.chain, Math.max(highest.get(head.chain) ?? 0, head.seq))
    }
  }
  // 2. events, in file order
  const from = options.from ? Date.parse(options.from) : undefined
  const last = new Map<string, { seq: number, hash: string }>()
  const unvouched = new Map<string, string>()
  for (const event of events) {
    const { hash, ...covered } = event
    const recomputed = createHash('sha256').update(canonicalize(covered), 'utf8').digest('hex')
    if (recomputed !== hash) return { ok: false, at: event.id }
    if (from !== undefined && Date.parse(event.time) < from) return { ok: false, at: event.id }
    const previous = last.get(event.chain)
    if (!previous) {
      const before = pins.get(`${event.chain}#${event.seq - 1}`)
      if (event.seq === 1) {
        if (event.prevHash !== GENESIS) return { ok: false, at: event.id }
      } else if (before !== undefined) {
        if (before !== event.prevHash) return { ok: false, at: event.id }
      } else if (from !== undefined) {
        unvouched.set(event.chain, event.id)
      } else {
        return { ok: false, at: event.id }
      }
    } else if (event.seq !== previous.seq + 1 || event.prevHash !== previous.hash) {
      return { ok: false, at: event.id }
    }
    const pinned = pins.get(`${event.chain}#${event.seq}`)
    if (pinned !== undefined) {
      if (pinned !== hash) return { ok: false, at: event.id }
      unvouched.delete(event.chain)
    }
    last.set(event.chain, { seq: event.seq, hash })
  }
  // 3. the ends of the chains
  for (const [chain, top] of highest) {
    const reached = last.get(chain)?.seq
    if (reached === undefined && !writers.has(chain)) continue
    if ((reached ?? 0) < top) return { ok: false, at: `${chain}#${(reached ?? 0) + 1}` }
  }
  for (const id of unvouched.values()) return { ok: false, at: id }
  // 4. nothing read, nothing proved
  if (events.length === 0) return { ok: false }
  return { ok: true }
}

// ---- the gateway's trail, and both verifiers on it ----

const dir = mkdtempSync(join(tmpdir(), 'rg-format-'))
const admin = await makeAgency(ADMIN_CODE)
const auditor = await makeAgency('000.00.00.A02')
const issuer = await makeAgency('000.00.12.H41')
const pause = async (): Promise<void> => await new Promise((resolve) => setTimeout(resolve, 5))

async function auditorGet (app: FastifyInstance, url: string): Promise<string> {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${await tokenFor(app, auditor)}` } })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`)
  return res.body
}

async function gateway (app: FastifyInstance): Promise<{ jwks: JSONWebKeySet, adminToken: string }> {
  const adminToken = await tokenFor(app, admin)
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: ['giay-khai-sinh'] })
  await register(app, adminToken, auditor, ['auditor'])
  // what anyone can fetch: the published keys
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as JSONWebKeySet
  return { jwks, adminToken }
}

async function agree (t: Test, name: string, jwks: JSONWebKeySet, lines: string[], expected: Verdict, options: { checkpoints?: string[], from?: string } = {}): Promise<void> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.ndjson`)
  writeFileSync(file, lines.length ? lines.join('\n') + '\n' : '')
  const checkpoints = options.checkpoints ?? []
  const theirs = await outsiderVerify(lines, checkpoints, jwks, options.from ? { from: options.from } : {})
  const ours = await verifyAuditFile(file, createLocalJWKSet(jwks), { checkpoints: checkpoints.map((jws) => ({ jws })), ...(options.from ? { from: options.from } : {}) })
  // `at`: where each found the trail broken (the gateway numbers its checkpoints: `checkpoint 0`)
  t.match(theirs, expected, `${name}: the outsider's verdict`)
  t.match({ ok: ours.ok, ...(ours.firstBadEvent ? { at: ours.firstBadEvent } : {}) }, expected, `${name}: the gateway's verdict`)
}

const jsonLines = (text: string): string[] => text.trim().split('\n').filter((line) => line !== '')
const jwsOf = (body: string): string[] => (JSON.parse(body) as { checkpoints: Array<{ jws: string }> }).checkpoints.map((c) => c.jws)

function rehashedFrom (events: any[], n: number, change: (event: any) => void): string[] {
  const out = events.map((e) => ({ ...e }))
  change(out[n])
  for (let i = n; i < out.length; i++) {
    if (out[i].chain !== out[n].chain) continue
    if (i > n) out[i].prevHash = out[i - 1].hash
    const { hash: _hash, ...covered } = out[i]
    out[i].hash = createHash('sha256').update(canonicalize(covered)).digest('hex')
  }
  return out.map((e) => JSON.stringify(e))
}

t.test('an export, its checkpoints and the audit log', async (t) => {
  const app = await build(t, { env: adminEnv(admin) })
  const { jwks } = await gateway(app)
  for (let i = 0; i < 3; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  await pause()
  const middle = new Date().toISOString()
  await pause()
  for (let i = 0; i < 4; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  await pause()
  const end = new Date().toISOString()
  for (let i = 0; i < 2; i++) await tokenFor(app, issuer)

  const exported = jsonLines(await auditorGet(app, `/v1/audit/export?to=${end}`))
  const events = exported.map((line) => JSON.parse(line))
  const checkpoints = jwsOf(await auditorGet(app, `/v1/audit/checkpoints?to=${end}`))
  t.equal(checkpoints.length, 2)
  const pinned = events.filter((e) => checkpoints.some((jws) => JSON.parse(Buffer.from(jws.split('.')[1] as string, 'base64url').toString()).chains.some((c: any) => c.chain === e.chain && c.seq === e.seq)))
  t.equal(pinned.length, 2)
  const [firstPin, lastPin] = pinned

  await agree(t, 'untouched export', jwks, exported, { ok: true }, { checkpoints })
  await agree(t, 'untouched export, no checkpoint', jwks, exported, { ok: true })
  await agree(t, 'an edited field', jwks, exported.map((line, i) => i === 3 ? JSON.stringify({ ...events[3], actor: '000.00.99.H41' }) : line), { ok: false, at: events[3].id }, { checkpoints })
  await agree(t, 'a deleted event', jwks, exported.filter((_, i) => i !== 4), { ok: false, at: events[5].id }, { checkpoints })
  const swapped = [...exported]
  ;[swapped[5], swapped[6]] = [swapped[6] as string, swapped[5] as string]
  await agree(t, 'swapped events', jwks, swapped, { ok: false, at: events[6].id }, { checkpoints })
  const cut = exported.slice(0, events.indexOf(lastPin))
  await agree(t, 'a cut tail, without the checkpoint', jwks, cut, { ok: true })
  await agree(t, 'a cut tail, with the checkpoint', jwks, cut, { ok: false, at: `${lastPin.chain}#${lastPin.seq as number}` }, { checkpoints })
  await agree(t, 'a trail re-hashed throughout', jwks, rehashedFrom(events, 1, (e) => { e.outcome = 'denied' }), { ok: false, at: firstPin.id }, { checkpoints })
  await agree(t, 'a forged checkpoint', jwks, exported, { ok: false, at: 'checkpoint' }, { checkpoints: [checkpoints[0]?.replace(/\.[\w-]+\./, `.${Buffer.from(JSON.stringify({ chains: [] })).toString('base64url')}.`) as string] })
  await agree(t, 'an empty file', jwks, [], { ok: false })
  await agree(t, 'a line of no known shape', jwks, [...exported.slice(0, 2), '{"note":"x"}', ...exported.slice(2)], { ok: false, at: 'line 3' })

  const ranged = jsonLines(await auditorGet(app, `/v1/audit/export?from=${middle}&to=${end}`))
  const rangeCheckpoints = jwsOf(await auditorGet(app, `/v1/audit/checkpoints?from=${middle}&to=${end}`))
  await agree(t, 'a range export', jwks, ranged, { ok: true }, { checkpoints: rangeCheckpoints, from: middle })
  await agree(t, 'a range export, without its checkpoints', jwks, ranged, { ok: false, at: JSON.parse(ranged[0] as string).id }, { from: middle })
  await agree(t, 'a range export with its last event cut', jwks, ranged.slice(0, -1), { ok: false, at: `${lastPin.chain}#${lastPin.seq as number}` }, { checkpoints: rangeCheckpoints, from: middle })

  await app.close()
  const log = jsonLines(readFileSync(app.config.auditLogFile as string, 'utf8'))
  const logEvents = log.filter((line) => JSON.parse(line).audit)
  t.ok(logEvents.length > events.length)
  await agree(t, 'untouched log', jwks, log, { ok: true })
  const otherRecord = JSON.stringify({ level: 50, time: Date.now(), stream: 'audit', chain: events[0].chain, stored: 0, logged: 3, msg: 'the store lost audit events this process logged; continuing on a new chain' })
  await agree(t, 'a log with another record naming a chain', jwks, [...log.slice(0, 3), otherRecord, ...log.slice(3)], { ok: true })
  const victim = JSON.parse(logEvents[2] as string)
  victim.audit.outcome = 'error'
  await agree(t, 'a log with an edited field', jwks, log.map((line) => line === logEvents[2] ? JSON.stringify(victim) : line), { ok: false, at: victim.audit.id })
  const lastEvent = JSON.parse(logEvents.at(-1) as string).audit
  await agree(t, 'a log with its last event cut', jwks, log.filter((line) => line !== logEvents.at(-1)), { ok: false, at: `${lastEvent.chain}#${lastEvent.seq as number}` })
  await agree(t, 'a log without any of its events', jwks, log.filter((line) => !JSON.parse(line).audit), { ok: false })
})

t.test('a trail cut by retention starts from its checkpoint', async (t) => {
  const app = await build(t, { env: adminEnv(admin) })
  const { jwks } = await gateway(app)
  for (let i = 0; i < 3; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  await pause()
  const boundary = new Date()
  await pause()
  for (let i = 0; i < 3; i++) await tokenFor(app, issuer)
  await app.audit.checkpoint()
  t.ok(await app.audit.prune(boundary) > 0)
  const exported = jsonLines(await auditorGet(app, '/v1/audit/export'))
  const checkpoints = jwsOf(await auditorGet(app, '/v1/audit/checkpoints'))
  t.ok(JSON.parse(exported[0] as string).seq > 1, 'the export starts past seq 1')
  await agree(t, 'after retention', jwks, exported, { ok: true }, { checkpoints })
  await agree(t, 'after retention, its first kept event deleted', jwks, exported.slice(1), { ok: false, at: JSON.parse(exported[1] as string).id }, { checkpoints })
  await agree(t, 'after retention, without the checkpoint it starts from', jwks, exported, { ok: false, at: JSON.parse(exported[0] as string).id }, { checkpoints: checkpoints.slice(1) })
})
