import type { FastifyInstance } from 'fastify'
import { ndjsonStream } from '../../lib/ndjson.js'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'
import { EXPORT_LIMIT } from '../../services/audit-reads.js'
import type { AuditSearchRequest, TimeRange } from '../../services/audit-reads.js'

/** The audit trail for auditors: search, export, signed checkpoints, verification. */

const range = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time', description: 'inclusive' },
    to: { type: 'string', format: 'date-time', description: 'exclusive' }
  },
  additionalProperties: false
}

/**
 * The request's URL with `cursor` set, as a reference relative to the request's own (RFC 3986
 * §5.2): it resolves the same behind a proxy that serves the gateway under a path prefix.
 */
function nextUrl (url: string, cursor: string): string {
  const next = new URL(url, 'http://gateway.invalid')
  next.searchParams.set('cursor', cursor)
  return `${next.pathname.slice(next.pathname.lastIndexOf('/') + 1)}${next.search}`
}

export default async function auditRoutes (app: FastifyInstance): Promise<void> {
  app.post<{ Body: AuditSearchRequest }>('/v1/audit/search', {
    schema: {
      operationId: 'searchAuditTrail',
      tags: ['audit'],
      summary: 'Search the audit trail',
      description: 'Who did what, about whom, when and why. Filters combine; newest first; at most 1000 a page, with a cursor for the next. A subject is given in clear in the body and matched by its keyed hash. The search itself is audited.',
      security: requires('audit:read'),
      body: { $ref: 'AuditSearch#' },
      response: { 200: { $ref: 'AuditSearchResult#' }, ...problemResponses(400, 401, 403, 415, 503) }
    }
  }, async (request) => await app.auditReads.search(callOf(request), request.body))

  app.get<{ Querystring: TimeRange & { limit?: number, cursor?: string } }>('/v1/audit/export', {
    schema: {
      operationId: 'exportAuditTrail',
      tags: ['audit'],
      summary: 'Export the audit trail as NDJSON',
      description: `The events in the range, oldest first, one JSON object a line, streamed: memory stays flat whatever the range. At most \`limit\` events a request (${EXPORT_LIMIT} at most); when more follow, a \`Link\` header (RFC 8288, \`rel="next"\`) gives the URL of the next page, with the same range and a \`cursor\`. The export itself is audited before the first line is sent.`,
      security: requires('audit:read'),
      querystring: {
        type: 'object',
        properties: {
          ...range.properties,
          limit: { type: 'integer', minimum: 1, maximum: EXPORT_LIMIT, default: EXPORT_LIMIT, description: 'events a page' },
          cursor: { type: 'string', maxLength: 512, description: 'from the `Link` header of the previous page, with the same `from` and `to`' }
        },
        additionalProperties: false
      },
      produces: ['application/x-ndjson'],
      response: {
        200: {
          description: 'one AuditEvent a line',
          headers: { Link: { type: 'string', description: 'the next page, when more events follow: `<URL>; rel="next"`' } },
          content: { 'application/x-ndjson': { schema: { $ref: 'AuditEvent#' } } }
        },
        ...problemResponses(400, 401, 403, 503)
      }
    }
  }, async (request, reply) => {
    const page = await app.auditReads.export(callOf(request), request.query)
    // known before the first byte: the page's ids were read first
    if (page.nextCursor) void reply.header('link', `<${nextUrl(request.url, page.nextCursor)}>; rel="next"`)
    return await reply.type('application/x-ndjson').send(ndjsonStream(page.events))
  })

  app.get<{ Querystring: { from?: string, to?: string, limit?: number, cursor?: string } }>('/v1/audit/checkpoints', {
    schema: {
      tags: ['audit'],
      operationId: 'listAuditCheckpoints',
      summary: 'Signed checkpoints of the chain heads',
      description: 'The checkpoints made in the range (by their `time`), oldest first, at most `limit` a page, with `nextCursor` when there are more (pass it back with the same `from` and `to`): JWS signed with the gateway\'s keys over the head (seq and hash) of every chain. With an export of the same range, they verify it offline (`reuse-gateway audit verify --checkpoint`): a re-hashed event or events cut off a chain\'s end are found. Use the same explicit `to` for both, at or before the export\'s start, so that no checkpoint names events the export could not hold. Format: docs/audit-format.md. The read itself is audited.',
      security: requires('audit:read'),
      querystring: {
        type: 'object',
        properties: {
          ...range.properties,
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 1000, description: 'checkpoints a page' },
          cursor: { type: 'string', maxLength: 512, description: '`nextCursor` of the previous page, with the same `from` and `to`' }
        },
        additionalProperties: false
      },
      response: { 200: { $ref: 'AuditCheckpointList#' }, ...problemResponses(400, 401, 403, 503) }
    }
  }, async (request) => await app.auditReads.checkpoints(callOf(request), request.query))

  app.get<{ Querystring: TimeRange & { cursor?: string } }>('/v1/audit/verify', {
    schema: {
      operationId: 'verifyAuditTrail',
      tags: ['audit'],
      summary: 'Verify the hash chains and signed checkpoints',
      description: 'Recomputes every event hash and link in the range and checks the signed checkpoints, so an edited, deleted, reordered or truncated event is found; names the first bad one. Each chain is read from the signed checkpoint made before the range to the first one made after it, so the work is what the range holds, not the whole trail. A request reads a bounded number of events: past it the answer says `complete: false` (ok so far) with a `nextCursor` to pass back with the same `from` and `to`.',
      security: requires('audit:read'),
      querystring: {
        type: 'object',
        properties: {
          ...range.properties,
          cursor: { type: 'string', maxLength: 512, description: '`nextCursor` of a partial answer, with the same `from` and `to`' }
        },
        additionalProperties: false
      },
      response: { 200: { $ref: 'AuditVerifyResult#' }, ...problemResponses(400, 401, 403, 503) }
    }
  }, async (request) => await app.auditReads.verify(callOf(request), request.query))
}
