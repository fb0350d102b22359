import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { decodeTime } from 'ulid'
import { GatewayMetrics } from '../lib/metrics.js'
import { RedisStores } from '../store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics (METRICS_PORT); undefined when they are off, and then nothing is counted */
    metrics: GatewayMetrics | undefined
  }
}

/** a failed scrape-time read is logged at most this often (ms) */
const WARN_INTERVAL_MS = 60_000

/**
 * Prometheus metrics (docs/metrics.md), when METRICS_PORT is set: a listener of their own on
 * METRICS_HOST:METRICS_PORT serves GET /metrics in the text format, started once the gateway is
 * ready and closed with it; the API port knows no /metrics. Registered before the plugins whose
 * services report to it (they pass `app.metrics`'s observers in). Without METRICS_PORT nothing is
 * registered, no hook is added and no Redis command is wrapped: metrics then cost nothing.
 */
async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const settings = app.config.metrics
  if (!settings) {
    app.decorate('metrics', undefined)
    return
  }
  const metrics = new GatewayMetrics()
  app.decorate('metrics', metrics)

  app.addHook('onResponse', async (request, reply) => {
    metrics.httpAnswered(request.routeOptions.url, request.method, reply.statusCode, reply.elapsedTime / 1000)
  })

  // what is read from the store at scrape time: a store that does not answer leaves the families
  // empty for that scrape (its errors show in the Redis families), the rest is served
  let lastWarn = 0
  const readOrNothing = <T>(what: string, read: () => Promise<T>, nothing: T) => async (): Promise<T> => {
    try {
      return await read()
    } catch (err) {
      const now = Date.now()
      if (now - lastWarn > WARN_INTERVAL_MS) {
        lastWarn = now
        app.log.warn({ err }, `metrics: ${what} could not be read for this scrape`)
      }
      return nothing
    }
  }
  metrics.outboxGauges(readOrNothing('the outbox status', async () => await app.stores.outbox.outboxStatus(), []))
  const archive = app.config.audit.archive
  if (archive) {
    // the oldest event the store still holds: one read of its time index (archived ones have left it)
    metrics.auditArchiveGauges(archive.hotDays, readOrNothing('the oldest unarchived audit event', async () => {
      const [oldest] = await app.stores.audit.auditIndexPage({ index: { kind: 'all' }, newestFirst: false, count: 1 })
      return oldest === undefined ? undefined : decodeTime(oldest)
    }, undefined))
  }

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: this listener serves GET /metrics only\n')
      return
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('GET /metrics\n')
      return
    }
    metrics.text().then((text) => {
      response.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' })
      response.end(request.method === 'HEAD' ? undefined : text)
    }, (err: unknown) => {
      app.log.error({ err }, 'metrics could not be collected')
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected; see the gateway log\n')
    })
  })

  let stopObserving: (() => void) | undefined
  app.addHook('onReady', async () => {
    // the store was opened after this plugin was registered; commands sent while starting are not timed
    if (app.stores instanceof RedisStores) stopObserving = app.stores.connection.observeCommands(metrics.redisCommand)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(settings.port, settings.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const { address, port } = server.address() as AddressInfo
    metrics.url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`
    app.log.info({ url: metrics.url }, 'metrics served')
  })
  app.addHook('onClose', async () => {
    stopObserving?.()
    if (!server.listening) return
    const closed = new Promise((resolve) => server.close(resolve))
    // a scraper's kept-alive connection would hold the close until it times out
    server.closeAllConnections()
    await closed
  })
}

export default fp(metricsPlugin, { name: 'metrics' })
