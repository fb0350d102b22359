import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { CONSOLE_POLICY } from '../src/plugins/security.js'
import consoleRoutes, { CONSOLE_DIR } from '../src/routes/console/index.js'
import { build } from './helper.js'
import { ensureConsoleBuilt } from './lib/console.js'

/**
 * How the gateway serves the console: the page never cached as is, the hashed script and
 * stylesheet cached for good, a strict policy that still lets the page run (its own files only,
 * no inline script, no eval) while the API keeps its own, and the settings the page reads.
 */
ensureConsoleBuilt()
const manifest = JSON.parse(readFileSync(join(CONSOLE_DIR, 'manifest.json'), 'utf8')) as { script: string, stylesheet: string }

t.test('the page: Vietnamese, its two files by hashed name, no inline script, never served from a cache unasked', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/console' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
  t.equal(res.headers['cache-control'], 'no-cache')
  t.match(res.body, /<html lang="vi">/)
  t.match(res.body, `<script type="module" src="console/assets/${manifest.script}"></script>`)
  t.match(res.body, `<link rel="stylesheet" href="console/assets/${manifest.stylesheet}">`)
  t.notMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file')
  t.notMatch(res.body, /\bstyle=|<style/, 'no inline style')
  t.match(manifest.script, /^console-[A-Z0-9]{8}\.js$/)
  t.match(manifest.stylesheet, /^console-[A-Z0-9]{8}\.css$/)
  const slash = await app.inject({ method: 'GET', url: '/console/' })
  t.same([slash.statusCode, slash.headers.location], [308, '../console'], '/console/ leads to the page, relative (behind a path prefix too)')
})

t.test('the console runs under its own strict policy; the API keeps the strictest', async (t) => {
  const app = await build(t)
  const page = await app.inject({ method: 'GET', url: '/console' })
  const policy = page.headers['content-security-policy'] as string
  t.equal(policy, CONSOLE_POLICY)
  t.match(policy, /default-src 'none'/)
  t.match(policy, /script-src 'self'(;|$)/, 'scripts from the gateway only')
  t.match(policy, /connect-src 'self'/, 'the API of the same gateway only')
  t.match(policy, /frame-ancestors 'none'/)
  t.notMatch(policy, /unsafe-inline|unsafe-eval|https?:|\*/, 'no inline script or style, no eval, nothing from elsewhere')
  t.equal(page.headers['x-frame-options'], 'DENY')
  for (const url of [`/console/assets/${manifest.script}`, '/console/settings.json']) {
    t.equal((await app.inject({ method: 'GET', url })).headers['content-security-policy'], CONSOLE_POLICY, url)
  }
  for (const url of ['/health/live', '/v1/agencies', '/consoles', '/v1/console']) {
    t.equal((await app.inject({ method: 'GET', url })).headers['content-security-policy'], "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'", `${url} keeps the API's`)
  }
})

t.test('the script and the stylesheet are cached for good (a new build has new names)', async (t) => {
  const app = await build(t)
  for (const [file, type] of [[manifest.script, /^text\/javascript/], [manifest.stylesheet, /^text\/css/]] as const) {
    const res = await app.inject({ method: 'GET', url: `/console/assets/${file}` })
    t.equal(res.statusCode, 200, file)
    t.match(res.headers['content-type'], type)
    t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable')
    t.same(res.rawPayload, readFileSync(join(CONSOLE_DIR, file)))
  }
  t.ok(readFileSync(join(CONSOLE_DIR, manifest.script)).length < 200_000, 'one small bundle')
  for (const url of ['/console/assets/console.js', '/console/assets/manifest.json', '/console/assets/..%2Fmanifest.json']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'route_not_found')
  }
})

t.test('the settings the page reads: the audience of its assertions and the target line', async (t) => {
  const app = await build(t, { env: { GATEWAY_ISSUER: 'https://gateway.example.gov.vn' } })
  const res = await app.inject({ method: 'GET', url: '/console/settings.json' })
  t.equal(res.headers['cache-control'], 'no-cache')
  t.same(res.json(), { issuer: 'https://gateway.example.gov.vn', tokenEndpoint: 'v1/oauth/token', reuseTargetPercent: 30 })
  const other = await build(t, { env: { REUSE_TARGET_PERCENT: '42.5' } })
  t.equal((await other.inject({ method: 'GET', url: '/console/settings.json' })).json().reuseTargetPercent, 42.5)
  for (const bad of ['-1', '101', 'thirty']) t.throws(() => loadConfig({ NODE_ENV: 'test', REUSE_TARGET_PERCENT: bad }), /REUSE_TARGET_PERCENT/, bad)
})

t.test('a checkout that was not built says how to build the console', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'rg-console-')) + '/'
  const app = await build(t, { extra: async (app) => { await app.register(consoleRoutes, { prefix: '/unbuilt', dir: empty }) } })
  const res = await app.inject({ method: 'GET', url: '/unbuilt/console' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'console_not_built')
  t.match(res.json().detail, /npm run build/)
  t.equal((await app.inject({ method: 'GET', url: `/unbuilt/console/assets/${manifest.script}` })).json().code, 'console_not_built')
})
