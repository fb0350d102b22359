import t from 'tap'
import { HealthService } from '../../src/services/health.js'

/** Readiness without HTTP: ready only while the store answers in time and the process may serve. */
const lifecycle = { draining: false, closing: false, holding: undefined as unknown }
const stores = { kind: 'memory' as const, ping: async (): Promise<void> => {} }

t.test('alive whatever happens; ready while the store answers', async (t) => {
  const health = new HealthService({ stores, lifecycle: { ...lifecycle } })
  t.equal(health.live().status, 'ok')
  t.equal((await health.ready()).status, 'ready')
})

t.test('draining, holding or a store that does not answer in time: not ready', async (t) => {
  t.equal((await new HealthService({ stores, lifecycle: { ...lifecycle, draining: true } }).ready()).status, 'draining')
  t.equal((await new HealthService({ stores, lifecycle: { ...lifecycle, holding: { code: 'x' } } }).ready()).status, 'unavailable')
  const silent = { kind: 'memory' as const, ping: async (): Promise<void> => await new Promise(() => {}) }
  t.equal((await new HealthService({ stores: silent, lifecycle: { ...lifecycle } }).ready()).status, 'unavailable')
})
