import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { problemResponses, requires } from '../../lib/openapi.js'
import { ProblemError } from '../../lib/problem.js'
import { scopesOf } from '../../services/agencies.js'
import { FILE_MEDIA_TYPES, statusOf, today } from '../../services/documents.js'
import { canonicalDigest, sha256Hex } from '../../lib/digest.js'
import { ATTESTATION_TYP, CONSENT_REVOCATION_TTL_MS, DOWNLOAD_TTL_MS, RECEIPT_TYP, grantFor, minimize, newDownloadToken, pick, releasedFields, typeFields, verifyConsent } from '../../services/reuse.js'
import type { AgreementRecord } from '../../store/index.js'
import type { Subject } from '../../services/identifiers.js'

interface ReuseQueryBody {
  subject: Subject
  documentTypes: string[]
  purpose: { procedureCode: string, dossierCode: string }
  reason?: string
  consentToken?: string
  hidden?: boolean
  hiddenUntil?: string
  mode?: 'full' | 'status'
}

type AgreementBody = Omit<AgreementRecord, 'id' | 'createdAt' | 'updatedAt' | 'status' | 'fileDownload' | 'hiddenAllowed'> & Partial<Pick<AgreementRecord, 'status' | 'fileDownload' | 'hiddenAllowed'>>

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
  const deniedQueries = new WeakMap<FastifyRequest, string>()

  /** The Reuse-Receipt over a request's body and the answer's bytes as sent, for its requester. */
  async function receipt (request: FastifyRequest, requester: string, jti: string, payload: string, iat = Math.floor(Date.now() / 1000)): Promise<string> {
    return await app.signingKeys.sign({
      iss: app.config.gatewayIssuer,
      aud: requester,
      iat,
      jti,
      request_sha256: sha256Hex(request.rawBody ?? Buffer.alloc(0)),
      response_sha256: sha256Hex(payload)
    }, RECEIPT_TYP)
  }

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
    try {
      reply.header('reuse-receipt', await receipt(request, request.caller.code, deniedQueries.get(request) ?? randomUUID(), payload))
    } catch (err) {
      // the refusal still goes out; without its receipt, which the log says
      request.log.warn({ err }, 'reuse refusal sent without a receipt: it could not be signed')
    }
    return payload
  }

  app.put<{ Params: { id: string }, Body: AgreementBody }>('/v1/agreements/:id', {
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
    const body = request.body
    const requester = await app.store.getAgency(body.requester)
    if (!requester || !requester.roles.includes('requester')) throw new ProblemError(422, 'not_a_requester', `${body.requester} is not a registered agency with the requester role`)
    for (const type of body.documentTypes) {
      const definition = await app.catalogue.get(type)
      if (!definition) throw new ProblemError(422, 'unknown_document_type', `no document type ${type}`)
      // minimization is never implied: a type granted without its fields would release either
      // everything or nothing, and neither is what an admin who forgot them meant
      const fields = Object.hasOwn(body.fields, type) ? body.fields[type] : undefined
      if (fields === undefined) throw new ProblemError(422, 'fields_missing', `fields has no entry for ${type}: list the fields released (["*"] for all, [] for none)`)
      const known = typeFields(definition.schema)
      const unknown = fields.filter((field) => field !== '*' && known !== undefined && !known.has(field))
      if (unknown.length > 0) throw new ProblemError(422, 'unknown_field', `${type} has no field ${unknown.join(', ')} (fields: ${[...known ?? []].join(', ')})`)
    }
    const extra = Object.keys(body.fields).filter((type) => !body.documentTypes.includes(type))
    if (extra.length > 0) throw new ProblemError(422, 'fields_for_ungranted_type', `fields names ${extra.join(', ')}, which documentTypes does not grant`)
    if (body.validUntil && body.validUntil < body.validFrom) throw new ProblemError(422, 'invalid_validity_period', 'validUntil is before validFrom')
    const previous = await app.store.getAgreement(request.params.id)
    const now = new Date().toISOString()
    const agreement: AgreementRecord = {
      ...body,
      id: request.params.id,
      fileDownload: body.fileDownload ?? false,
      hiddenAllowed: body.hiddenAllowed ?? false,
      status: body.status ?? 'active',
      createdAt: previous?.createdAt ?? now,
      updatedAt: now
    }
    await request.audit({ action: previous ? 'agreement.updated' : 'agreement.created', outcome: 'granted', detail: { agreement: agreement.id, requester: agreement.requester, documentTypes: agreement.documentTypes, status: agreement.status } })
    await app.store.putAgreement(agreement)
    return await reply.code(previous ? 200 : 201).send(agreement)
  })

  app.get('/v1/agreements', {
    schema: {
      operationId: 'listAgreements',
      tags: ['agreements'],
      summary: 'All data-sharing agreements',
      description: 'Every agreement, active or not, with the requester, the document types, procedures and fields it grants, whether files and hidden queries are allowed, and its validity period.',
      security: requires('admin'),
      response: { 200: { type: 'object', required: ['agreements'], properties: { agreements: { type: 'array', items: { $ref: 'Agreement#' } } }, additionalProperties: false }, ...problemResponses(401, 403, 503) }
    }
  }, async () => ({ agreements: await app.store.listAgreements() }))

  app.get('/v1/discovery', {
    schema: {
      operationId: 'getDiscovery',
      tags: ['reuse'],
      summary: 'What this caller may do',
      description: 'The calling agency, its roles and scopes, for an issuer the document types it may issue, and for a requester each document type its agreements grant today, with the procedures, the fields released, whether files may be downloaded and whether the citizen\'s consent is needed (like X-Road\'s allowedMethods).',
      security: requires(),
      response: {
        200: {
          type: 'object',
          required: ['agency', 'roles', 'scopes', 'grants'],
          properties: {
            agency: { type: 'string' },
            roles: { type: 'array', items: { type: 'string' } },
            scopes: { type: 'array', items: { type: 'string' } },
            issuableTypes: { type: 'array', items: { type: 'string' }, description: 'for an issuer: the document types it may index, amend and revoke' },
            grants: {
              type: 'array',
              items: {
                type: 'object',
                required: ['documentType', 'procedureCodes', 'fields', 'fileDownload', 'hiddenAllowed', 'consentRequired', 'agreement'],
                properties: {
                  documentType: { type: 'string' },
                  procedureCodes: { type: 'array', items: { type: 'string' } },
                  fields: { type: 'array', items: { type: 'string' } },
                  fileDownload: { type: 'boolean' },
                  hiddenAllowed: { type: 'boolean' },
                  consentRequired: { type: 'boolean' },
                  agreement: { type: 'string' },
                  validUntil: { type: 'string' }
                },
                additionalProperties: false
              }
            }
          },
          additionalProperties: false
        },
        ...problemResponses(401, 503)
      }
    }
  }, async (request) => {
    const caller = request.caller!
    const day = today()
    const agreements = caller.roles.includes('requester')
      ? (await app.store.listAgreements()).filter((a) => a.requester === caller.code && a.status === 'active' && a.validFrom <= day && (!a.validUntil || a.validUntil >= day))
      : []
    const grants = []
    for (const agreement of agreements) {
      for (const type of agreement.documentTypes) {
        grants.push({
          documentType: type,
          procedureCodes: agreement.procedureCodes,
          fields: releasedFields(agreement, type),
          fileDownload: agreement.fileDownload,
          hiddenAllowed: agreement.hiddenAllowed,
          consentRequired: (await app.catalogue.get(type))?.consentRequired ?? false,
          agreement: agreement.id,
          ...(agreement.validUntil ? { validUntil: agreement.validUntil } : {})
        })
      }
    }
    return { agency: caller.code, roles: caller.roles, scopes: scopesOf(caller.roles).filter((s) => caller.scopes.includes(s)), ...(caller.roles.includes('issuer') ? { issuableTypes: caller.issuableTypes } : {}), grants }
  })

  app.post<{ Body: ReuseQueryBody }>('/v1/reuse-queries', {
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
    const caller = request.caller!
    const body = request.body
    const subjectHash = app.documents.checkedSubjectHash(body.subject)
    const purpose = body.purpose
    // the grants first, the subject's documents only once they are granted: a refusal reads
    // nothing of the citizen's, so it costs (and takes) the same whatever the citizen holds
    const [agreements, types] = await Promise.all([
      app.store.listAgreements(),
      Promise.all(body.documentTypes.map(async (type) => await app.catalogue.get(type)))
    ])
    const deny = async (code: string, detail: string, extra: Record<string, unknown> = {}): Promise<never> => {
      const event = await request.audit({ action: 'reuse.queried', outcome: 'denied', subject: subjectHash, purpose, detail: { code, documentTypes: body.documentTypes, ...extra } })
      deniedQueries.set(request, event.id)
      // counters only for what exists: a type code the catalogue does not hold, or a procedure
      // no agreement names, would otherwise make a counter per code a caller invents
      const knownTypes = body.documentTypes.filter((_type, i) => types[i] !== undefined)
      const knownProcedure = agreements.some((a) => a.procedureCodes.includes(purpose.procedureCode))
      await app.reuseStats.countDenial(request.log, { requester: caller.code, ...(knownProcedure ? { procedureCode: purpose.procedureCode } : {}), documentTypes: knownTypes })
      throw new ProblemError(403, code, detail)
    }
    const grants = new Map<string, AgreementRecord>()
    for (const type of body.documentTypes) {
      const grant = grantFor(agreements, caller.code, type, purpose.procedureCode)
      if (!grant) {
        // an agreement outside its validity grants nothing: no_agreement, not a procedure problem
        const day = today()
        const anyForType = agreements.some((a) => a.requester === caller.code && a.status === 'active' && a.documentTypes.includes(type) &&
          a.validFrom <= day && (a.validUntil === undefined || a.validUntil >= day))
        await deny(anyForType ? 'procedure_not_granted' : 'no_agreement', anyForType
          ? `the agreement for ${type} does not cover procedure ${purpose.procedureCode}`
          : `agency ${caller.code} has no active agreement to reuse ${type}`, { documentType: type })
      }
      grants.set(type, grant!)
    }
    if (body.hidden) {
      if (![...grants.values()].every((g) => g.hiddenAllowed)) await deny('hidden_not_allowed', 'this agency\'s agreement does not allow hidden queries')
      if (!body.hiddenUntil) throw new ProblemError(400, 'hidden_until_required', 'a hidden query needs hiddenUntil: the date from which the citizen sees it')
    }
    const needConsent = body.documentTypes.filter((_type, i) => types[i]?.consentRequired)
    let consentId: string | undefined
    if (needConsent.length) {
      if (!body.consentToken) await deny('consent_required', `${needConsent.join(', ')} needs the citizen's consent token from the national portal`)
      try {
        consentId = (await verifyConsent(body.consentToken!, { subject: body.subject, requester: caller.code, types: needConsent, procedureCode: purpose.procedureCode, dossierCode: purpose.dossierCode }, { store: app.store, agencyKeys: app.agencyKeys })).jti
      } catch (err) {
        if (err instanceof ProblemError) await deny(err.code, err.message)
        throw err
      }
    }

    const documents = await app.documents.documentsOfSubject(subjectHash, body.documentTypes)
    const statusOnly = body.mode === 'status'
    const picked = body.documentTypes.map((type) => ({ type, ...pick(documents, type) }))
    const released = picked.flatMap((p) => p.valid.map((c) => ({ id: c.version.id, version: c.version.version })))
    const event = await request.audit({
      action: 'reuse.queried',
      outcome: released.length ? 'granted' : 'empty',
      subject: subjectHash,
      documents: released,
      purpose,
      detail: {
        documentTypes: body.documentTypes,
        mode: statusOnly ? 'status' : 'full',
        ...(body.reason ? { reason: body.reason } : {}),
        ...(body.hidden ? { hidden: true, hiddenUntil: body.hiddenUntil } : {}),
        ...(consentId ? { consentId } : {})
      }
    })

    const iat = Math.floor(Date.now() / 1000)
    let n = 0
    const results = []
    // the writes a release makes (download grants, reuse records) go out together, and are all
    // in the store before the answer is sent
    const writes: Array<Promise<unknown>> = []
    for (const p of picked) {
      const grant = grants.get(p.type) as AgreementRecord
      const out = []
      for (const c of p.valid) {
        n++
        const v = c.version
        const base = { id: v.id, version: v.version, status: c.status, issuer: v.issuer, validFrom: v.validFrom, ...(v.validUntil ? { validUntil: v.validUntil } : {}) }
        // Status mode signs no attestation: an attestation vouches for the data and file digest
        // released, and this mode releases neither. The Reuse-Receipt, signed over the whole
        // answer, already proves to a relying party which results were said valid, until when.
        if (statusOnly) { out.push(base); continue }
        const data = minimize(v.data, releasedFields(grant, p.type))
        const file = c.document.files[v.version]
        const attestation = await app.signingKeys.sign({
          iss: app.config.gatewayIssuer,
          aud: caller.code,
          iat,
          jti: `${event.id}.${n}`,
          audit_event: event.id,
          document_id: v.id,
          document_version: v.version,
          document_type: p.type,
          issuer: v.issuer,
          status: c.status,
          valid_until: v.validUntil ?? null,
          // data_sha256: SHA-256 of the released data in RFC 8785 canonical JSON
          data_sha256: canonicalDigest(data),
          file_sha256: file?.sha256 ?? null,
          procedure_code: purpose.procedureCode,
          dossier_code: purpose.dossierCode
        }, ATTESTATION_TYP)
        let download: string | undefined
        if (file && grant.fileDownload) {
          const token = newDownloadToken()
          writes.push(app.store.putDownloadGrant(token, { requester: caller.code, documentId: v.id, version: v.version, sha256: file.sha256, mediaType: file.mediaType, size: file.size, dossierCode: purpose.dossierCode, procedureCode: purpose.procedureCode }, DOWNLOAD_TTL_MS))
          download = `/v1/files/${token}`
        }
        writes.push(app.store.recordReuse(subjectHash, v.id, { requester: caller.code, version: v.version, dossierCode: purpose.dossierCode, procedureCode: purpose.procedureCode, at: new Date().toISOString() }))
        out.push({
          ...base,
          documentNumber: v.documentNumber,
          issuedAt: v.issuedAt,
          data,
          ...(file ? { file: { mediaType: file.mediaType, size: file.size, sha256: file.sha256 } } : {}),
          ...(download ? { download } : {}),
          attestation
        })
      }
      results.push({ documentType: p.type, found: out.length > 0, ...(p.why ? { why: p.why } : {}), documents: out })
    }

    // counted while the receipt is signed; never fails the query
    const counted = app.reuseStats.countQuery(request.log, { requester: caller.code, procedureCode: purpose.procedureCode, documentTypes: body.documentTypes, foundTypes: picked.filter((p) => p.valid.length > 0).map((p) => p.type) })
    const payload = JSON.stringify({ queryId: event.id, results })
    const signed = await receipt(request, caller.code, event.id, payload, iat)
    reply.header('reuse-receipt', signed)
    await Promise.all([...writes, counted])
    return await reply.type('application/json; charset=utf-8').serializer((x: unknown) => x as string).send(payload)
  })

  app.post<{ Body: { consentId: string, reason?: string } }>('/v1/consents/revoke', {
    schema: {
      operationId: 'revokeConsent',
      tags: ['reuse'],
      summary: 'The citizen withdraws a consent',
      description: 'Called by the national portal when a citizen withdraws a consent: the consent token with this `jti` is refused from the next query on (`consent_revoked`), on every gateway process.',
      security: requires('portal'),
      body: { type: 'object', required: ['consentId'], properties: { consentId: { type: 'string', minLength: 1, maxLength: 200, description: 'the jti of the consent token' }, reason: { type: 'string', maxLength: 500 } }, additionalProperties: false },
      response: { 204: { description: 'withdrawn', type: 'null' }, ...problemResponses(400, 401, 403, 415, 503) }
    }
  }, async (request, reply) => {
    await request.audit({ action: 'consent.revoked', outcome: 'granted', detail: { consentId: request.body.consentId, ...(request.body.reason ? { reason: request.body.reason } : {}) } })
    // kept past the longest a consent token can live
    await app.store.revokeConsent(request.body.consentId, CONSENT_REVOCATION_TTL_MS)
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
    const caller = request.caller!
    const token = request.params.token
    const peeked = await app.store.peekDownloadGrant(token)
    if (!peeked) {
      await request.audit({ action: 'file.downloaded', outcome: 'denied', detail: { code: 'download_not_found' } })
      throw new ProblemError(404, 'download_not_found', 'this download link is unknown, used already, or expired')
    }
    if (peeked.requester !== caller.code) {
      // another agency's link: refused, and left usable for its owner
      await request.audit({ action: 'file.downloaded', outcome: 'denied', documents: [{ id: peeked.documentId, version: peeked.version }], detail: { code: 'download_not_yours' } })
      throw new ProblemError(403, 'download_not_yours', 'this download link was issued to another agency')
    }
    const grant = await app.store.takeDownloadGrant(token)
    if (!grant) throw new ProblemError(404, 'download_not_found', 'this download link was used meanwhile')
    const blob = await app.blobs.open(grant.sha256)
    if (!blob) throw new ProblemError(404, 'file_missing', 'the file is not in the file store')
    await request.audit({ action: 'file.downloaded', outcome: 'granted', documents: [{ id: grant.documentId, version: grant.version }], purpose: { procedureCode: grant.procedureCode, dossierCode: grant.dossierCode }, detail: { sha256: grant.sha256 } })
    await app.reuseStats.countDownload(request.log, { requester: caller.code, procedureCode: grant.procedureCode, documentId: grant.documentId, version: grant.version })
    reply.header('content-type', grant.mediaType)
    reply.header('content-length', String(blob.size))
    reply.header('repr-digest', `sha-256=:${Buffer.from(grant.sha256, 'hex').toString('base64')}:`)
    reply.header('digest', `SHA-256=${Buffer.from(grant.sha256, 'hex').toString('base64')}`)
    return await reply.send(blob.stream)
  })

  app.post<{ Body: { attestation: string } }>('/v1/attestations/verify', {
    schema: {
      operationId: 'verifyAttestation',
      tags: ['reuse'],
      summary: 'Verify an attestation and tell the document\'s status now',
      description: 'Any agency holding an attestation (a relying party, an auditor) checks that the gateway signed it, with which key, and what the document\'s status is now (`statusNow`). A forged, altered or foreign attestation is a 200 with `valid: false` and the reason. The attestation\'s `data_sha256` is the SHA-256 of the released data in RFC 8785 canonical JSON and `file_sha256` the SHA-256 of the file bytes, both lower-case hex. Audited.',
      security: requires(),
      body: { type: 'object', required: ['attestation'], properties: { attestation: { type: 'string', maxLength: 8192 } }, additionalProperties: false },
      response: {
        200: {
          type: 'object',
          required: ['valid'],
          properties: {
            valid: { type: 'boolean', description: 'the signature verifies with a published gateway key' },
            reason: { type: 'string' },
            kid: { type: 'string' },
            claims: { type: 'object', additionalProperties: true },
            statusNow: { type: 'string', enum: ['valid', 'pending', 'expired', 'revoked', 'superseded', 'unknown'], description: '`revoked` for every version of a revoked document (revocation wins over `superseded`); `pending`: the version is not valid yet (its validFrom is still to come)' },
            revokedAt: { type: 'string' },
            latestVersion: { type: 'integer' }
          },
          additionalProperties: false
        },
        ...problemResponses(400, 401, 415, 503)
      }
    }
  }, async (request) => {
    const jws = request.body.attestation
    let result: Record<string, unknown>
    try {
      const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet(app.signingKeys.jwks()), { issuer: app.config.gatewayIssuer, typ: ATTESTATION_TYP, algorithms: ['EdDSA', 'ES256'] })
      const found = await app.store.getDocument(String(payload.document_id))
      let statusNow = 'unknown'
      let extra: Record<string, unknown> = {}
      if (found) {
        const version = found.document.versions.find((v) => v.version === payload.document_version)
        if (version) statusNow = statusOf(found.document, version)
        extra = { latestVersion: found.document.versions.length, ...(found.document.revoked ? { revokedAt: found.document.revoked.at } : {}) }
      }
      result = { valid: true, kid: protectedHeader.kid, claims: payload, statusNow, ...extra }
    } catch (err) {
      let kid: string | undefined
      try { kid = decodeProtectedHeader(jws).kid } catch {}
      result = { valid: false, reason: (err as { code?: string }).code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'the signature does not verify: the attestation was altered or not made by this gateway' : `not a valid attestation of this gateway (${(err as Error).message})`, ...(kid ? { kid } : {}) }
    }
    await request.audit({ action: 'attestation.verified', outcome: result.valid ? 'granted' : 'denied', ...(result.valid ? { documents: [{ id: String((result.claims as Record<string, unknown>).document_id), version: Number((result.claims as Record<string, unknown>).document_version) }] } : {}), detail: { valid: result.valid, ...(result.statusNow ? { statusNow: result.statusNow } : {}) } })
    return result
  })
}
