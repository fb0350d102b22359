import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'
import type { AgreementInput } from '../../services/agreements.js'
import { FILE_MEDIA_TYPES } from '../../services/documents.js'
import type { ReuseQuery } from '../../services/reuse.js'

/**
 * The reuse API: agreements, discovery, reuse queries and their receipts, consent withdrawals,
 * downloads, attestation checks. A handler reads the request, calls one use case (services/
 * reuse.ts, agreements.ts, downloads.ts, attestations.ts) and writes the reply.
 */

/** the receipt header, as the OpenAPI document declares it on every answer that carries one */
const RECEIPT_HEADER = {
  type: 'string',
  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
  description: 'A compact JWS (typ reuse-receipt+jwt) by the gateway: `request_sha256` and `response_sha256` are the SHA-256 of the request and response body bytes (the problem body for a refusal), lower-case hex; `jti` is the queryId (for a refusal, its audit event or an id of its own), `aud` the requester, `iat` the time. Verify with /.well-known/jwks.json.'
}

/** declares the receipt on the refusals that carry one */
function withReceipt (responses: Record<number, unknown>, ...statuses: number[]): Record<number, unknown> {
  for (const status of statuses) responses[status] = { ...(responses[status] as object), headers: { 'Reuse-Receipt': RECEIPT_HEADER } }
  return responses
}

export default async function reuseRoutes (app: FastifyInstance): Promise<void> {
  /** the audit event of a refused query: the jti of its receipt, as a granted query's is its queryId */
  const refusedQueries = new WeakMap<FastifyRequest, string>()

  /**
   * A refusal is an answer too: a requester proves it was refused, and why, with the same
   * receipt as an answer with results, over the problem body's bytes exactly as sent. Not for a
   * caller the gateway does not know yet (401: signing for anyone would cost a signature per
   * unauthenticated request), nor for a body the gateway never read (413, 415: there is nothing
   * to hash), nor for 429 and 5xx, which say nothing about the query.
   */
  async function signRefusal (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const status = reply.statusCode
    if (reply.hasHeader('reuse-receipt') || !request.caller || request.rawBody === null || status < 400 || status === 429 || status >= 500 || typeof payload !== 'string') return payload
    const receipt = await app.reuse.refusalReceipt({ requester: request.caller.code, rawBody: request.rawBody, body: payload, queryId: refusedQueries.get(request) }, request.log)
    if (receipt) reply.header('reuse-receipt', receipt)
    return payload
  }

  app.put<{ Params: { id: string }, Body: AgreementInput }>('/v1/agreements/:id', {
    schema: {
      operationId: 'putAgreement',
      tags: ['agreements'],
      summary: 'Create or replace a data-sharing agreement',
      description: 'Takes effect on the next query, on every gateway process (agreements are read from the store per query).',
      security: requires('admin'),
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } }, additionalProperties: false },
      body: { $ref: 'AgreementPut#' },
      response: { 200: { $ref: 'Agreement#' }, 201: { $ref: 'Agreement#' }, ...problemResponses(400, 401, 403, 415, 422, 503) }
    }
  }, async (request, reply) => {
    const { agreement, created } = await app.agreements.put(callOf(request), request.params.id, request.body)
    return await reply.code(created ? 201 : 200).send(agreement)
  })

  app.get('/v1/agreements', {
    schema: {
      operationId: 'listAgreements',
      tags: ['agreements'],
      summary: 'All data-sharing agreements',
      description: 'Every agreement, active or not, with the requester, the document types, procedures and fields it grants, whether files and hidden queries are allowed, and its validity period.',
      security: requires('admin'),
      response: { 200: { $ref: 'AgreementList#' }, ...problemResponses(401, 403, 503) }
    }
  }, async () => await app.agreements.list())

  app.get('/v1/discovery', {
    schema: {
      operationId: 'getDiscovery',
      tags: ['reuse'],
      summary: 'What this caller may do',
      description: 'The calling agency, its roles and scopes, for an issuer the document types it may issue, and for a requester each document type its agreements grant today, with the procedures, the fields released, whether files may be downloaded and whether the citizen\'s consent is needed (like X-Road\'s allowedMethods).',
      security: requires(),
      response: {
        200: { $ref: 'Discovery#' },
        ...problemResponses(401, 503)
      }
    }
  }, async (request) => await app.agreements.discovery(callOf(request)))

  app.post<{ Body: ReuseQuery }>('/v1/reuse-queries', {
    schema: {
      operationId: 'runReuseQuery',
      tags: ['reuse'],
      summary: 'Ask whether the subject already holds valid results, and get them',
      description: [
        'For each document type: the current valid results, their structured data cut down to the fields the agreement grants, a signed attestation each, and a single-use download link where files are granted.',
        'With `mode: "status"`, each valid result is only its id, version, status, issuer and validity: no data, no file or link, and no attestation (an attestation vouches for released data and file digests, and none are released); the Reuse-Receipt signs the status answer.',
        'A type without an agreement for this procedure is a 403 for the whole query (audited as denied); a type that needs consent needs a matching consent token from the national portal (403 with a code saying what does not match).',
        'Nothing found is a 200 with `found: false` and `why`. Every answer to an authenticated requester about its query carries `Reuse-Receipt` — results, nothing found, or a refusal (its problem body: 400, 403, 422), all but 413 and 415 (the body was not read), 429 and 5xx: a JWS (typ reuse-receipt+jwt) by the gateway with `request_sha256` (of the request body bytes as sent), `response_sha256` (of the response body bytes as sent, the problem body for a refusal), `jti` (= queryId, the audit event; for a refused query the audit event of the refusal, for a request refused before it was examined, such as a 400, an id of its own), `aud` (the requester) and `iat`; a requester proves which answer it got to which question by keeping both bodies and the receipt and checking the hashes and the signature against /.well-known/jwks.json. A 401 carries none: the gateway signs nothing for a caller it does not know.'
      ].join(' '),
      security: requires('documents:reuse'),
      body: { $ref: 'ReuseQuery#' },
      response: {
        200: {
          $ref: 'ReuseResult#',
          description: 'For each document type asked for: the valid results found (minimized, each with its attestation; in status mode only their id, version, status, issuer and validity), or why none',
          headers: { 'Reuse-Receipt': RECEIPT_HEADER }
        },
        ...withReceipt(problemResponses(400, 401, 403, 415, 422, 503), 400, 403, 422)
      }
    },
    onSend: signRefusal
  }, async (request, reply) => {
    const answer = await app.reuse.query(callOf(request), request.body, request.rawBody ?? Buffer.alloc(0))
    if ('refusal' in answer) {
      refusedQueries.set(request, answer.queryId)
      throw answer.refusal
    }
    return await reply.header('reuse-receipt', answer.receipt).type('application/json; charset=utf-8').serializer((x: unknown) => x as string).send(answer.body)
  })

  app.post<{ Body: { consentId: string, reason?: string } }>('/v1/consents/revoke', {
    schema: {
      operationId: 'revokeConsent',
      tags: ['reuse'],
      summary: 'The citizen withdraws a consent',
      description: 'Called by the national portal when a citizen withdraws a consent: the consent token with this `jti` is refused from the next query on (`consent_revoked`), on every gateway process.',
      security: requires('portal'),
      body: { $ref: 'ConsentRevoke#' },
      response: { 204: { description: 'withdrawn', type: 'null' }, ...problemResponses(400, 401, 403, 415, 503) }
    }
  }, async (request, reply) => {
    await app.reuse.revokeConsent(callOf(request), request.body)
    return await reply.code(204).send()
  })

  app.get<{ Params: { token: string } }>('/v1/files/:token', {
    schema: {
      operationId: 'downloadFile',
      tags: ['reuse'],
      summary: 'Download a released file',
      description: 'The link from a reuse query: single use, valid 5 minutes, only for the requester it was issued to (send its access token too). Streams the file as it was uploaded, with its media type as Content-Type, Content-Length, and its SHA-256 in Repr-Digest (and the older Digest), base64 — the reuse result and the attestation carry the same digest in hex.',
      security: requires('documents:reuse'),
      params: { type: 'object', required: ['token'], properties: { token: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } }, additionalProperties: false },
      response: {
        200: {
          description: 'the file, in the media type it was uploaded with',
          headers: {
            'Repr-Digest': { type: 'string', pattern: '^sha-256=:[A-Za-z0-9+/]{43}=:$', description: 'RFC 9530: the SHA-256 of the file bytes, base64 (not hex): `sha-256=:<base64>:`' },
            Digest: { type: 'string', pattern: '^SHA-256=[A-Za-z0-9+/]{43}=$', description: 'RFC 3230 (obsoleted by RFC 9530, for older clients): the same digest, `SHA-256=<base64>`' }
          },
          content: Object.fromEntries(FILE_MEDIA_TYPES.map((type) => [type, { schema: { type: 'string', format: 'binary' } }]))
        },
        ...problemResponses(400, 401, 403, 404, 503)
      }
    }
  }, async (request, reply) => {
    const { grant, blob } = await app.downloads.take(callOf(request), request.params.token)
    const digest = Buffer.from(grant.sha256, 'hex').toString('base64')
    reply.header('content-type', grant.mediaType)
    reply.header('content-length', String(blob.size))
    reply.header('repr-digest', `sha-256=:${digest}:`)
    reply.header('digest', `SHA-256=${digest}`)
    return await reply.send(blob.stream)
  })

  app.post<{ Body: { attestation: string } }>('/v1/attestations/verify', {
    schema: {
      operationId: 'verifyAttestation',
      tags: ['reuse'],
      summary: 'Verify an attestation and tell the document\'s status now',
      description: 'Any agency holding an attestation (a relying party, an auditor) checks that the gateway signed it, with which key, and what the document\'s status is now (`statusNow`). A forged, altered or foreign attestation is a 200 with `valid: false` and the reason. The attestation\'s `data_sha256` is the SHA-256 of the released data in RFC 8785 canonical JSON and `file_sha256` the SHA-256 of the file bytes, both lower-case hex. Audited.',
      security: requires(),
      body: { $ref: 'AttestationVerify#' },
      response: {
        200: { $ref: 'AttestationVerification#' },
        ...problemResponses(400, 401, 415, 503)
      }
    }
  }, async (request) => await app.attestations.verify(callOf(request), request.body.attestation))
}
