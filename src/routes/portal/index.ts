import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import type { Subject } from '../../services/identifiers.js'
import { PortalService } from '../../services/portal.js'

interface CitizenDocumentsBody {
  subject: Subject
  documentTypes?: string[]
}

interface AccessHistoryBody {
  subject: Subject
  from?: string
  to?: string
  limit: number
  cursor?: string
}

/** The national portal's views of one citizen or organization; the identifier travels in the body only. */
export default async function portalRoutes (app: FastifyInstance): Promise<void> {
  const portal = new PortalService({ store: app.store, documents: app.documents, audit: app.audit, secret: app.config.subjectPepper })

  const subjectKey = (subject: Subject): string => app.documents.checkedSubjectHash(subject)

  app.post<{ Body: CitizenDocumentsBody }>('/v1/portal/citizen-documents', {
    schema: {
      operationId: 'listCitizenDocuments',
      tags: ['portal'],
      summary: 'A citizen\'s (or organization\'s) own results',
      description: 'For the portal\'s personal data warehouse: every result indexed about the subject, the latest version of each with its data, file metadata, issuing agency and status now, newest issued first. The call is audited before the answer is sent.',
      security: requires('portal'),
      body: { $ref: 'PortalCitizenDocuments#' },
      response: { 200: { $ref: 'PortalCitizenDocumentsResult#' }, ...problemResponses(400, 401, 403, 415, 422, 503) }
    }
  }, async (request) => {
    const subject = subjectKey(request.body.subject)
    const documentTypes = request.body.documentTypes
    const documents = await portal.citizenDocuments(subject, documentTypes)
    // released only once the release is on record
    await request.audit({
      action: 'portal.citizen_documents',
      outcome: documents.length ? 'granted' : 'empty',
      subject,
      documents: documents.map((d) => ({ id: d.id, version: d.version })),
      detail: { returned: documents.length, ...(documentTypes ? { documentTypes } : {}) }
    })
    return { documents }
  })

  app.post<{ Body: AccessHistoryBody }>('/v1/portal/access-history', {
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
  }, async (request) => {
    const { subject: who, from, to, limit, cursor } = request.body
    const subject = subjectKey(who)
    const result = await portal.accessHistory(subject, { limit, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(cursor ? { cursor } : {}) })
    await request.audit({
      action: 'portal.access_history',
      outcome: result.items.length ? 'granted' : 'empty',
      subject,
      detail: { returned: result.items.length, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(cursor ? { page: 'next' } : {}) }
    })
    return result
  })
}
