import t from 'tap'
import { startGateway } from './lib/gateway-process.js'
import { startReceiver } from './lib/webhook-receiver.js'

/**
 * The first-run demo's sample results are indexed like any others, so the portal hears of
 * each, as the README promises of every change.
 */
t.test('first run: every sample result is announced to the portal', async (t) => {
  const portal = await startReceiver()
  t.teardown(async () => await portal.close())
  const gateway = await startGateway({ PORTAL_WEBHOOK_URL: portal.url, OUTBOX_POLL_MS: '50', WEBHOOK_TIMEOUT_MS: '2000' })
  t.teardown(async () => { await gateway.stop() })
  for (let i = 0; i < 600 && !/\d+ sample results indexed/.test(gateway.stderr()); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const indexed = Number(/(\d+) sample results indexed/.exec(gateway.stderr())?.[1])
  t.ok(indexed > 0, `the banner says ${indexed} sample results were indexed`)

  const announced = (acked: typeof portal.received): Set<string> =>
    new Set(acked.filter((d) => d.body.type === 'document.indexed').map((d) => (d.body.document as { id: string }).id))
  const got = await portal.until((acked) => announced(acked).size >= indexed, 30_000)
  t.equal(announced(got).size, indexed, 'one announcement per sample result')
  t.ok(got.every((d) => (d.body.document as { status?: string }).status !== undefined && !('data' in (d.body.document as object))), 'metadata only, as for any indexing')
})
