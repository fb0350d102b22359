import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'
import type { AccessHistoryRequest, CitizenDocumentsRequest } from '../../services/portal.js'

/** The national portal's views of one citizen or organization; the identifier travels in the body only. */
export default async function portalRoutes (app: FastifyInstance): Promise<void> {
  app.post<{ Body: CitizenDocumentsRequest }>('/v1/portal/citizen-documents', {
    schema: {
      operationId: 'listCitizenDocuments',
      tags: ['portal'],
      summary: 'A citizen\'s (or organization\'s) own results',
      description: 'For the portal\'s personal data warehouse: every result indexed about the subject, the latest version of each with its data, file metadata, issuing agency and status now, newest issued first. The call is audited before the answer is sent.',
      security: requires('portal'),
      body: { $ref: 'PortalCitizenDocuments#' },
      response: { 200: { $ref: 'PortalCitizenDocumentsResult#' }, ...problemResponses(400, 401, 403, 415, 422, 503) }
    }
  }, async (request) => await app.portal.showDocuments(callOf(request), request.body))

  app.post<{ Body: AccessHistoryRequest }>('/v1/portal/access-history', {
    schema: {
      operationId: 'getAccessHistory',
      tags: ['portal'],
      summary: 'Who used a citizen\'s (or organization\'s) results',
      description: [
        'Every reuse query that released one of the subject\'s results (data, or with mode `status` the fact that a valid one exists): when, which agency, for which procedure and dossier, why, and which document versions. Newest first, `limit` a page (default 50, at most 200), with a cursor for the next while more follow.',
        'An access that an agency was allowed by law to keep hidden (police, courts) is left out until its hidden-until date (Vietnam time), and nothing in the answer reveals it before then.',
        'The call is audited before the answer is sent.'
      ].join(' '),
      security: requires('portal'),
      body: { $ref: 'PortalAccessHistory#' },
      response: { 200: { $ref: 'PortalAccessHistoryResult#' }, ...problemResponses(400, 401, 403, 415, 422, 503) }
    }
  }, async (request) => await app.portal.showAccessHistory(callOf(request), request.body))
}
