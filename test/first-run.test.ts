import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { exportJWK, generateKeyPair } from 'jose'
import { DEMO_AGENCIES, demoGuide } from '../src/demo.js'
import { generateGatewayKey, writeKeyFile } from '../src/services/signing-keys.js'
import { MemoryStores } from '../src/store/index.js'
import { build } from './helper.js'
import { startGateway } from './lib/gateway-process.js'
import type { GatewayProcess } from './lib/gateway-process.js'
import { redisServerBinary, startTestRedis } from './lib/redis-server.js'

/**
 * A newcomer's first minute: the gateway started with nothing configured prints the demo
 * citizens and commands for every role, and each works pasted into bash as printed — on the
 * embedded store, and on an empty Redis in development.
 */

const root = fileURLToPath(new URL('../', import.meta.url))
const run = promisify(execFile)
/** no AUDIT_LOG_FILE, as a newcomer starts it */
const asStarted = { unset: ['AUDIT_LOG_FILE'] }

/** the start's last words: the demo banner, or what it says instead of one */
async function startMessage (gateway: GatewayProcess): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    if (/API reference:|No demo:|No agency is registered/.test(gateway.stderr())) return gateway.stderr()
    if (gateway.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no start message: ${gateway.stderr()}`)
}

/** the commands the banner prints, as printed (comment lines included) */
function printedCommands (banner: string): string[] {
  const lines = banner.split('\n')
  const start = lines.findIndex((line) => line.includes('Paste into bash'))
  const end = lines.findIndex((line, i) => i > start + 1 && line.trim() === '')
  return lines.slice(start + 2, end)
}

/**
 * Runs the printed commands in one bash in the gateway's folder, as a newcomer pastes them, and
 * returns what each group (a comment line starts one) printed.
 */
async function runPrinted (t: Test, commands: string[]): Promise<string[]> {
  t.ok(commands.length > 10 && commands.every((line) => line !== ''), 'the banner prints commands')
  // each group, which a comment line starts, is told apart in the output; the rest runs as printed
  const script = commands.map((line) => line.trimStart().startsWith('#') ? 'echo "=== group"' : line).join('\n')
  const { stdout } = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() }, timeout: 180_000 })
  return stdout.split('=== group\n').slice(1)
}

/** the printed commands reach a found result, its file's bytes, the portal's history and the audit trail */
async function checkPrintedCommands (t: Test, banner: string): Promise<void> {
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

function auditEvents (file: string): Array<{ action: string, actor: string | null, detail?: Record<string, unknown> }> {
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { audit?: { action: string, actor: string | null, detail?: Record<string, unknown> } }).audit).filter((e) => e !== undefined)
}

t.test('embedded store: the printed commands work as printed; a second start says it re-registered', async (t) => {
  const demoDir = mkdtempSync(join(tmpdir(), 'rg-first-run-'))
  const first = await startGateway({ DEMO_DIR: demoDir }, asStarted)
  t.teardown(async () => { await first.stop() })
  const banner = await startMessage(first)
  t.match(banner, 'demo agencies registered, with new key pairs written to', 'the first start says it registered and wrote keys')
  t.match(banner, /Demo citizens[^\n]*\n {4}\d{12} {2}[a-z-]+/, 'the banner names demo citizens and what they hold')

  // the audit trail goes to the demo folder, which the banner names, not under the banner
  const auditLog = join(demoDir, 'audit.log')
  t.match(banner, `The audit log is written to ${auditLog}`)
  t.notOk(first.lines.some((line) => line.stream === 'audit'), 'no audit line on standard output')
  await checkPrintedCommands(t, banner)

  const events = auditEvents(auditLog)
  for (const agency of DEMO_AGENCIES) {
    t.ok(events.some((e) => e.action === 'agency.created' && e.detail?.agency === agency.code && e.detail?.origin === 'demo'), `the demo's registration of ${agency.code} is audited`)
  }
  t.equal(events.filter((e) => e.action === 'agreement.created' && e.detail?.origin === 'demo').length, 2, 'and its two agreements')
  t.ok(events.some((e) => e.action === 'document.file_uploaded'), 'and its files')

  // `reuse-gateway demo` prints the same citizens and commands, on demand
  const { stdout } = await run(process.execPath, ['bin/reuse-gateway.js', 'demo', '--gateway', first.url, '--dir', demoDir], { cwd: root })
  t.ok(banner.includes(stdout.trimEnd()), 'reuse-gateway demo prints what the banner ends with')
  await first.stop()

  const second = await startGateway({ DEMO_DIR: demoDir }, asStarted)
  t.teardown(async () => { await second.stop() })
  const again = await startMessage(second)
  t.match(again, `demo agencies re-registered from the keys in ${demoDir}/`, 'the second start says the keys were reused')
  t.notMatch(again, 'new key pairs', 'and not that it wrote new ones')
})

t.test('an empty Redis in development gets the demo; a second start finds it; other agencies get no demo', { skip: redisServerBinary() ? false : 'redis-server is not installed' }, async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const demoDir = mkdtempSync(join(tmpdir(), 'rg-first-run-'))
  // a loaded test machine is not an overloaded gateway
  // the files stay where they were stored, as BLOB_DIR's default does from one start to the next
  const env = { NODE_ENV: 'development', REDIS_URL: redis.url, DEMO_DIR: demoDir, BLOB_DIR: mkdtempSync(join(tmpdir(), 'rg-blobs-')), LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }
  const first = await startGateway(env, asStarted)
  t.teardown(async () => { await first.stop() })
  const banner = await startMessage(first)
  t.match(banner, 'Demo: this Redis store had no agency; 7 demo agencies registered')
  t.match(banner, `The audit log is written to ${join(demoDir, 'audit.log')}`)
  t.notOk(first.lines.some((line) => line.stream === 'audit'), 'no audit line on standard output')
  await checkPrintedCommands(t, banner)
  await first.stop()

  const second = await startGateway(env, asStarted)
  t.teardown(async () => { await second.stop() })
  const again = await startMessage(second)
  t.match(again, 'the demo agencies are already on this Redis store, registered at an earlier start; nothing was registered')
  t.notMatch(again, /agencies (re-)?registered/, 'not that anything was registered')
  await checkPrintedCommands(t, again)
  await second.stop()

  const elsewhere = await startGateway({ ...env, DEMO_DIR: mkdtempSync(join(tmpdir(), 'rg-first-run-')) }, asStarted)
  t.teardown(async () => { await elsewhere.stop() })
  const notice = await startMessage(elsewhere)
  t.match(notice, 'No demo: this store already holds agencies', 'a store with agencies the demo keys do not match: no demo')
  t.match(notice, 'ADMIN_AGENCY_CODE and ADMIN_AGENCY_JWKS', 'and what to do instead')
  t.notMatch(notice, 'Paste into bash')
})

t.test('production on an empty Redis: no demo, and what to configure instead', { skip: redisServerBinary() ? false : 'redis-server is not installed' }, async (t) => {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const keysFile = join(mkdtempSync(join(tmpdir(), 'rg-keys-')), 'gateway.jwks.json')
  await writeKeyFile(keysFile, [await generateGatewayKey('EdDSA')])
  const demoDir = mkdtempSync(join(tmpdir(), 'rg-first-run-'))
  const gateway = await startGateway({ NODE_ENV: 'production', REDIS_URL: redis.url, SUBJECT_PEPPER: 'p'.repeat(40), GATEWAY_ISSUER: 'https://gateway.example', SIGNING_KEYS_FILE: keysFile, ALLOW_NO_PERSISTENCE: 'true', DEMO_DIR: demoDir })
  t.teardown(async () => { await gateway.stop() })
  const notice = await startMessage(gateway)
  t.match(notice, 'No agency is registered on this store and no admin is configured')
  t.match(notice, 'ADMIN_AGENCY_CODE and ADMIN_AGENCY_JWKS')
  t.notMatch(notice, 'Demo')
  t.same(readdirSync(demoDir), [], 'no demo key written')
  t.notOk(existsSync(join(demoDir, 'audit.log')), 'the audit log stays where production writes it')
})

t.test('the admin agency from configuration is registered with an audit event, once', async (t) => {
  const { publicKey } = await generateKeyPair('ES256')
  const jwks = JSON.stringify({ keys: [{ ...await exportJWK(publicKey), kid: 'admin-1', alg: 'ES256' }] })
  const env = { ADMIN_AGENCY_CODE: '000.00.00.B01', ADMIN_AGENCY_JWKS: jwks }
  const store = new MemoryStores()
  type Found = Array<{ action: string, actor: string | null, detail?: Record<string, unknown> }>
  const registrations = async (app: FastifyInstance): Promise<Found> => [
    ...(await app.audit.search({ action: 'agency.updated', limit: 100 })).events,
    ...(await app.audit.search({ action: 'agency.created', limit: 100 })).events
  ]

  const app = await build(t, { env, store })
  const events = await registrations(app)
  t.equal(events.length, 1, 'one event')
  t.match(events[0], { action: 'agency.created', actor: null, detail: { agency: '000.00.00.B01', roles: ['admin'], keys: { kids: ['admin-1'] }, origin: 'configuration' } })
  await app.close()

  t.equal((await registrations(await build(t, { env, store }))).length, 1, 'a start with the same admin changes nothing and records nothing')
  const changed = await registrations(await build(t, { env: { ...env, ADMIN_AGENCY_JWKS: jwks.replace('admin-1', 'admin-2') }, store }))
  t.equal(changed.length, 2)
  t.match(changed[0], { action: 'agency.updated', detail: { keys: { kids: ['admin-2'] }, previous: { keys: { kids: ['admin-1'] } }, origin: 'configuration' } }, 'a new key is an update, audited')
})

t.test("README's first-minute commands are the ones a newcomer is shown", async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### First token in a minute'), readme.indexOf('## Test it'))
  const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => (block[1] ?? '').trim().split('\n'))
  t.ok(commands.length >= 2, 'the section shows commands')
  // what `npm start` prints with the defaults: the .demo folder, the default port
  const guide = demoGuide({ dir: '.demo', gateway: 'http://127.0.0.1:3000' }).split('\n').map((line) => line.trim())
  for (const command of commands) t.ok(guide.includes(command), `printed as in the README: ${command.slice(0, 60)}…`)
})
