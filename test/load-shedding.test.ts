import t from 'tap'
import { build, captureLogs } from './helper.js'

/**
 * Load shedding with the production settings (LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS 1000, sampled
 * every second): the work of starting is not load, and a refusal for load is not an incident.
 */
t.test('ready means serving: right after start no request is shed for the time starting took', async (t) => {
  const logs = captureLogs()
  const app = await build(t, { logs, env: { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '1000', LOAD_SHED_SAMPLE_INTERVAL_MS: '1000' } })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.json().status, 'ready')
  // past the first two samples, the ones that used to count the start as event-loop delay
  const statuses = new Set<number>()
  const until = Date.now() + 2500
  while (Date.now() < until) {
    statuses.add((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.same([...statuses], [200], 'every request served')
  const aboutLoad = logs.lines.filter((line) => line.level >= 40 && (line.requestId !== undefined || /shed|load/i.test(String(line.msg))))
  t.same(aboutLoad.map((line) => line.msg), [], 'and nothing said about load')
})

t.test('an overload refusal is logged as a warning, without a stack', async (t) => {
  const logs = captureLogs()
  const app = await build(t, { logs, env: { LOAD_SHED_MAX_HEAP_BYTES: '1', LOAD_SHED_SAMPLE_INTERVAL_MS: '50' } })
  const isUnderPressure = (app as unknown as { isUnderPressure: () => boolean }).isUnderPressure
  for (let i = 0; i < 250 && !isUnderPressure(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  const shed = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(shed.statusCode, 503)
  t.equal(shed.json().code, 'overloaded')
  const about = logs.lines.filter((line) => line.requestId === shed.json().requestId)
  t.same(about.filter((line) => line.level >= 50), [], 'nothing at error level')
  const refusal = about.find((line) => line.code === 'overloaded')
  t.equal(refusal?.level, 40, 'a warning naming the code')
  t.notOk(JSON.stringify(about).includes('"stack"'), 'no stack')
})
