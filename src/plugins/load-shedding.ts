import { monitorEventLoopDelay } from 'node:perf_hooks'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { problemResponses } from '../lib/openapi.js'
import { ProblemError } from '../lib/problem.js'

/** Probes answer whatever the load: an orchestrator must not kill or unroute a busy process for it. */
const NOT_SHED = /^\/health\//

/** the event-loop histogram's resolution, ms: under-pressure's, subtracted from its mean likewise */
const RESOLUTION_MS = 10

/**
 * The event-loop delay as load shedding reads it, measured from the moment the gateway is ready:
 * the synchronous work of starting (compiling schemas, loading modules) is not load, and neither
 * is "no sample yet" (under-pressure reads both as a delay, an infinite one for the latter, and
 * sheds every request for up to a sample interval after /health/ready says ready). A loop blocked
 * for a whole interval still shows: the sample itself then comes late by as much.
 */
class EventLoopDelay {
  private readonly histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  private lastSample = 0
  /** the last sample's delay, ms (0 until the gateway is ready) */
  delayMs = 0

  constructor (private readonly intervalMs: number) {}

  start (): void {
    this.histogram.reset()
    this.histogram.enable()
    this.lastSample = performance.now()
  }

  stop (): void {
    this.histogram.disable()
  }

  /** takes a sample: the mean delay since the last one, or how late this one is, whichever is worse */
  sample (): number {
    if (this.lastSample === 0) return 0
    const now = performance.now()
    const late = now - this.lastSample - this.intervalMs
    const mean = this.histogram.count > 0 ? this.histogram.mean / 1e6 - RESOLUTION_MS : 0
    this.histogram.reset()
    this.lastSample = now
    this.delayMs = Math.max(0, mean, late)
    return this.delayMs
  }
}

/**
 * Load shedding (under-pressure): past the configured event-loop delay, heap or RSS a request
 * gets a 503 `overloaded` with Retry-After before any work is done for it (before
 * authentication: checking a token costs a signature); which limit was hit stays in the log.
 */
async function loadSheddingPlugin (app: FastifyInstance): Promise<void> {
  // the published contract: every route but the probes may answer 503 when the gateway sheds load
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { response?: Record<string, unknown> } | undefined
    if (schema?.response && !NOT_SHED.test(route.url)) schema.response[503] ??= problemResponses(503)[503]
  })

  const shedding = app.config.loadShedding
  const eventLoop = shedding.maxEventLoopDelayMs > 0 ? new EventLoopDelay(shedding.sampleIntervalMs) : undefined
  if (eventLoop) {
    app.addHook('onReady', async () => { eventLoop.start() })
    app.addHook('onClose', async () => { eventLoop.stop() })
  }
  let lastLog = 0
  await app.register(underPressure, {
    maxHeapUsedBytes: shedding.maxHeapBytes,
    maxRssBytes: shedding.maxRssBytes,
    sampleInterval: shedding.sampleIntervalMs,
    // the event-loop delay is ours (above), checked on under-pressure's health-check timer
    ...(eventLoop
      ? { healthCheck: async () => eventLoop.sample() <= shedding.maxEventLoopDelayMs, healthCheckInterval: shedding.sampleIntervalMs }
      : {}),
    pressureHandler: async (request: FastifyRequest, _reply: unknown, type: string, value: number | undefined) => {
      if (NOT_SHED.test(request.routeOptions.url ?? request.url)) return
      app.metrics?.loadShed(type === 'healthCheck' ? 'eventLoopDelay' : type)
      const now = Date.now()
      if (now - lastLog > 5000) {
        lastLog = now
        const pressure = type === 'healthCheck' ? { pressure: 'eventLoopDelay', value: eventLoop?.delayMs } : { pressure: type, value }
        request.log.warn(pressure, 'shedding load: requests get 503 until the process recovers')
      }
      throw new ProblemError(503, 'overloaded', 'the gateway is overloaded right now; retry shortly', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(2 * shedding.sampleIntervalMs / 1000))) }
      })
    }
  })
}

export default fp(loadSheddingPlugin, { name: 'load-shedding', dependencies: ['http-frame'] })
