import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'
import type { AgencyInput } from '../../services/agencies.js'

/** The agency registry, for admins: register or replace, list, read, and re-read an agency's keys. */

const codeParam = {
  type: 'object',
  required: ['code'],
  properties: { code: { type: 'string', pattern: '^[0-9A-Z]{3}\\.[0-9A-Z]{2}\\.[0-9A-Z]{2}\\.[A-Z][0-9]{2}$', title: 'an agency code (mã định danh điện tử)', examples: ['000.00.00.H41'], description: 'electronic agency code, e.g. 000.00.00.H41' } },
  additionalProperties: false
}

export default async function agencyRoutes (app: FastifyInstance): Promise<void> {
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
    const { agency, created } = await app.agencies.register(callOf(request), request.params.code, request.body)
    request.log.info({ agency: agency.code, created, status: agency.status, roles: agency.roles }, 'agency registered')
    return await reply.code(created ? 201 : 200).send(agency)
  })

  app.post<{ Params: { code: string } }>('/v1/agencies/:code/keys/refresh', {
    schema: {
      operationId: 'refreshAgencyKeys',
      tags: ['agencies'],
      summary: 'Re-read an agency\'s keys on every gateway process',
      description: 'Every gateway process drops its cached copy of the agency\'s `jwksUri` and fetches it again at its next request: a key the agency removed from its JWKS is refused from then on (without this, within the cache lifetime of 10 minutes). For an agency with inline keys it changes nothing: those are read from the registry on every request.',
      security: requires('admin'),
      params: codeParam,
      response: { 200: { $ref: 'AgencyKeysRefresh#' }, ...problemResponses(400, 401, 403, 404, 503) }
    }
  }, async (request) => {
    const refreshed = await app.agencies.refreshKeysFor(callOf(request), request.params.code)
    request.log.info(refreshed, 'agency keys refreshed')
    return refreshed
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
  }, async () => ({ agencies: await app.agencies.views() }))

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
  }, async (request) => await app.agencies.viewOf(request.params.code))
}
