import type { FastifyInstance, FastifyRequest } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { ProblemError } from '../../lib/problem.js'
import { PORTAL, agencyDestination } from '../../services/outbox.js'

/** The caller's own webhook destination: the portal's announcements, or an agency's notices. */
async function destinationOf (app: FastifyInstance, request: FastifyRequest): Promise<string> {
  const caller = request.caller!
  if (caller.roles.includes('portal')) return PORTAL
  const agency = await app.store.getAgency(caller.code)
  if (!agency?.webhookUrl) throw new ProblemError(404, 'no_webhook', `agency ${caller.code} has no webhook registered (webhookUrl, set by an administrator)`)
  return agencyDestination(caller.code)
}

const DESCRIPTION = 'The portal (an agency with the portal role) gets its announcements; any other agency its own notices.'

export default async function webhookRoutes (app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: { after?: number, limit?: number } }>('/v1/webhooks/deliveries', {
    schema: {
      operationId: 'listWebhookDeliveries',
      tags: ['webhooks'],
      summary: 'What the outbox sent (or is sending) to the caller',
      description: `${DESCRIPTION} By cursor, oldest first: each event's delivery state (queued, delivered, dead), attempts and last error. Continue with \`after\` = the last cursor seen.`,
      security: requires(),
      querystring: {
        type: 'object',
        properties: { after: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        additionalProperties: false
      },
      response: { 200: { $ref: 'WebhookDeliveryList#' }, ...problemResponses(400, 401, 404, 503) }
    }
  }, async (request) => {
    const destination = await destinationOf(app, request)
    const deliveries = await app.store.outboxDeliveries(destination, request.query.after ?? 0, request.query.limit ?? 100)
    return {
      destination,
      deliveries: deliveries.map((d) => ({
        event: d.eventId,
        cursor: d.cursor,
        state: d.state,
        attempts: d.attempts,
        ...(d.state === 'queued' ? { nextAttemptAt: new Date(d.nextAttemptAt).toISOString() } : {}),
        ...(d.lastError ? { lastError: d.lastError } : {}),
        ...(d.settledAt ? { settledAt: d.settledAt } : {})
      }))
    }
  })

  app.post<{ Body: { after: number } }>('/v1/webhooks/replay', {
    schema: {
      operationId: 'replayWebhooks',
      tags: ['webhooks'],
      summary: 'Send again everything after a cursor',
      description: `${DESCRIPTION} Every delivered or dead event with a cursor greater than \`after\` is queued again and sent in order, with its original event id (receivers de-duplicate on it). Events still queued are left as they are.`,
      security: requires(),
      body: { type: 'object', required: ['after'], properties: { after: { type: 'integer', minimum: 0, description: 'the last cursor the receiver has safely processed' } }, additionalProperties: false },
      response: {
        202: { type: 'object', required: ['destination', 'requeued'], properties: { destination: { type: 'string' }, requeued: { type: 'integer' } }, additionalProperties: false },
        ...problemResponses(400, 401, 404, 415, 503)
      }
    }
  }, async (request, reply) => {
    const destination = await destinationOf(app, request)
    await request.audit({ action: 'webhook.replay_requested', outcome: 'granted', detail: { destination, after: request.body.after } })
    const { requeued } = await app.outbox.replay(destination, request.body.after)
    return await reply.code(202).send({ destination, requeued })
  })
}
