import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ProblemError } from '../lib/problem.js'
import { outboundFetcher, outboundPolicy } from '../lib/outbound.js'
import { AgencyService } from '../services/agencies.js'
import { AgencyKeys } from '../services/agency-keys.js'
import { AuthCheckError } from '../services/auth-errors.js'
import { AgencyRegistry } from '../services/registry-cache.js'
import { SIGNING_KEYS_REFRESH_MS, SigningKeys } from '../services/signing-keys.js'
import { TokenService } from '../services/tokens.js'
import type { Caller } from '../services/call.js'

declare module 'fastify' {
  interface FastifyInstance {
    signingKeys: SigningKeys
    agencyKeys: AgencyKeys
    /** the agency records as every request reads them: kept between requests, read again once one changes */
    agencyRegistry: AgencyRegistry
    agencies: AgencyService
    tokens: TokenService
  }
  interface FastifyRequest {
    /** the authenticated agency; set on every route that declares a security requirement */
    caller: Caller | null
  }
}

/** RFC 6750 §2.1; the scheme name is case-insensitive (RFC 9110 §11.1) */
const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i

function unauthorized (code: string, detail: string): ProblemError {
  const error = code === 'token_missing' ? '' : ', error="invalid_token"'
  return new ProblemError(401, code, detail, {
    headers: { 'www-authenticate': `Bearer realm="reuse-gateway"${error}` }
  })
}

/**
 * Every refused call is on record (which check failed, on which route), counted against the
 * client address before anything is written: past its limit the client gets a 429 instead, and
 * repeated refusals are recorded as one event per interval (plugins/refusals.ts).
 */
async function refused (request: FastifyRequest, code: string): Promise<void> {
  await request.server.refusals.refuse(request, { action: 'access.refused', code, detail: { method: request.method, route: request.routeOptions.url } })
}

/** The scopes a route asks for, read from its schema's security requirement (the one source of truth). */
export function requiredScopes (request: FastifyRequest): string[] | undefined {
  const security = (request.routeOptions.schema as { security?: Array<Record<string, string[]>> } | undefined)?.security
  if (!security || security.length === 0) return undefined
  return security[0]?.accessToken ?? []
}

/**
 * Agencies, the gateway's keys, tokens, and the authorization layer: every route whose schema
 * declares `security` needs a gateway access token, from an active agency, still holding the
 * scopes the route lists. The first admin agency comes from configuration (app.ts).
 */
async function authPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const signingKeys = new SigningKeys(
    config.signing.keysFile
      ? { kind: 'file', path: config.signing.keysFile }
      : { kind: 'store', keys: app.stores.signingKeys, alg: config.signing.alg },
    { retentionMs: config.signing.retentionMs, refreshMs: SIGNING_KEYS_REFRESH_MS }
  )
  app.addHook('onClose', async () => signingKeys.stop())
  // kept in the store outside production: a Redis not up yet holds the process until it is
  await app.lifecycle.whenStoreAnswers('reading the gateway\'s signing keys', async () => await signingKeys.open())
  const agencyKeys = new AgencyKeys({ agencies: app.stores.agencies, fetchTimeoutMs: 3000, cacheMs: 10 * 60_000, fetch: outboundFetcher(outboundPolicy(config.outbound)) })
  const agencies = new AgencyService({ agencies: app.stores.agencies, catalogue: app.stores.catalogue, outbound: outboundPolicy(config.outbound) })
  const agencyRegistry = new AgencyRegistry(app.stores.agencies)
  const tokens = new TokenService({
    agencies: agencyRegistry,
    leases: app.stores.leases,
    signingKeys,
    agencyKeys,
    issuer: config.gatewayIssuer,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    accessTokenClockSkewSeconds: config.accessTokenClockSkewSeconds,
    onAnswered: app.metrics?.tokenAnswered
  })
  app.decorate('signingKeys', signingKeys)
  app.decorate('agencyKeys', agencyKeys)
  app.decorate('agencyRegistry', agencyRegistry)
  app.decorate('agencies', agencies)
  app.decorate('tokens', tokens)
  app.decorateRequest('caller', null)

  app.addHook('onRequest', async (request) => {
    const scopes = requiredScopes(request)
    if (scopes === undefined) return
    const header = request.headers.authorization
    if (header === undefined || header === '') {
      await refused(request, 'token_missing')
      throw unauthorized('token_missing', 'this route needs an access token: Authorization: Bearer <token> (get one at POST /v1/oauth/token)')
    }
    const match = BEARER.exec(header)
    if (!match?.[1]) {
      await refused(request, 'token_malformed')
      throw unauthorized('token_malformed', 'the Authorization header must be "Bearer <token>"')
    }
    let caller: Caller
    try {
      caller = await tokens.caller(await tokens.verifyAccessToken(match[1]))
    } catch (err) {
      if (!(err instanceof AuthCheckError)) throw err
      await refused(request, err.code)
      throw unauthorized(err.code, err.description)
    }
    request.caller = caller
    const missing = scopes.filter((scope) => !caller.scopes.includes(scope))
    if (missing.length > 0) {
      await refused(request, 'insufficient_scope')
      throw new ProblemError(403, 'insufficient_scope', `this route needs the ${missing.join(', ')} scope; agency ${caller.code} has ${caller.scopes.join(' ') || 'none'}`, {
        headers: { 'www-authenticate': `Bearer realm="reuse-gateway", error="insufficient_scope", scope="${scopes.join(' ')}"` }
      })
    }
  })
}

export default fp(authPlugin, { name: 'auth', dependencies: ['store', 'lifecycle'] })
