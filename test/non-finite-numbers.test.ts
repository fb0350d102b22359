import t from 'tap'
import type { Test } from 'tap'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { build } from './helper.js'
import { bearer, buildWorld } from './lib/world.js'

/**
 * Numbers in a URL or a header arrive as text: "Infinity", "-Infinity" and "1e400" read as
 * numbers that are not finite, which no bound (1–1000 for a page) may let through. Found by
 * mutated requests: a 500 on Redis and a 200 on the memory store, the same request.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const NOT_FINITE = ['Infinity', '-Infinity', '1e400', '-1e400', 'NaN', '+Infinity']

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    const w = await buildWorld(t, { store: await makeStore(t) })
    const cases: Array<{ url: (value: string) => string, token: string, pointer: string }> = [
      { url: (value) => `/v1/webhooks/deliveries?limit=${value}`, token: w.tokens.portal, pointer: '/limit' },
      { url: (value) => `/v1/webhooks/deliveries?after=${value}`, token: w.tokens.portal, pointer: '/after' },
      { url: (value) => `/v1/documents/${w.docs.birth}?version=${value}`, token: w.tokens.issuer, pointer: '/version' }
    ]
    for (const { url, token, pointer } of cases) {
      t.equal((await w.app.inject({ method: 'GET', url: url('1'), headers: bearer(token) })).statusCode, 200, `${url('1')}: the baseline is served`)
      for (const value of NOT_FINITE) {
        const res = await w.app.inject({ method: 'GET', url: url(encodeURIComponent(value)), headers: bearer(token) })
        t.equal(res.statusCode, 400, `${url(value)}: refused`)
        t.match(res.json(), { code: 'validation_failed', errors: [{ in: 'querystring', pointer }] }, 'saying which parameter')
      }
    }
  })
}

suite('embedded store', async () => new MemoryStores())
suite('redis store', async (t) => await testRedisStore(t, redis))

t.test('path parameters and headers are coerced the same way, and refused the same way', async (t) => {
  const app = await build(t, {
    extra: (app) => {
      app.get('/test/pages/:page', {
        schema: {
          params: { type: 'object', properties: { page: { type: 'integer', minimum: 1, maximum: 1000 } } },
          headers: { type: 'object', properties: { 'x-page-size': { type: 'number', minimum: 1, maximum: 100 } } }
        }
      }, async (request) => ({ params: request.params, size: request.headers['x-page-size'] ?? null }))
    }
  })
  t.same((await app.inject({ method: 'GET', url: '/test/pages/3', headers: { 'x-page-size': '2.5' } })).json(), { params: { page: 3 }, size: 2.5 }, 'the baseline')
  for (const value of NOT_FINITE) {
    const param = await app.inject({ method: 'GET', url: `/test/pages/${encodeURIComponent(value)}` })
    t.match(param.json(), { status: 400, code: 'validation_failed', errors: [{ in: 'params', pointer: '/page' }] }, `path parameter ${value}`)
    const header = await app.inject({ method: 'GET', url: '/test/pages/3', headers: { 'x-page-size': value } })
    t.match(header.json(), { status: 400, code: 'validation_failed', errors: [{ in: 'headers', pointer: '/x-page-size' }] }, `header ${value}`)
  }
})
