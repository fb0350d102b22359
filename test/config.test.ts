import t from 'tap'
import { ConfigError, DEVELOPMENT_PEPPER, loadConfig } from '../src/config.js'

t.test('development defaults make the gateway start with nothing set', async (t) => {
  const config = loadConfig({})
  t.equal(config.nodeEnv, 'development')
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.same(config.redis, { mode: 'memory' })
  t.equal(config.gatewayIssuer, 'http://127.0.0.1:3000', 'the URL the start banner prints')
  t.equal(config.subjectPepper, DEVELOPMENT_PEPPER)
  t.equal(config.limits.bodyBytes, 1048576)
  t.equal(config.limits.fileBytes, 20 * 1024 * 1024)
  t.equal(loadConfig({ HOST: '0.0.0.0', PORT: '8080' }).gatewayIssuer, 'http://127.0.0.1:8080', 'a wildcard address is reached through loopback')
  t.equal(loadConfig({ HOST: '::', PORT: '8080' }).gatewayIssuer, 'http://[::1]:8080')
})

t.test('values are parsed and typed', async (t) => {
  const config = loadConfig({
    PORT: '8080', REDIS_URL: 'redis://127.0.0.1:6380/2', LOG_LEVEL: 'warn',
    GATEWAY_ISSUER: 'https://gateway.example.gov.vn/', BATCH_MAX_LINES: '500', AUDIT_LOG_FILE: ''
  })
  t.equal(config.port, 8080)
  t.equal(config.redis.mode, 'standalone')
  t.equal(config.logLevel, 'warn')
  t.equal(config.gatewayIssuer, 'https://gateway.example.gov.vn', 'trailing slash dropped')
  t.equal(config.limits.batchLines, 500)
  t.equal(config.auditLogFile, undefined, 'an empty variable counts as unset')
})

t.test('the environment given is the only one read: an empty variable in the process environment counts as unset too', async (t) => {
  const saved = { AUDIT_LOG_FILE: process.env.AUDIT_LOG_FILE, PORT: process.env.PORT }
  t.teardown(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) Reflect.deleteProperty(process.env, name)
      else process.env[name] = value
    }
  })
  process.env.AUDIT_LOG_FILE = ''
  t.equal(loadConfig().auditLogFile, undefined, 'AUDIT_LOG_FILE= is unset, not a refused empty path')
  process.env.PORT = '70000'
  t.throws(() => loadConfig(), /PORT/, 'the process environment is read when none is given')
  t.equal(loadConfig({}).port, 3000, 'an environment given is not mixed with the process\'s')
})

t.test('cluster nodes are split into host and port', async (t) => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,redis-b:7001' })
  t.same(config.redis.mode === 'cluster' && config.redis.nodes, [{ host: '10.0.0.1', port: 7000 }, { host: 'redis-b', port: 7001 }])
})

t.test('a bad value is refused with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ REDIS_URL: 'http://x' }, /REDIS_URL/],
    [{ REDIS_CLUSTER_NODES: 'a:1,,b' }, /REDIS_CLUSTER_NODES/],
    [{ SUBJECT_PEPPER: 'short' }, /SUBJECT_PEPPER/],
    [{ BODY_LIMIT_BYTES: '-1' }, /BODY_LIMIT_BYTES/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV/],
    [{ REDIS_URL: 'redis://a', REDIS_CLUSTER_NODES: 'b:1' }, /REDIS_URL or REDIS_CLUSTER_NODES/],
    [{ ADMIN_AGENCY_CODE: '000.00.00.H41' }, /ADMIN_AGENCY_CODE and ADMIN_AGENCY_JWKS go together/],
    [{ ADMIN_AGENCY_CODE: 'H41', ADMIN_AGENCY_JWKS: '{"keys":[{}]}' }, /ADMIN_AGENCY_CODE/],
    [{ ADMIN_AGENCY_CODE: '000.00.00.H41', ADMIN_AGENCY_JWKS: '{"keys":[]}' }, /ADMIN_AGENCY_JWKS must be a JWKS/],
    [{ ADMIN_AGENCY_CODE: '000.00.00.H41', ADMIN_AGENCY_JWKS: '/no/such/file.json' }, /cannot read file/],
    [{ SIGNING_KEY_ALG: 'HS256' }, /SIGNING_KEY_ALG/],
    [{ ACCESS_TOKEN_TTL_SECONDS: '86400' }, /ACCESS_TOKEN_TTL_SECONDS/],
    [{ AUDIT_ARCHIVE_URL: 'mysql://db/audit' }, /AUDIT_ARCHIVE_URL/],
    [{ AUDIT_ARCHIVE_URL: 'postgres://db/audit', AUDIT_HOT_DAYS: '0' }, /AUDIT_HOT_DAYS/],
    [{ AUDIT_ARCHIVE_URL: 'postgres://db/audit', AUDIT_RETENTION_DAYS: '30' }, /AUDIT_RETENTION_DAYS \(30\) must be longer than AUDIT_HOT_DAYS \(30\)/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('the audit archive: off without AUDIT_ARCHIVE_URL, its settings with it', async (t) => {
  t.equal(loadConfig({}).audit.archive, undefined)
  t.same(loadConfig({ AUDIT_ARCHIVE_URL: 'postgres://gateway@db:5432/audit' }).audit.archive, { url: 'postgres://gateway@db:5432/audit', hotDays: 30, intervalMs: 60000, migrateAtStart: true })
  t.same(loadConfig({ AUDIT_ARCHIVE_URL: 'postgresql://db/audit', AUDIT_HOT_DAYS: '7', AUDIT_RETENTION_DAYS: '1825', AUDIT_ARCHIVE_MIGRATE: 'false' }).audit, { checkpointIntervalMs: 60000, retentionDays: 1825, archive: { url: 'postgresql://db/audit', hotDays: 7, intervalMs: 60000, migrateAtStart: false } })
})

t.test('production refuses the embedded store, the development pepper and a missing issuer', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /REDIS_URL or REDIS_CLUSTER_NODES is required/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379' }), /SUBJECT_PEPPER is required/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', SUBJECT_PEPPER: 'x'.repeat(40) }), /GATEWAY_ISSUER is required/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', SUBJECT_PEPPER: 'x'.repeat(40), GATEWAY_ISSUER: 'https://g.example' }), /SIGNING_KEYS_FILE is required/)
  const ok = loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', SUBJECT_PEPPER: 'x'.repeat(40), GATEWAY_ISSUER: 'https://g.example', SIGNING_KEYS_FILE: '/run/secrets/gateway.jwks.json' })
  t.equal(ok.nodeEnv, 'production')
  t.ok(new ConfigError('x') instanceof Error)
})
