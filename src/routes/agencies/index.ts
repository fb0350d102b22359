import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { OutboundRefusedError, checkOutboundTarget, outboundPolicy } from '../../lib/outbound.js'
import type { OutboundPolicy } from '../../lib/outbound.js'
import { ProblemError } from '../../lib/problem.js'
import { agencyChange, keysOnRecord, scopesOf } from '../../services/agencies.js'
import type { AgencyInput, AgencyRecord } from '../../services/agencies.js'

const codeParam = {
  type: 'object',
  required: ['code'],
  properties: { code: { type: 'string', pattern: '^[0-9A-Z]{3}\\.[0-9A-Z]{2}\\.[0-9A-Z]{2}\\.[A-Z][0-9]{2}$', title: 'an agency code (mã định danh điện tử)', examples: ['000.00.00.H41'], description: 'electronic agency code, e.g. 000.00.00.H41' } },
  additionalProperties: false
}

/** The gateway will call these URLs: each must be one OUTBOUND_ALLOWED_HOSTS allows, now (it is checked again on every call). */
async function checkOutboundUrls (policy: OutboundPolicy, input: AgencyInput): Promise<void> {
  for (const field of ['jwksUri', 'webhookUrl'] as const) {
    const url = input[field]
    if (url === undefined) continue
    try {
      await checkOutboundTarget(policy, url)
    } catch (err) {
      if (!(err instanceof OutboundRefusedError)) throw err
      throw new ProblemError(422, 'outbound_url_refused', `${field} ${err.message}`, { errors: [{ in: 'body', pointer: `/${field}`, detail: err.message }] })
    }
  }
}

/** the API view of an agency: its record plus the scopes its roles grant (an issuer recorded before competences shows it may issue nothing) */
function view (agency: AgencyRecord): AgencyRecord & { scopes: string[] } {
  return { ...agency, ...(agency.roles.includes('issuer') ? { issuableTypes: agency.issuableTypes ?? [] } : {}), scopes: scopesOf(agency.roles) }
}

export default async function agencyRoutes (app: FastifyInstance): Promise<void> {
  const outbound = outboundPolicy(app.config.outbound)
  app.put<{ Params: { code: string }, Body: AgencyInput }>('/v1/agencies/:code', {
    schema: {
      operationId: 'putAgency',
      tags: ['agencies'],
      summary: 'Register or replace an agency',
      description: 'Idempotent: the body is the whole new state. 201 when the agency is new, 200 when it replaced one. Keys must be public (a private member is refused) and each needs a `kid`. An issuer lists the document types it may issue (`issuableTypes`, codes of the catalogue): it may index, amend, revoke and upload files of those only.',
      security: requires('admin'),
      params: codeParam,
      body: { $ref: 'AgencyPut#' },
      response: { 200: { $ref: 'Agency#' }, 201: { $ref: 'Agency#' }, ...problemResponses(400, 401, 403, 415, 422, 503) }
    }
  }, async (request, reply) => {
    const plan = await app.agencies.prepare(request.params.code, request.body)
    const { agency, created } = plan
    // after the body's own checks (a request refused for its keys is told that first), before anything is written
    await checkOutboundUrls(outbound, request.body)
    // on record first: if the audit trail cannot take it, nothing changes
    await request.audit(agencyChange(plan))
    await app.agencies.save(agency)
    request.log.info({ agency: agency.code, created, status: agency.status, roles: agency.roles }, 'agency registered')
    return await reply.code(created ? 201 : 200).send(view(agency))
  })

  app.post<{ Params: { code: string } }>('/v1/agencies/:code/keys/refresh', {
    schema: {
      operationId: 'refreshAgencyKeys',
      tags: ['agencies'],
      summary: 'Re-read an agency\'s keys on every gateway process',
      description: 'Every gateway process drops its cached copy of the agency\'s `jwksUri` and fetches it again at its next request: a key the agency removed from its JWKS is refused from then on (without this, within the cache lifetime of 10 minutes). For an agency with inline keys it changes nothing: those are read from the registry on every request.',
      security: requires('admin'),
      params: codeParam,
      response: {
        200: {
          type: 'object',
          required: ['code', 'keysGeneration'],
          properties: {
            code: { type: 'string' },
            keysGeneration: { type: 'integer', description: 'moves on at each refresh or change of the agency: processes compare it with the one of their copy' }
          },
          additionalProperties: false
        },
        ...problemResponses(400, 401, 403, 404, 503)
      }
    }
  }, async (request) => {
    const code = request.params.code
    const agency = await app.agencies.get(code)
    if (!agency) throw new ProblemError(404, 'agency_not_found', `no agency ${code} is registered`)
    await request.audit({ action: 'agency.keys_refreshed', outcome: 'granted', detail: { agency: code, keys: keysOnRecord(agency) } })
    const { keysGeneration } = await app.agencies.refreshKeys(code)
    request.log.info({ agency: code, keysGeneration }, 'agency keys refreshed')
    return { code, keysGeneration }
  })

  app.get('/v1/agencies', {
    schema: {
      operationId: 'listAgencies',
      tags: ['agencies'],
      summary: 'List the registered agencies',
      description: 'Every agency with its roles, the scopes they grant, its keys (inline JWKS or jwksUri), its webhook and its status, suspended ones included.',
      security: requires('admin'),
      response: { 200: { $ref: 'AgencyList#' }, ...problemResponses(401, 403, 503) }
    }
  }, async () => ({ agencies: (await app.agencies.list()).map(view) }))

  app.get<{ Params: { code: string } }>('/v1/agencies/:code', {
    schema: {
      operationId: 'getAgency',
      tags: ['agencies'],
      summary: 'One agency',
      description: 'The agency as registered, with the scopes its roles grant; 404 `agency_not_found` when no agency has this code.',
      security: requires('admin'),
      params: codeParam,
      response: { 200: { $ref: 'Agency#' }, ...problemResponses(400, 401, 403, 404, 503) }
    }
  }, async (request) => {
    const agency = await app.agencies.get(request.params.code)
    if (!agency) throw new ProblemError(404, 'agency_not_found', `no agency ${request.params.code} is registered`)
    return view(agency)
  })
}
