import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { problemResponses } from '../lib/openapi.js'
import { ProblemError } from '../lib/problem.js'

/** Probes answer whatever the load: an orchestrator must not kill or unroute a busy process for it. */
const NOT_SHED = /^\/health\//

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
  let lastLog = 0
  await app.register(underPressure, {
    maxEventLoopDelay: shedding.maxEventLoopDelayMs,
    maxHeapUsedBytes: shedding.maxHeapBytes,
    maxRssBytes: shedding.maxRssBytes,
    sampleInterval: shedding.sampleIntervalMs,
    pressureHandler: async (request: FastifyRequest, _reply: unknown, type: string, value: number | undefined) => {
      if (NOT_SHED.test(request.routeOptions.url ?? request.url)) return
      const now = Date.now()
      if (now - lastLog > 5000) {
        lastLog = now
        request.log.warn({ pressure: type, value }, 'shedding load: requests get 503 until the process recovers')
      }
      throw new ProblemError(503, 'overloaded', 'the gateway is overloaded right now; retry shortly', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(2 * shedding.sampleIntervalMs / 1000))) }
      })
    }
  })
}

export default fp(loadSheddingPlugin, { name: 'load-shedding', dependencies: ['http-frame'] })
