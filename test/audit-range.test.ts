import { execFile } from 'node:child_process'
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { pino } from 'pino'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { coverageEnv } from './lib/child-coverage.js'
import { MemoryStores } from '../src/store/index.js'
import type { AuditStore, StoredAuditEvent } from '../src/store/index.js'
import { AuditService, eventHash } from '../src/services/audit.js'
import type { AuditEvent, AuditInput } from '../src/services/audit.js'
import { AuditReads } from '../src/services/audit-reads.js'
import type { Call } from '../src/services/call.js'

/**
 * Verifying a range costs what the range holds: each chain is read from the signed checkpoint
 * before the range to the one after it, a request reads a bounded number of events and a cursor
 * continues it; exports come in pages a Link header chains; idle checkpoints are not made; the
 * log file holds a checkpoint once it is made.
 */
const ISSUER = 'https://gateway.test'
const { privateKey, publicKey } = await generateKeyPair('ES256')
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'gw-1', alg: 'ES256' }] }
const signer = {
  sign: async (claims: Record<string, unknown>, typ: string): Promise<string> =>
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'gw-1', typ }).sign(privateKey)
}
const input: AuditInput = { actor: '000.00.12.H41', action: 'reuse.queried', outcome: 'granted' }
const call = { caller: { code: '000.00.00.A02' }, audit: async () => ({}), log: { warn () {} } } as unknown as Call
const MINUTE = 60_000
const HOUR = 60 * MINUTE

// event ids are monotonic in a process: each world's clock starts after the last one's
let clock = Date.parse('2026-01-01T00:00:00Z')

/** the memory store, seen through edits and deletions a test makes, counting the chain events read */
function tamperable (inner: AuditStore): { audit: AuditStore, edits: Map<string, StoredAuditEvent | null>, read: () => number } {
  const edits = new Map<string, StoredAuditEvent | null>()
  let read = 0
  const apply = (events: StoredAuditEvent[]): StoredAuditEvent[] => events.flatMap((event) => {
    const edit = edits.get(event.id)
    return edit === undefined ? [event] : edit === null ? [] : [edit]
  })
  const audit = new Proxy(inner, {
    get (target, name) {
      if (name === 'auditChainSlice') {
        return async (chain: string, fromSeq: number, count: number) => {
          const events = apply(await target.auditChainSlice(chain, fromSeq, count))
          read += events.length
          return events
        }
      }
      if (name === 'auditEvents') return async (ids: string[]) => apply(await target.auditEvents(ids))
      const value = Reflect.get(target, name) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  return { audit, edits, read: () => read }
}

/**
 * Ten hours of two gateway processes: each hour five events of each chain, a minute apart from
 * the hour on, and a checkpoint at half past (by either process in turn).
 */
async function tenHours (options: { verifyBudget?: number } = {}) {
  const store = tamperable(new MemoryStores().audit)
  const services = [0, 1].map(() => new AuditService({ audit: store.audit, log: pino({ level: 'silent' }), signer, issuer: ISSUER, cursorKey: 'k', now: () => clock, ...options }))
  const base = clock
  const events: AuditEvent[] = []
  for (let h = 0; h < 10; h++) {
    for (let i = 0; i < 5; i++) {
      clock = base + h * HOUR + i * MINUTE
      for (const service of services) events.push(await service.record(input))
    }
    clock = base + h * HOUR + 30 * MINUTE
    if (!await services[h % 2]?.checkpoint()) throw new Error('a checkpoint after new events was skipped')
  }
  clock = base + 11 * HOUR
  const reads = new AuditReads({ audit: services[0] as AuditService, pepper: 'p', jwks: () => jwks, issuer: ISSUER })
  const at = (h: number, m: number): string => new Date(base + h * HOUR + m * MINUTE).toISOString()
  /** the event of chain `c` (0 or 1) at h:0m */
  const event = (c: number, h: number, m: number): AuditEvent => events.find((e) => e.chain === services[c]?.chain && e.time === at(h, m)) as AuditEvent
  const verify = async (query: { from?: string, to?: string, cursor?: string }) => await reads.verify(call, query)
  /** follows the cursors to the end, counting the requests */
  const verifyAll = async (query: { from?: string, to?: string }) => {
    let requests = 1
    let result = await verify(query)
    while (!result.complete) {
      if (!result.ok || !result.nextCursor) throw new Error('a partial answer is ok so far, with a cursor')
      result = await verify({ ...query, cursor: result.nextCursor as string })
      requests++
    }
    return { result, requests }
  }
  return { store, services, events, at, event, verify, verifyAll }
}

t.test('a range is read from the checkpoint before it to the one after it, and only its events are counted', async (t) => {
  const w = await tenHours()
  const range = { from: w.at(3, 2), to: w.at(7, 0) }
  const result = await w.verify(range)
  t.same(result, { ok: true, checked: 36, chains: 2, checkpoints: 2, complete: true }, '3:02 to 7:00 holds 36 events of the two chains')
  // from the 2:30 checkpoint to the 7:30 one: 50 events, and a probe of each chain's start
  t.ok(w.store.read() <= 52, `${w.store.read()} chain events read for the range, of 100`)
  const whole = await w.verify({})
  t.same(whole, { ok: true, checked: 100, chains: 2, checkpoints: 1, complete: true }, 'the whole trail, against the newest checkpoint')
  t.same((await w.verify({ from: w.at(9, 0) })).checked, 10, 'a range up to now: to each chain\'s head')
  t.same((await w.verify({ to: w.at(1, 0) })).checked, 10, 'a range from the start')
  t.same((await w.verify({ from: w.at(20, 0), to: w.at(21, 0) })).checked, 0, 'a range after the last event')
})

t.test('an event altered inside the range is found', async (t) => {
  const w = await tenHours()
  const victim = w.event(0, 5, 2)
  w.store.edits.set(victim.id, { ...victim, outcome: 'denied' } as unknown as StoredAuditEvent)
  const result = await w.verify({ from: w.at(3, 2), to: w.at(7, 0) })
  t.equal(result.ok, false)
  t.equal(result.firstBadEvent, victim.id)
  t.match(result.reason, /altered/)
})

t.test('events outside the range are neither read nor counted', async (t) => {
  const w = await tenHours()
  const victim = w.event(1, 1, 3)
  w.store.edits.set(victim.id, { ...victim, outcome: 'denied' } as unknown as StoredAuditEvent)
  t.same(await w.verify({ from: w.at(3, 2), to: w.at(7, 0) }), { ok: true, checked: 36, chains: 2, checkpoints: 2, complete: true })
  t.equal((await w.verify({})).firstBadEvent, victim.id, 'the whole trail still finds it')
})

t.test('events cut off at the range\'s end are found through the checkpoint after it', async (t) => {
  const w = await tenHours()
  const chain = w.services[0]?.chain as string
  const cutFrom = w.event(0, 6, 3)
  for (const e of w.events) if (e.chain === chain && e.seq >= cutFrom.seq) w.store.edits.set(e.id, null)
  const result = await w.verify({ from: w.at(3, 2), to: w.at(7, 0) })
  t.equal(result.ok, false)
  t.equal(result.firstBadEvent, `${chain}#${cutFrom.seq}`)
  t.match(result.reason, /cut off its end/)
})

t.test('a link broken across the range\'s start is found: the walk starts at the checkpoint before', async (t) => {
  const w = await tenHours()
  // 3:01 is before the range, after the 2:30 checkpoint; re-hashed, it no longer matches what 3:02 links to
  const before = w.event(0, 3, 1)
  const altered = { ...before, actor: '000.00.99.H41' }
  altered.hash = eventHash(altered)
  w.store.edits.set(before.id, altered as unknown as StoredAuditEvent)
  const result = await w.verify({ from: w.at(3, 2), to: w.at(7, 0) })
  t.equal(result.ok, false)
  t.equal(result.firstBadEvent, w.event(0, 3, 2).id)
  t.match(result.reason, /does not link to its predecessor/)
})

t.test('a range reaching past retention starts each chain where retention cut it, after the checkpoint it was cut at', async (t) => {
  const w = await tenHours()
  // each chain is cut at the newest checkpoint older than 4:00: the 3:30 one
  t.equal(await w.services[0]?.prune(new Date(Date.parse(w.at(4, 0)))), 40)
  t.same(await w.verify({ from: w.at(1, 0), to: w.at(7, 0) }), { ok: true, checked: 30, chains: 2, checkpoints: 3, complete: true }, 'from the 0:30 checkpoint, each chain resumes at the 3:30 one')
  t.same(await w.verify({}), { ok: true, checked: 60, chains: 2, checkpoints: 2, complete: true }, 'the whole trail likewise')
  const first = w.event(1, 4, 0)
  w.store.edits.set(first.id, null)
  const result = await w.verify({ from: w.at(1, 0), to: w.at(7, 0) })
  t.equal(result.ok, false, 'a kept event removed after the cut')
  t.match(result.reason, /missing/)
})

t.test('past its budget a request answers partially, and its cursor continues to the same answer', async (t) => {
  const unbounded = await tenHours()
  const bounded = await tenHours({ verifyBudget: 7 })
  for (const range of [{ from: unbounded.at(3, 2), to: unbounded.at(7, 0) }, {}]) {
    const expected = await unbounded.verify(range)
    const shifted = 'from' in range ? { from: bounded.at(3, 2), to: bounded.at(7, 0) } : {}
    const first = await bounded.verify(shifted)
    t.match(first, { ok: true, complete: false }, 'the first request stops at its budget')
    const { result, requests } = await bounded.verifyAll(shifted)
    t.ok(requests > 5, `${requests} requests`)
    t.same([result.ok, result.checked, result.complete], [expected.ok, expected.checked, true], 'the same final answer')
  }

  // an altered event is found by whichever request reaches it
  const victim = bounded.event(1, 6, 4)
  bounded.store.edits.set(victim.id, { ...victim, outcome: 'denied' } as unknown as StoredAuditEvent)
  const { result } = await bounded.verifyAll({ from: bounded.at(3, 2), to: bounded.at(7, 0) })
  t.match(result, { ok: false, firstBadEvent: victim.id, complete: true })
  t.notOk(result.nextCursor)
})

t.test('a cursor is good only for the range it was issued for', async (t) => {
  const w = await tenHours({ verifyBudget: 7 })
  const range = { from: w.at(3, 2), to: w.at(7, 0) }
  const { nextCursor } = await w.verify(range)
  const cursor = nextCursor as string
  await t.rejects(w.verify({ ...range, to: w.at(8, 0), cursor }), { status: 400, code: 'invalid_cursor' }, 'another range')
  const [payload] = cursor.split('.')
  const forged = Buffer.from(JSON.stringify({ id: JSON.stringify(['0', 1, '0'.repeat(64), 0]), f: 'x' })).toString('base64url')
  await t.rejects(w.verify({ ...range, cursor: `${forged}.${cursor.split('.')[1] as string}` }), { status: 400, code: 'invalid_cursor' }, 'a forged one')
  await t.rejects(w.verify({ ...range, cursor: `${payload as string}.AAAA` }), { status: 400, code: 'invalid_cursor' }, 'a bad MAC')
})

t.test('a checkpoint is not made when no chain head moved', async (t) => {
  const store = new MemoryStores().audit
  const [a, b] = [0, 1].map(() => new AuditService({ audit: store, log: pino({ level: 'silent' }), signer, issuer: ISSUER, cursorKey: 'k' })) as [AuditService, AuditService]
  t.equal(await a.checkpoint(), undefined, 'an empty trail')
  await a.record(input)
  t.ok(await a.checkpoint())
  t.equal(await a.checkpoint(), undefined, 'idle')
  t.equal(await b.checkpoint(), undefined, 'idle, for another process too')
  t.equal(await store.auditCheckpointCount(), 1)
  await b.record(input)
  t.ok(await a.checkpoint(), 'a head moved')
  // b's own log must hold a checkpoint over its own last event, for that file alone to verify to its end
  t.ok(await b.checkpoint(), 'its own chain moved since its own last one')
  t.equal(await b.checkpoint(), undefined)
  t.equal(await a.checkpoint(), undefined)
  t.equal(await store.auditCheckpointCount(), 3)
})

const auditor = await makeAgency('000.00.00.A02')
const admin = await makeAgency(ADMIN_CODE)

t.test('the audit log holds the checkpoint once checkpoint() returns', async (t) => {
  const app = await build(t, { env: adminEnv(admin) })
  await tokenFor(app, admin)
  const checkpoint = await app.audit.checkpoint()
  t.ok(checkpoint)
  const lines = readFileSync(app.config.auditLogFile as string, 'utf8').trim().split('\n')
  t.same(JSON.parse(lines[lines.length - 1] as string).checkpoint, checkpoint, 'its last line, already in the file')
})

t.test('an export comes in pages chained by Link headers; the command-line export follows them', async (t) => {
  const app = await build(t, { env: adminEnv(admin) })
  const adminToken = await tokenFor(app, admin)
  await register(app, adminToken, auditor, ['auditor'])
  for (let i = 0; i < 6; i++) await tokenFor(app, admin)
  const token = await tokenFor(app, auditor)
  const to = new Date(Date.now() + 1).toISOString()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const get = async (url: string) => await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
  const whole = (await get(`/v1/audit/export?to=${to}`)).body.trim().split('\n')
  t.ok(whole.length >= 10)

  const pages: string[][] = []
  let url: string | undefined = `/v1/audit/export?to=${to}&limit=3`
  while (url) {
    const res = await get(url)
    t.equal(res.statusCode, 200)
    pages.push(res.body.trim().split('\n').filter(Boolean))
    const link = res.headers.link as string | undefined
    const target = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined
    url = target ? new URL(target, `http://gateway${url}`).pathname + new URL(target, `http://gateway${url}`).search : undefined
  }
  t.ok(pages.slice(0, -1).every((page) => page.length === 3), 'full pages until the last')
  t.same(pages.flat(), whole, 'the pages hold the range once, in order')
  t.equal(pages.length, Math.ceil(whole.length / 3))

  const other = await get(`/v1/audit/export?to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&limit=3&cursor=${encodeURIComponent((/cursor=([^&>]+)/.exec((await get(`/v1/audit/export?to=${to}&limit=3`)).headers.link as string))?.[1] as string)}`)
  t.equal(other.statusCode, 400, 'a cursor of another range')
  t.equal(other.json().code, 'invalid_cursor')
  const verifyCursor = await get('/v1/audit/verify?cursor=abc.def')
  t.equal(verifyCursor.statusCode, 400)
  t.equal(verifyCursor.json().code, 'invalid_cursor')

  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const dir = mkdtempSync(join(tmpdir(), 'rg-range-'))
  const keyFile = join(dir, 'auditor.jwk.json')
  writeFileSync(keyFile, JSON.stringify(auditor.privateKey))
  const jwksFile = join(dir, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify(app.signingKeys.jwks()))
  await app.audit.checkpoint()
  const out = join(dir, 'audit.ndjson')
  const root = fileURLToPath(new URL('../', import.meta.url))
  const cli = async (args: string[]) => await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: { ...process.env, ...coverageEnv() } })
  const { stderr } = await cli(['audit', 'export', '--key', keyFile, '--gateway', address, '--out', out, '--page-size', '4', '--quiet'])
  const written = readFileSync(out, 'utf8').trim().split('\n')
  const events = written.filter((line) => JSON.parse(line).checkpoint === undefined)
  t.ok(events.length > whole.length, `${events.length} events over pages of 4`)
  t.match(stderr, new RegExp(`${events.length} events and \\d+ checkpoints written to`))
  const ids = events.map((line) => JSON.parse(line).id as string)
  t.same(ids, [...new Set(ids)].sort(), 'each once, oldest first')
  const { stdout } = await cli(['audit', 'verify', out, '--jwks', jwksFile])
  t.match(JSON.parse(stdout), { ok: true, checked: events.length }, 'the file verifies offline')
})
