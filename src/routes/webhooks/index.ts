import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'

/** What the outbox sent to the caller's own webhook, and sending it again. */

const DESCRIPTION = 'The portal (an agency with the portal role) gets its announcements; any other agency its own notices. An admin may name another `destination` (`portal` or `agency:<code>`).'

/** a destination an admin names: the portal's, or an agency's */
const destination = { type: 'string', pattern: '^(portal|agency:[0-9A-Z]{3}\\.[0-9A-Z]{2}\\.[0-9A-Z]{2}\\.[A-Z][0-9]{2})$', description: 'admin only: `portal` or `agency:<code>` instead of the caller\'s own', examples: ['portal'] }

export default async function webhookRoutes (app: FastifyInstance): Promise<void> {
  app.get('/v1/webhooks/status', {
    schema: {
      operationId: 'getWebhookStatus',
      tags: ['webhooks'],
      summary: 'The outbox backlog of every destination',
      description: 'For an admin: per destination (`portal`, `agency:<code>`), how many deliveries are queued, delivered and dead (dead letters, replayable), and when the oldest still queued was queued, when the store keeps that.',
      security: requires('admin'),
      response: { 200: { $ref: 'WebhookStatus#' }, ...problemResponses(400, 401, 403, 503) }
    }
  }, async () => await app.outbox.status())

  app.get<{ Querystring: { after?: number, limit?: number, destination?: string } }>('/v1/webhooks/deliveries', {
    schema: {
      operationId: 'listWebhookDeliveries',
      tags: ['webhooks'],
      summary: 'What the outbox sent (or is sending) to the caller',
      description: `${DESCRIPTION} By cursor, oldest first: each event's delivery state (queued, delivered, dead), attempts and last error. Continue with \`after\` = the last cursor seen.`,
      security: requires(),
      querystring: {
        type: 'object',
        properties: { after: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, destination },
        additionalProperties: false
      },
      response: { 200: { $ref: 'WebhookDeliveryList#' }, ...problemResponses(400, 401, 403, 404, 503) }
    }
  }, async (request) => await app.outbox.deliveriesOf(request.caller!, request.query.after ?? 0, request.query.limit ?? 100, request.query.destination))

  app.post<{ Body: { after: number, destination?: string } }>('/v1/webhooks/replay', {
    schema: {
      operationId: 'replayWebhooks',
      tags: ['webhooks'],
      summary: 'Send again everything after a cursor',
      description: `${DESCRIPTION} Every delivered or dead event with a cursor greater than \`after\` is queued again and sent in order, with its original event id (receivers de-duplicate on it). Events still queued are left as they are.`,
      security: requires(),
      body: { $ref: 'WebhookReplay#' },
      response: { 202: { $ref: 'WebhookReplayResult#' }, ...problemResponses(400, 401, 403, 404, 415, 503) }
    }
  }, async (request, reply) => await reply.code(202).send(await app.outbox.replayFor(callOf(request), request.body.after, request.body.destination)))
}
