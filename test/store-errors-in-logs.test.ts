import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import type { LightMyRequestResponse } from 'fastify'
import { loggerOptions } from '../src/app.js'
import { generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'
import { subjectHash } from '../src/services/identifiers.js'
import { RedisStores } from '../src/store/index.js'
import { captureLogs, testConfig } from './helper.js'
import { startTestRedis } from './lib/redis-server.js'
import { PROCEDURE, DOSSIER, bearer, buildWorld } from './lib/world.js'

/**
 * A Redis error that is not an outage — OOM under `maxmemory-policy noeviction`, the policy the
 * README recommends — must not carry what the refused command carried into a log line: ioredis
 * hangs the command's arguments on its errors (a version JSON with the subject's identifier in
 * clear, its data, the subject's partition key). Redis is filled for real and every write that
 * carries personal data is driven into the refusal; then no log line, at the most talkative
 * level, in the gateway's log or the audit log, holds an identifier, a data value or the
 * subject's keyed hash, and no answer says anything about the gateway's insides.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const pepper = `pepper-${randomBytes(16).toString('hex')}`
const extra = [...generateDocuments(400, { seed: 4242 })].filter((d) => d.type === 'giay-khai-sinh')

/** a birth certificate of its own, its name marked so that any copy of it is found */
let next = 0
function marked (): SampleDocument {
  const doc = structuredClone(extra[next++ % extra.length] as SampleDocument)
  doc.data.fullName = `Nguyễn Thị Dấu ${randomBytes(6).toString('hex')}`
  return doc
}

async function usedMemory (client: Redis): Promise<number> {
  const info = await client.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1])
}

function assertAnswerSaysNothing (t: Test, what: string, res: LightMyRequestResponse, secrets: Map<string, string>): void {
  t.ok(res.statusCode >= 500, `${what}: refused as a server failure (${res.statusCode})`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, `${what}: a problem body`)
  t.notMatch(res.body, /OOM|maxmemory|evalsha|ReplyError|redis|hset|rpush|\{s:/i, `${what}: nothing about the store`)
  for (const [name, value] of secrets) if (res.body.includes(value)) t.fail(`${what}: the answer holds ${name}`)
}

function assertClean (t: Test, where: string, text: string, secrets: Map<string, string>): void {
  let found = 0
  for (const [name, value] of secrets) {
    const at = text.indexOf(value)
    if (at === -1) continue
    found++
    t.fail(`${where} holds ${name}: …${text.slice(Math.max(0, at - 200), at)}[HERE]`)
  }
  if (found === 0) t.pass(`${where}: none of ${secrets.size} identifiers, data values and subject hashes`)
}

t.test('Redis out of memory under noeviction: refused writes leave no identifier, data or subject key in any log', async (t) => {
  const logs = captureLogs()
  const config = testConfig({ LOG_LEVEL: 'trace' })
  // the store logs through a logger made as the gateway makes its own, into the same capture
  const store = new RedisStores({ url: redis.url, keyPrefix: 'oom:', commandTimeoutMs: 2000, quitTimeoutMs: 500, logger: pino(loggerOptions(config), logs.stream) })
  await store.connect()
  t.teardown(async () => await store.close())
  const w = await buildWorld(t, { store, logs, env: { LOG_LEVEL: 'trace', SUBJECT_PEPPER: pepper } })
  const app = w.app
  const issuer = bearer(w.tokens.issuer)

  /** everything personal this test sends: identifiers, data values, and each subject's keyed hash */
  const secrets = new Map<string, string>()
  const remember = (doc: SampleDocument): SampleDocument => {
    secrets.set(`the identifier ${doc.subject.id}`, doc.subject.id)
    secrets.set(`the keyed hash of ${doc.subject.id}`, subjectHash(pepper, doc.subject))
    secrets.set(`the name ${String(doc.data.fullName)}`, String(doc.data.fullName))
    if (typeof doc.data.placeOfBirth === 'string') secrets.set(`the place of birth of ${doc.subject.id}`, doc.data.placeOfBirth)
    return doc
  }
  for (const doc of Object.values(w.samples)) remember(doc)

  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', String(await usedMemory(admin) + 256 * 1024))

  // index until Redis refuses: the writes that fill it are answered, the first refused one is a 5xx
  let refused: LightMyRequestResponse | undefined
  for (let i = 0; i < 500 && !refused; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: issuer, payload: remember(marked()) })
    if (res.statusCode !== 201) refused = res
  }
  if (!refused) throw new Error('Redis never refused a write')
  assertAnswerSaysNothing(t, 'the first refused indexing', refused, secrets)

  // every write that carries personal data, now that Redis refuses writes
  const answers: Array<[string, LightMyRequestResponse]> = []
  answers.push(['indexing', await app.inject({ method: 'POST', url: '/v1/documents', headers: issuer, payload: remember(marked()) })])
  const batch = [remember(marked()), remember(marked())].map((d) => JSON.stringify(d)).join('\n') + '\n'
  const batchAnswer = await app.inject({ method: 'POST', url: '/v1/documents/batch', headers: { ...issuer, 'content-type': 'application/x-ndjson' }, payload: batch })
  const current = (await app.inject({ method: 'GET', url: `/v1/documents/${w.docs.birth}`, headers: issuer })).json()
  const amended = { ...current.data, fullName: `Trần Văn Sửa ${randomBytes(6).toString('hex')}` }
  secrets.set('the amended name', amended.fullName)
  answers.push(['amending', await app.inject({ method: 'POST', url: `/v1/documents/${w.docs.birth}/amend`, headers: issuer, payload: { procedureCode: current.procedureCode, dossierCode: current.dossierCode, data: amended, reason: 'cải chính' } })])
  const query = { subject: { kind: 'citizen', id: w.citizen }, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER } }
  answers.push(['a reuse query', await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: query })])
  answers.push(['the portal\'s documents of a citizen', await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: bearer(w.tokens.portal), payload: { subject: query.subject } })])
  answers.push(['the portal\'s access history', await app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: bearer(w.tokens.portal), payload: { subject: query.subject, limit: 10 } })])
  for (const [what, res] of answers) assertAnswerSaysNothing(t, what, res, secrets)
  // a batch answers per line (200) or as a whole; either way it says nothing of the store
  t.notMatch(batchAnswer.body, /OOM|maxmemory|evalsha|ReplyError|\{s:/i, 'the batch answer says nothing about the store')
  for (const [name, value] of secrets) if (batchAnswer.body.includes(value)) t.fail(`the batch answer holds ${name}`)

  // the refusals were logged, as what they are: a store reply refused, by its class and code
  const failures = logs.lines.filter((line) => line.level >= 50)
  t.ok(failures.length > 0, 'the refusals are logged at error level')
  t.ok(failures.some((line) => JSON.stringify(line.err ?? {}).includes('"code":"OOM"')), 'a logged error names the reply code OOM')
  t.ok(failures.some((line) => typeof (line.err as { command?: unknown } | undefined)?.command === 'string'), 'and the Redis command, by name')

  // the shutdown with Redis still full: final checkpoint and closing the store, logged too
  await app.close()
  await admin.config('SET', 'maxmemory', '0')

  assertClean(t, 'the gateway log', logs.text(), secrets)
  const audit = readFileSync(app.config.auditLogFile as string, 'utf8')
  // the audit log names subjects by their keyed hash, by design: identifiers and data never
  assertClean(t, 'the audit log', audit, new Map([...secrets].filter(([name]) => !name.startsWith('the keyed hash'))))
})
