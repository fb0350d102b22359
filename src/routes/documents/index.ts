import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ndjsonLines, ndjsonStream, readNdjson } from '../../lib/ndjson.js'
import { problemResponses, requires } from '../../lib/openapi.js'
import { ProblemError, validationErrors } from '../../lib/problem.js'
import { callOf } from '../../plugins/audit.js'
import { createAjv, parseJsonText } from '../../plugins/validation.js'
import { FILE_MEDIA_TYPES } from '../../services/documents.js'
import type { AmendInput, DocumentInput } from '../../services/documents.js'

/** The issuer side of the index: register (one or a batch), read, amend, revoke, attach a file. */

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9A-HJKMNP-TV-Z]{26}$', title: 'a document id (26 characters)', examples: ['01HZX3J4K5M6N7P8Q9R0S1T2V3'], description: 'document id' } },
  additionalProperties: false
}

const FILE_TYPES = FILE_MEDIA_TYPES

export default async function documentRoutes (app: FastifyInstance): Promise<void> {
  // the batch body: NDJSON, one DocumentInput a line, refused while it arrives once over its
  // line or byte limit; parsed per line below
  const batchLimits = { maxBytes: app.config.limits.batchBytes, maxLines: app.config.limits.batchLines }
  app.addContentTypeParser('application/x-ndjson', async (request: FastifyRequest, payload: Readable) => {
    const announced = request.headers['content-length']
    return await readNdjson(payload, batchLimits, announced === undefined ? undefined : Number(announced))
  })
  // digitized files arrive as their own bytes, streamed to the blob store
  app.addContentTypeParser(FILE_TYPES, (_request, payload, done) => { done(null, payload) })

  // batch lines are checked against the same DocumentInput schema as a single registration
  const lineAjv = createAjv()
  for (const schema of Object.values(app.getSchemas())) lineAjv.addSchema(schema as Record<string, unknown>)
  const validateLine = lineAjv.getSchema('DocumentInput') as NonNullable<ReturnType<typeof lineAjv.getSchema>>
  const readLine = (text: string): DocumentInput => {
    const input = parseJsonText(text)
    if (!validateLine(input)) {
      const errors = validationErrors(validateLine.errors ?? [], 'body')
      throw new ProblemError(400, 'validation_failed', `${errors[0]?.pointer ?? '/'} ${errors[0]?.detail ?? 'is invalid'}`, { errors })
    }
    return input as DocumentInput
  }

  app.post<{ Body: DocumentInput }>('/v1/documents', {
    schema: {
      operationId: 'indexDocument',
      tags: ['documents'],
      summary: 'Index one result',
      description: 'Idempotent on (issuer, type, documentNumber): 201 when new, 200 with the same document when the same content is sent again, 409 (`document_exists`, with `documentId`) when different content is sent under the same number — send that as an amendment. Identifiers, the type, dates and the structured data are checked (422 with JSON pointers). A type the issuer is not competent for (not in its agency\'s `issuableTypes`) is 403 `type_not_issuable`, audited as denied.',
      security: requires('documents:write'),
      body: { $ref: 'DocumentInput#' },
      response: { 200: { $ref: 'Document#' }, 201: { $ref: 'Document#' }, ...problemResponses(400, 401, 403, 409, 413, 415, 422, 503) }
    }
  }, async (request, reply) => {
    const result = await app.documents.index(callOf(request), request.body)
    if (result.outcome === 'conflict') throw result.problem
    return await reply.code(result.outcome === 'created' ? 201 : 200).send(result.document)
  })

  app.post<{ Body: string }>('/v1/documents/batch', {
    schema: {
      operationId: 'indexDocumentBatch',
      tags: ['documents'],
      summary: 'Index many results (NDJSON)',
      description: 'One DocumentInput a line (application/x-ndjson), at most BATCH_MAX_LINES lines. Each line is checked and indexed on its own; the answer streams one NDJSON line per input line: `{line, outcome: created|existing|conflict|rejected, id?, version?, status?, problem?}`. A line is indexed exactly once however often the batch is retried (same idempotency as a single registration). A line of a type the issuer is not competent for is `rejected` with a 403 `type_not_issuable` problem.',
      security: requires('documents:write'),
      consumes: ['application/x-ndjson'],
      body: { type: 'string' },
      produces: ['application/x-ndjson'],
      response: {
        200: { description: 'one result line per input line', content: { 'application/x-ndjson': { schema: { $ref: 'BatchLineResult#' } } } },
        ...problemResponses(400, 401, 403, 413, 415, 503)
      }
    }
  }, async (request, reply) => {
    const results = app.documents.indexBatch(callOf(request), ndjsonLines(request.body, app.config.limits.batchLines), readLine)
    return await reply.type('application/x-ndjson').send(ndjsonStream(results))
  })

  app.get<{ Params: { id: string }, Querystring: { version?: number } }>('/v1/documents/:id', {
    schema: {
      operationId: 'getDocument',
      tags: ['documents'],
      summary: 'One of the caller\'s own results, any version',
      description: 'The latest version, or `?version=n`. Another issuer\'s document is 404, as if it did not exist.',
      security: requires('documents:write'),
      params: idParam,
      querystring: { type: 'object', properties: { version: { type: 'integer', minimum: 1 } }, additionalProperties: false },
      response: { 200: { $ref: 'Document#' }, ...problemResponses(400, 401, 403, 404, 503) }
    }
  }, async (request) => await app.documents.read(request.caller?.code as string, request.params.id, request.query.version))

  app.post<{ Params: { id: string }, Body: AmendInput }>('/v1/documents/:id/amend', {
    schema: {
      operationId: 'amendDocument',
      tags: ['documents'],
      summary: 'Amend: a new version',
      description: 'Adds version n+1 with the full new structured data; version n becomes `superseded` and stays readable. The file of version n (the scan of the same paper) is carried forward: version n+1 has it too, the same bytes under the same SHA-256, and the answer\'s `file.carriedFrom` names the version it was uploaded to, so a reuse query releases the new version with its file and download link. When the amendment comes with a new paper, send `replacesFile: true`: version n+1 then has no file (no `file` in the answer) until its scan is uploaded with PUT /v1/documents/{id}/file. Only for a type the issuer is competent for (403 `type_not_issuable` otherwise).',
      security: requires('documents:write'),
      params: idParam,
      body: { $ref: 'DocumentAmend#' },
      response: { 201: { $ref: 'Document#' }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 503) }
    }
  }, async (request, reply) => {
    return await reply.code(201).send(await app.documents.amend(callOf(request), request.params.id, request.body))
  })

  app.post<{ Params: { id: string }, Body: { reason: string } }>('/v1/documents/:id/revoke', {
    schema: {
      operationId: 'revokeDocument',
      tags: ['documents'],
      summary: 'Revoke with a reason',
      description: 'The document stays readable for audit, marked `revoked` with its time and reason. Revoking twice is a 409. Only for a type the issuer is competent for (403 `type_not_issuable` otherwise).',
      security: requires('documents:write'),
      params: idParam,
      body: { $ref: 'DocumentRevoke#' },
      response: { 200: { $ref: 'Document#' }, ...problemResponses(400, 401, 403, 404, 409, 415, 503) }
    }
  }, async (request) => {
    return await app.documents.revoke(callOf(request), request.params.id, request.body.reason)
  })

  app.put<{ Params: { id: string }, Querystring: { version?: number } }>('/v1/documents/:id/file', {
    schema: {
      operationId: 'uploadDocumentFile',
      tags: ['documents'],
      summary: 'Upload the digitized file',
      description: 'The file itself as the body (application/pdf, image/jpeg, image/png or image/tiff), streamed; at most FILE_SIZE_LIMIT_BYTES (20 MiB by default). Send `Repr-Digest: sha-256=:<base64>:` (RFC 9530) to have it checked: a mismatch stores nothing. Files are kept once by content. Attaches to the latest version (or `?version=`); a version has one file, including one an amendment carried forward from the version before (409 `file_exists`). Only for a type the issuer is competent for (403 `type_not_issuable` otherwise).',
      security: requires('documents:write'),
      params: idParam,
      querystring: { type: 'object', properties: { version: { type: 'integer', minimum: 1 } }, additionalProperties: false },
      headers: {
        type: 'object',
        properties: {
          'repr-digest': { type: 'string', description: 'The SHA-256 of the file bytes, base64 (not hex) in an RFC 9530 dictionary: `sha-256=:<base64 of the 32 bytes>:`. Optional; when given, a file whose digest differs is refused (422 `digest_mismatch`) and nothing is stored; a malformed value is 400 `invalid_digest_header`. The Document answered carries the same digest as `file.sha256`, in hex.' },
          'content-digest': { type: 'string', description: 'Read as Repr-Digest when that is absent (the body is sent without content coding, so the two are the same).' }
        }
      },
      consumes: FILE_TYPES,
      response: { 200: { $ref: 'Document#' }, ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 503) }
    }
  }, async (request) => {
    // a request without a body never reaches the file parser: no stream to store
    if (!(request.body instanceof Readable)) {
      if (request.headers['content-type'] === undefined) throw new ProblemError(415, 'unsupported_media_type', `the file is the request body, sent as ${FILE_TYPES.join(', ')}`)
      throw new ProblemError(400, 'empty_body', 'the request body is empty; the file was expected')
    }
    return await app.documents.attachFile(callOf(request), request.params.id, {
      bytes: request.body,
      mediaType: String(request.headers['content-type']).split(';')[0]?.trim() as string,
      version: request.query.version,
      announcedSize: Number(request.headers['content-length'] ?? 0),
      digest: request.headers['repr-digest'] ?? request.headers['content-digest']
    })
  })
}
