import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { generateGatewayKey, writeKeyFile } from '../src/services/signing-keys.js'
import { startGateway } from './lib/gateway-process.js'
import { redisServerBinary, startTestRedis } from './lib/redis-server.js'
import { asStarted, checkPrintedCommands, startMessage } from './lib/first-run.js'

/**
 * A newcomer's first minute on Redis: an empty Redis in development gets the demo, and its printed
 * commands work pasted into bash; a Redis holding other agencies, and production, get none and are
 * told what to configure (the embedded store's first minute: test/first-run.test.ts).
 */

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
