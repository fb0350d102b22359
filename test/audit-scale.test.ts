import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { build } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { RedisStores } from '../src/store/index.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './lib/agencies.js'
import { subjectHash } from '../src/services/identifiers.js'
import { coverageEnv } from './lib/child-coverage.js'

/**
 * 10,000 events written concurrently by two gateways (two chains) on one Redis: the chains
 * verify, search by agency and by subject returns exactly the right events, export streams them
 * all — through the API and through `reuse-gateway audit export`.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const AGENCIES = ['000.00.12.H41', '000.00.15.H41', '000.20.41.H41', '000.00.03.H41', '000.00.77.H41']
const SUBJECTS = Array.from({ length: 40 }, (_, i) => ({ kind: 'citizen' as const, id: `0010990${String(10000 + i)}` }))

t.test('10,000 events from two gateways at once', async (t) => {
  const storeA = await testRedisStore(t, redis)
  const admin = await makeAgency(ADMIN_CODE)
  const a = await build(t, { store: storeA, env: { ...adminEnv(admin), HOST: '127.0.0.1' } })
  const storeB = new RedisStores({ url: redis.url, keyPrefix: storeA.key('x').split('{')[0] as string, commandTimeoutMs: 5000, quitTimeoutMs: 500 })
  await storeB.connect()
  t.teardown(async () => await storeB.close())
  const b = await build(t, { store: storeB, env: adminEnv(admin) })
  t.not(a.audit.chain, b.audit.chain, 'each process has its own chain')

  const pepper = a.config.subjectPepper
  const expected = new Map<string, string[]>()
  const note = (key: string, id: string): void => { const ids = expected.get(key) ?? []; ids.push(id); expected.set(key, ids) }
  const write = async (app: typeof a, n: number, offset: number): Promise<void> => {
    const pending: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) {
      const k = offset + i
      const actor = AGENCIES[k % AGENCIES.length] as string
      const subject = SUBJECTS[(k * 7) % SUBJECTS.length] as (typeof SUBJECTS)[number]
      pending.push(app.audit.record({
        actor,
        action: k % 3 === 0 ? 'reuse.queried' : 'document.indexed',
        outcome: k % 10 === 0 ? 'empty' : 'granted',
        subject: subjectHash(pepper, subject),
        documents: [{ id: `DOC${k}`, version: 1 }],
        purpose: { procedureCode: '1.001193', dossierCode: `000.00.41.H41-260101-${String(k).padStart(4, '0')}` },
        requestId: `req-${k}`
      }).then((event) => { note(`agency:${actor}`, event.id); note(`subject:${subject.id}`, event.id) }))
    }
    await Promise.all(pending)
  }
  await Promise.all([write(a, 5000, 0), write(b, 5000, 5000)])

  const adminToken = await tokenFor(a, admin)
  const auditor = await makeAgency('000.00.00.A02')
  await register(a, adminToken, auditor, ['auditor'])
  const token = await tokenFor(a, auditor)
  const auth = { authorization: `Bearer ${token}` }

  const verify = (await a.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth })).json()
  t.equal(verify.ok, true, 'the chains verify')
  t.equal(verify.chains, 2)
  t.ok(verify.checked >= 10_000)

  async function searchAll (filter: Record<string, unknown>): Promise<string[]> {
    const ids: string[] = []
    let cursor: string | undefined
    for (let page = 0; page < 100; page++) {
      const res = await a.inject({ method: 'POST', url: '/v1/audit/search', headers: auth, payload: { ...filter, action: undefined, limit: 1000, ...(cursor ? { cursor } : {}) } })
      t.equal(res.statusCode, 200)
      ids.push(...res.json().events.filter((e: { action: string }) => e.action === 'reuse.queried' || e.action === 'document.indexed').map((e: { id: string }) => e.id))
      cursor = res.json().nextCursor
      if (!cursor) break
    }
    return ids
  }
  for (const agency of AGENCIES.slice(0, 2)) {
    const found = await searchAll({ agency })
    t.same([...found].sort(), [...(expected.get(`agency:${agency}`) ?? [])].sort(), `search by agency ${agency}: exactly its ${found.length} events`)
  }
  for (const subject of SUBJECTS.slice(0, 3)) {
    const found = await searchAll({ subject })
    t.same([...found].sort(), [...(expected.get(`subject:${subject.id}`) ?? [])].sort(), `search by subject: exactly its ${found.length} events`)
  }

  const exported = await a.inject({ method: 'GET', url: '/v1/audit/export', headers: auth })
  const lines = exported.body.trim().split('\n')
  t.ok(lines.length >= 10_000, `export streams them all (${lines.length} lines)`)
  const ids = lines.map((line) => JSON.parse(line).id as string)
  t.equal(new Set(ids).size, ids.length, 'no event twice')
  t.same(ids, [...ids].sort(), 'oldest first')

  // the command-line export, from a real listening gateway
  const address = await a.listen({ port: 0, host: '127.0.0.1' })
  const dir = mkdtempSync(join(tmpdir(), 'rg-export-'))
  const keyFile = join(dir, 'auditor.jwk.json')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(keyFile, JSON.stringify(auditor.privateKey))
  const out = join(dir, 'audit.ndjson')
  const root = fileURLToPath(new URL('../', import.meta.url))
  const { stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'export', '--key', keyFile, '--gateway', address, '--out', out], { cwd: root, env: { ...process.env, ...coverageEnv() } })
  const written = readFileSync(out, 'utf8').trim().split('\n')
  t.ok(written.length >= lines.length, `the CLI wrote ${written.length} events`)
  t.match(stderr, /events and \d+ checkpoints written to/)
})
