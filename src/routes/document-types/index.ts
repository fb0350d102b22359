import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'
import type { DocumentTypeDefinition } from '../../services/catalogue.js'

/** The catalogue of document types: read by every agency, changed by admins. */
const codeParam = {
  type: 'object',
  required: ['code'],
  properties: { code: { type: 'string', pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', title: 'a document type code (lower-case words joined by hyphens)', examples: ['giay-khai-sinh'], maxLength: 64 } },
  additionalProperties: false
}

export default async function documentTypeRoutes (app: FastifyInstance): Promise<void> {
  app.get('/v1/document-types', {
    schema: {
      operationId: 'listDocumentTypes',
      tags: ['document types'],
      summary: 'The catalogue of document types, each with the JSON Schema of its structured data',
      description: 'Every type the gateway indexes: its names, the subject kinds it applies to, its default validity, whether reuse needs the citizen\'s consent, and the JSON Schema (2020-12) its structured data is checked against.',
      security: requires(),
      response: { 200: { $ref: 'DocumentTypeList#' }, ...problemResponses(401, 503) }
    }
  }, async () => ({ documentTypes: await app.catalogue.list() }))

  app.get<{ Params: { code: string } }>('/v1/document-types/:code', {
    schema: {
      operationId: 'getDocumentType',
      tags: ['document types'],
      summary: 'One document type',
      description: 'One type of the catalogue with its current schema version; 404 `document_type_not_found` when there is none with this code.',
      security: requires(),
      params: codeParam,
      response: { 200: { $ref: 'DocumentType#' }, ...problemResponses(400, 401, 404, 503) }
    }
  }, async (request) => await app.catalogue.find(request.params.code))

  app.put<{ Params: { code: string }, Body: Omit<DocumentTypeDefinition, 'code' | 'schemaVersion'> }>('/v1/document-types/:code', {
    schema: {
      operationId: 'putDocumentType',
      tags: ['document types'],
      summary: 'Add or change a document type',
      description: 'A changed schema gets the next schemaVersion; documents already indexed keep the version they were validated against.',
      security: requires('admin'),
      params: codeParam,
      body: { $ref: 'DocumentTypePut#' },
      response: { 200: { $ref: 'DocumentType#' }, 201: { $ref: 'DocumentType#' }, ...problemResponses(400, 401, 403, 409, 415, 503) }
    }
  }, async (request, reply) => {
    const { type, created } = await app.catalogue.change(callOf(request), request.params.code, request.body)
    return await reply.code(created ? 201 : 200).send(type)
  })
}
