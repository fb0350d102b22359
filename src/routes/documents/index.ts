import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ndjsonLines, readNdjson } from '../../lib/ndjson.js'
import { problemResponses, requires } from '../../lib/openapi.js'
import { ProblemError, validationErrors } from '../../lib/problem.js'
import { createAjv, parseJsonBody } from '../../plugins/validation.js'
import { BlobDigestMismatchError, BlobTooLargeError } from '../../store/blob-store.js'
import { FILE_MEDIA_TYPES, TypeNotIssuableError, view } from '../../services/documents.js'
import type { AmendInput, DocumentInput, DocumentView } from '../../services/documents.js'
import type { Catalogue } from '../../services/catalogue.js'

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9A-HJKMNP-TV-Z]{26}$', title: 'a document id (26 characters)', examples: ['01HZX3J4K5M6N7P8Q9R0S1T2V3'], description: 'document id' } },
  additionalProperties: false
}

const FILE_TYPES = FILE_MEDIA_TYPES
/** batch lines in progress at once */
const BATCH_WINDOW = 32

export type RegistrationResult =
  | { outcome: 'created' | 'existing', document: DocumentView }
  | { outcome: 'conflict', problem: ProblemError }

/**
 * Runs a change the calling issuer asked for; refused because the caller may not issue that
 * type, it is on record as denied under the change's own action before the 403 is answered.
 */
async function competent<T> (request: FastifyRequest, action: string, change: () => Promise<T>): Promise<T> {
  try {
    return await change()
  } catch (err) {
    if (err instanceof TypeNotIssuableError) {
      await request.audit({ action, outcome: 'denied', subject: err.subjectHash, ...(err.document ? { documents: [err.document] } : {}), detail: { code: err.code, type: err.type } })
    }
    throw err
  }
}

/** Registers one result on behalf of the calling issuer: checked, audited, then written. */
async function registerOne (app: FastifyInstance, request: FastifyRequest, input: DocumentInput, catalogue?: Pick<Catalogue, 'validator'>): Promise<RegistrationResult> {
  const prepared = await competent(request, 'document.indexed', async () => await app.documents.prepareRegistration(request.caller!, input, new Date(), catalogue))
  const record = async (outcome: 'granted' | 'error', action: string, id: string, detail?: Record<string, unknown>): Promise<string> => {
    // the new document is announced (outbox) by the event that records it
    const event = await request.audit({
      action,
      outcome,
      subject: prepared.keys.subjectHash,
      documents: [{ id, version: 1 }],
      purpose: { procedureCode: input.procedureCode, dossierCode: input.dossierCode },
      detail: { type: input.type, ...detail }
    }, { announce: action === 'document.indexed' })
    return event.id
  }
  // Already registered (a retried request or batch): nothing new is written, so nothing new is
  // audited; the store call still completes a registration a crash interrupted.
  const known = await app.store.findRegistration(prepared.keys.naturalKey)
  let indexedEvent: string | undefined
  if (!known) {
    // on record before it is written (fail closed)
    indexedEvent = await record('granted', 'document.indexed', prepared.first.id)
  }
  let result
  try {
    result = await app.documents.register(prepared)
  } catch (err) {
    if (indexedEvent) {
      await record('error', 'document.index_failed', prepared.first.id).catch(() => {})
      await app.outbox.discard(indexedEvent).catch(() => {})
    }
    throw err
  }
  const latest = result.document.versions[result.document.versions.length - 1]
  if (result.outcome === 'conflict') {
    const id = result.document.versions[0]?.id as string
    return {
      outcome: 'conflict',
      problem: new ProblemError(409, 'document_exists', `a ${input.type} numbered ${JSON.stringify(input.documentNumber)} is already indexed by this issuer with other content; send the change as an amendment: POST /v1/documents/${id}/amend`, {
        extensions: { documentId: id, amend: `/v1/documents/${id}/amend` }
      })
    }
  }
  if (!known && result.outcome !== 'created' && result.document.versions[0]?.id !== prepared.first.id) {
    // the retry of an earlier registration: the id reserved here was never used
    await record('granted', 'document.index_repeated', result.document.versions[0]?.id as string, { unusedId: prepared.first.id })
    if (indexedEvent) await app.outbox.discard(indexedEvent)
  }
  const first = result.document.versions[0]
  return { outcome: result.outcome, document: view(result.document, result.outcome === 'existing' ? first! : latest!) }
}

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
    const result = await registerOne(app, request, request.body)
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
    const lines = ndjsonLines(request.body, app.config.limits.batchLines)
    if (lines.length === 0) throw new ProblemError(400, 'empty_batch', 'the batch has no lines')
    const catalogue = app.catalogue.snapshot()
    const one = async (i: number): Promise<string> => {
      const text = lines[i] as string
      const line = i + 1
      let out: Record<string, unknown>
      try {
        const input = parseJsonBody(Buffer.from(text, 'utf8'))
        if (!validateLine(input)) {
          const errors = validationErrors(validateLine.errors ?? [], 'body')
          throw new ProblemError(400, 'validation_failed', `${errors[0]?.pointer ?? '/'} ${errors[0]?.detail ?? 'is invalid'}`, { errors })
        }
        const result = await registerOne(app, request, input as DocumentInput, catalogue)
        out = result.outcome === 'conflict'
          ? { line, outcome: 'conflict', problem: result.problem.toBody() }
          : { line, outcome: result.outcome, id: result.document.id, version: result.document.version, status: result.document.status }
      } catch (err) {
        if (!(err instanceof ProblemError)) throw err
        out = { line, outcome: 'rejected', problem: err.toBody() }
      }
      return JSON.stringify(out) + '\n'
    }
    // Lines are indexed BATCH_WINDOW at a time (their store round trips and audit appends
    // overlap), and answered in input order. A failure that is not the line's own (the store
    // went away) ends the answer there; lines already answered were indexed.
    async function * results (): AsyncGenerator<string> {
      const window: Array<Promise<{ text: string } | { error: unknown }>> = []
      let next = 0
      const start = (): void => {
        window.push(one(next++).then((text) => ({ text }), (error: unknown) => ({ error })))
      }
      while (next < lines.length && window.length < BATCH_WINDOW) start()
      while (window.length > 0) {
        const settled = await window.shift() as { text: string } | { error: unknown }
        if ('error' in settled) throw settled.error
        if (next < lines.length) start()
        yield settled.text
      }
    }
    reply.type('application/x-ndjson')
    return await reply.send(Readable.from(results()))
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
    const prepared = await competent(request, 'document.amended', async () => await app.documents.prepareAmendment(request.caller!, request.params.id, request.body))
    await request.audit({
      action: 'document.amended',
      outcome: 'granted',
      subject: prepared.subjectHash,
      documents: [{ id: request.params.id, version: prepared.next.version }],
      purpose: { procedureCode: request.body.procedureCode, dossierCode: request.body.dossierCode },
      detail: { reason: request.body.reason, supersedes: prepared.expected, ...(prepared.carryFile ? {} : { replacesFile: true }) }
    }, { announce: true })
    return await reply.code(201).send(await app.documents.amend(prepared))
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
    const issuer = request.caller?.code as string
    const { document, subjectHash } = await competent(request, 'document.revoked', async () => await app.documents.ownToChange(request.caller!, request.params.id))
    if (document.revoked) throw new ProblemError(409, 'already_revoked', `document ${request.params.id} was revoked at ${document.revoked.at}`)
    const latest = document.versions[document.versions.length - 1]
    await request.audit({ action: 'document.revoked', outcome: 'granted', subject: subjectHash, documents: [{ id: request.params.id, version: latest?.version as number }], detail: { reason: request.body.reason } }, { announce: true })
    if (!await app.documents.revoke(issuer, request.params.id, subjectHash, request.body.reason)) {
      throw new ProblemError(409, 'already_revoked', `document ${request.params.id} was revoked meanwhile`)
    }
    return await app.documents.read(issuer, request.params.id)
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
    const issuer = request.caller?.code as string
    // a request without a body never reaches the file parser: no stream to store
    if (!(request.body instanceof Readable)) {
      if (request.headers['content-type'] === undefined) throw new ProblemError(415, 'unsupported_media_type', `the file is the request body, sent as ${FILE_TYPES.join(', ')}`)
      throw new ProblemError(400, 'empty_body', 'the request body is empty; the file was expected')
    }
    const mediaType = String(request.headers['content-type']).split(';')[0]?.trim() as string
    const { document, subjectHash } = await competent(request, 'document.file_uploaded', async () => await app.documents.ownToChange(request.caller!, request.params.id))
    const version = request.query.version ?? document.versions.length
    if (!document.versions.some((v) => v.version === version)) throw new ProblemError(404, 'version_not_found', `document ${request.params.id} has no version ${version}`)
    const existing = document.files[version]
    if (existing) {
      throw new ProblemError(409, 'file_exists', existing.carriedFrom === undefined
        ? `version ${version} already has its file; amend the document to change it`
        : `version ${version} has the file of version ${existing.carriedFrom}, carried forward when it was amended; to give it another file, amend the document with replacesFile: true and upload to that version`)
    }
    const limit = app.config.limits.fileBytes
    if (Number(request.headers['content-length'] ?? 0) > limit) throw new ProblemError(413, 'file_too_large', `the file is larger than ${limit} bytes (FILE_SIZE_LIMIT_BYTES)`)
    const expected = expectedDigest(request.headers['repr-digest'] ?? request.headers['content-digest'])
    let stored
    try {
      stored = await app.blobs.put(request.body as Readable, { maxBytes: limit, ...(expected ? { expectedSha256: expected } : {}) })
    } catch (err) {
      if (err instanceof BlobTooLargeError) throw new ProblemError(413, 'file_too_large', `the file is larger than ${limit} bytes (FILE_SIZE_LIMIT_BYTES); nothing was stored`)
      if (err instanceof BlobDigestMismatchError) throw new ProblemError(422, 'digest_mismatch', `the file's SHA-256 is ${err.actual}, not the announced ${err.expected}; nothing was stored`)
      throw err
    }
    // a version has one file for good: an empty body must not take its place
    if (stored.size === 0) throw new ProblemError(400, 'empty_body', 'the request body is empty; the file was expected')
    await request.audit({ action: 'document.file_uploaded', outcome: 'granted', subject: subjectHash, documents: [{ id: request.params.id, version }], detail: { mediaType, size: stored.size, sha256: stored.sha256 } })
    if (!await app.store.attachDocumentFile(subjectHash, request.params.id, version, { mediaType, size: stored.size, sha256: stored.sha256, uploadedAt: new Date().toISOString() })) {
      throw new ProblemError(409, 'file_exists', `version ${version} got its file meanwhile`)
    }
    return await app.documents.read(issuer, request.params.id, version)
  })
}

/** `sha-256=:<base64>:` from Repr-Digest / Content-Digest (RFC 9530), as hex; 400 when malformed. */
function expectedDigest (header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  const value = Array.isArray(header) ? header.join(',') : header
  const match = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/]+=*):/.exec(value)
  if (!match?.[1]) throw new ProblemError(400, 'invalid_digest_header', 'Repr-Digest must carry sha-256=:<base64 of the SHA-256>: (RFC 9530)')
  const bytes = Buffer.from(match[1], 'base64')
  if (bytes.length !== 32) throw new ProblemError(400, 'invalid_digest_header', 'the sha-256 digest must be 32 bytes')
  return bytes.toString('hex')
}
