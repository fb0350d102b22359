import type { FastifyInstance } from 'fastify'
import { PUBLIC, problemResponses } from '../../lib/openapi.js'
import { VERSION } from '../../lib/version.js'

/** how long readiness waits for the store before calling it unavailable */
const READY_PING_TIMEOUT_MS = 800

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/health/live', {
    schema: {
      operationId: 'getLiveness',
      tags: ['health'],
      summary: 'Liveness: the process is running',
      description: 'Answers as long as the process runs, whatever the store does: for an orchestrator deciding whether to restart it. Only a process that is shutting down answers 503.',
      security: PUBLIC,
      response: { 200: { $ref: 'Health#' }, ...problemResponses(503) }
    }
  }, async () => ({ status: 'ok', store: app.store.kind, version: VERSION }))

  app.get('/health/ready', {
    schema: {
      operationId: 'getReadiness',
      tags: ['health'],
      summary: 'Readiness: the store answers and the process is not shutting down',
      description: 'Returns 503 with the same body shape while the store is unreachable or the process is draining, so that load balancers stop sending traffic to it.',
      security: PUBLIC,
      response: { 200: { $ref: 'Health#' }, 503: { $ref: 'Health#' } }
    }
  }, async (_request, reply) => {
    const store = app.store.kind
    if (app.lifecycle.draining || app.lifecycle.closing) {
      return await reply.code(503).header('retry-after', '1').send({ status: 'draining', store, version: VERSION })
    }
    // held until the store's persistence is checked (plugins/store.ts): not ready, whatever a ping says
    if (app.lifecycle.holding) return await reply.code(503).header('retry-after', '1').send({ status: 'unavailable', store, version: VERSION })
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        app.store.ping(),
        new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('ping timed out')), READY_PING_TIMEOUT_MS) })
      ])
      return { status: 'ready', store, version: VERSION }
    } catch {
      return await reply.code(503).header('retry-after', '1').send({ status: 'unavailable', store, version: VERSION })
    } finally {
      clearTimeout(timer)
    }
  })
}
