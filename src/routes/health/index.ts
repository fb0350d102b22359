import type { FastifyInstance } from 'fastify'
import { PUBLIC, problemResponses } from '../../lib/openapi.js'

/** Liveness and readiness probes, public. */
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
  }, async () => app.health.live())

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
    const health = await app.health.ready()
    if (health.status === 'ready') return health
    return await reply.code(503).header('retry-after', '1').send(health)
  })
}
