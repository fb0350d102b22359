import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { exportJWK, generateKeyPair } from 'jose'
import { DEMO_AGENCIES, demoGuide } from '../src/demo.js'
import { MemoryStores } from '../src/store/index.js'
import { build } from './helper.js'
import { startGateway } from './lib/gateway-process.js'
import { asStarted, auditEvents, checkPrintedCommands, root, run, startMessage } from './lib/first-run.js'

/**
 * A newcomer's first minute: the gateway started with nothing configured prints the demo
 * citizens and commands for every role, and each works pasted into bash as printed — on the
 * embedded store here, on an empty Redis in development in test/first-run-redis.test.ts.
 */

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
