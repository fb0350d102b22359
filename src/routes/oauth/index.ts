import formbody from '@fastify/formbody'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PUBLIC } from '../../lib/openapi.js'
import { problemType, statusTitle } from '../../lib/problem.js'
import type { AuthCheckError } from '../../services/auth-errors.js'
import type { TokenCall, TokenRequest } from '../../services/tokens.js'

type OAuthErrorCode = AuthCheckError['oauthError']

/** an HTTP authentication scheme name (RFC 9110 §11.1: a token) */
const AUTH_SCHEME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/

/** The scheme of the request's Authorization header, if it has a well-formed one. */
function authorizationScheme (request: FastifyRequest): string | undefined {
  const scheme = request.headers.authorization?.trim().split(/\s+/)[0]
  return scheme && AUTH_SCHEME.test(scheme) ? scheme : undefined
}

/**
 * RFC 6749 §5.2: 401 for invalid_client, 400 otherwise; the problem members ride along. No
 * Bearer challenge: that scheme is the resource server's, and a client library reads one as a
 * refused access token rather than as this error. §5.2 asks for a challenge only when the client
 * authenticated through the Authorization header, and then in the scheme it used.
 */
function sendOAuthError (reply: FastifyReply, error: OAuthErrorCode, code: string, description: string): FastifyReply {
  const status = error === 'invalid_client' ? 401 : 400
  const scheme = status === 401 ? authorizationScheme(reply.request) : undefined
  if (scheme) reply.header('www-authenticate', `${scheme} realm="reuse-gateway"`)
  return reply.code(status).type('application/json').send({
    error,
    error_description: description,
    type: problemType(code),
    title: statusTitle(status),
    status,
    detail: description,
    code,
    requestId: reply.request.id
  })
}

/** the largest token request: a form of a few parameters and one client assertion */
const TOKEN_FORM_LIMIT_BYTES = 16 * 1024

export default async function oauthRoutes (app: FastifyInstance): Promise<void> {
  // RFC 6749 §4.4.2: the token request is a form, and only a form
  app.removeContentTypeParser('application/json')
  await app.register(formbody, { bodyLimit: TOKEN_FORM_LIMIT_BYTES })

  // OAuth clients expect RFC 6749 errors from this endpoint, not problem+json alone
  app.setErrorHandler(function (error: FastifyError, request, reply) {
    if (error.validation) {
      const first = error.validation[0]
      const field = first?.params?.missingProperty ?? first?.params?.additionalProperty ?? first?.instancePath.slice(1)
      // client_secret_basic and the like: the client did authenticate, in a way this endpoint does not take
      if (authorizationScheme(request) && (field === 'client_assertion' || field === 'client_assertion_type')) {
        return sendOAuthError(reply, 'invalid_client', 'client_auth_method_unsupported', 'clients authenticate with private_key_jwt only (client_assertion, RFC 7523), not with the Authorization header')
      }
      return sendOAuthError(reply, 'invalid_request', 'invalid_request', `parameter ${String(field)}: ${first?.keyword === 'additionalProperties' ? 'is not a parameter of this endpoint' : first?.message ?? 'is invalid'}`)
    }
    if (error.statusCode === 415) {
      return sendOAuthError(reply, 'invalid_request', 'unsupported_media_type', 'the token request must be application/x-www-form-urlencoded (RFC 6749 §4.4.2)')
    }
    if (error.statusCode === 413) {
      return sendOAuthError(reply, 'invalid_request', 'invalid_request', `the token request is larger than ${TOKEN_FORM_LIMIT_BYTES} bytes, the most this endpoint accepts: a client assertion is far smaller`)
    }
    if (typeof error.statusCode === 'number' && error.statusCode < 500 && error.statusCode !== 401 && error.statusCode !== 403 && error.statusCode !== 503) {
      return sendOAuthError(reply, 'invalid_request', 'invalid_request', error.message)
    }
    throw error
  })

  app.post<{ Body: TokenRequest }>('/v1/oauth/token', {
    schema: {
      operationId: 'requestAccessToken',
      tags: ['tokens'],
      summary: 'Get an access token (client credentials, private_key_jwt)',
      description: 'OAuth 2.0 client-credentials grant authenticated by a JWT client assertion (RFC 7523); any OAuth client with `private_key_jwt` works from `/.well-known/oauth-authorization-server`. Each assertion `jti` is accepted once, across all gateway processes.\n\n' +
        'The access token is a JWT access token (RFC 9068) signed by the gateway with a key of `/.well-known/jwks.json`: header `typ: at+jwt`, `alg` EdDSA or ES256, `kid`; claims `iss` and `aud` = the issuer id, `sub` and `client_id` = the agency code, `scope` (space-separated), `iat`, `exp` (ACCESS_TOKEN_TTL_SECONDS later, 300 by default), `jti` (the token id in the audit trail) and `agency_kid` (the agency key the assertion was signed with). Suspending the agency or removing that key makes it fail from the next request on.\n\n' +
        'Errors are RFC 6749 §5.2 errors (`error`, `error_description`) with the problem members alongside, and no `WWW-Authenticate` challenge unless the client sent an `Authorization` header (then in its scheme).',
      // authenticated by the client assertion in the body, not by an access token
      security: PUBLIC,
      consumes: ['application/x-www-form-urlencoded'],
      body: { $ref: 'TokenRequest#' },
      response: {
        200: { $ref: 'TokenResponse#' },
        400: { description: 'invalid_request, unsupported_grant_type or invalid_scope', content: { 'application/json': { schema: { $ref: 'OAuthError#' } } } },
        401: { description: 'invalid_client: the assertion failed a check (`code` says which). No WWW-Authenticate header, unless the client tried to authenticate with the Authorization header (`client_auth_method_unsupported`): then a challenge in the scheme it used (RFC 6749 §5.2).', content: { 'application/json': { schema: { $ref: 'OAuthError#' } } } },
        503: { description: 'The gateway cannot reach its store; retry after Retry-After', content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } }
      }
    }
  }, async (request, reply) => {
    reply.header('pragma', 'no-cache')
    const call: TokenCall = {
      audit: async (event, options) => await request.audit(event, options),
      refuse: async (refusal) => await app.refusals.refuse(request, refusal),
      log: request.log
    }
    const answer = await app.tokens.grant(call, request.body)
    if ('refused' in answer) return sendOAuthError(reply, answer.refused.error, answer.refused.code, answer.refused.description)
    return answer.token
  })
}
