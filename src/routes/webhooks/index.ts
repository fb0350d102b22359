import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'

/** What the outbox sent to the caller's own webhook, and sending it again. */

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
  }, async (request) => await app.outbox.deliveriesOf(request.caller!, request.query.after ?? 0, request.query.limit ?? 100))

  app.post<{ Body: { after: number } }>('/v1/webhooks/replay', {
    schema: {
      operationId: 'replayWebhooks',
      tags: ['webhooks'],
      summary: 'Send again everything after a cursor',
      description: `${DESCRIPTION} Every delivered or dead event with a cursor greater than \`after\` is queued again and sent in order, with its original event id (receivers de-duplicate on it). Events still queued are left as they are.`,
      security: requires(),
      body: { $ref: 'WebhookReplay#' },
      response: { 202: { $ref: 'WebhookReplayResult#' }, ...problemResponses(400, 401, 404, 415, 503) }
    }
  }, async (request, reply) => await reply.code(202).send(await app.outbox.replayFor(callOf(request), request.body.after)))
}
