import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ConfigError } from '../config.js'
import { clientAddressKey } from '../lib/client-address.js'
import { problemResponses } from '../lib/openapi.js'
import { ProblemError } from '../lib/problem.js'
import { RedisStores } from '../store/index.js'

/** Routes nobody is limited on: orchestrators' probes, the public keys, the published contract. */
const EXEMPT = /^\/(health\/|\.well-known\/|docs(\/|$)|openapi\.json$)/

const TOO_MANY_REQUESTS = {
  ...problemResponses(429)[429] as object,
  description: 'Too many requests (`rate_limited`): the agency\'s requests on this route for this window (per client address before authentication), or this client address\'s refused requests (AUTH_FAILURE_LIMIT_PER_MINUTE). Retry after Retry-After seconds.'
}

/** A route's group is its OpenAPI tag, kebab-case: `documents`, `reuse`, `document-types`, `tokens`… */
export function routeGroup (request: FastifyRequest): string {
  const tags = (request.routeOptions.schema as { tags?: string[] } | undefined)?.tags
  return (tags?.[0] ?? 'other').toLowerCase().replace(/\s+/g, '-')
}

/**
 * Rate limits: each agency gets RATE_LIMIT_PER_MINUTE requests a minute on each route
 * (RATE_LIMIT_ROUTES per route group, RATE_LIMIT_AGENCIES per agency), counted in the store's
 * Redis when there is one, so every gateway process shares the count; in this process's memory
 * otherwise. The count runs after authentication (route hooks follow the app's onRequest
 * hooks), so it is the agency's; routes without authentication (the token endpoint) count per
 * client address (an IPv6 address's /64), kept as a keyed hash. Requests refused before this
 * count have a limit of their own (refusals.ts). Past the limit: 429 `rate_limited` with Retry-After.
 * When Redis cannot be reached the request is not limited here: it fails on the store anyway.
 */
async function rateLimitPlugin (app: FastifyInstance): Promise<void> {
  const settings = app.config.rateLimit
  const groups = new Set<string>()
  // before the limits may be turned off: refused requests are limited anyway (refusals.ts), and
  // the published contract is the same whatever the configuration
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { tags?: string[], response?: Record<string, unknown> } | undefined
    if (schema?.tags?.[0]) groups.add(schema.tags[0].toLowerCase().replace(/\s+/g, '-'))
    // the published contract says which routes answer 429
    if (schema?.response && !EXEMPT.test(route.url)) schema.response[429] ??= TOO_MANY_REQUESTS
  })
  if (settings.perMinute === 0) return
  const store = app.stores instanceof RedisStores ? app.stores : undefined
  // `{rl:<who>}`: one hash slot per agency in a cluster, the store's key prefix before it
  const keyOf = (who: string, route: string): string => store ? store.key(`rl:${who}`, route) : `{rl:${who}}:${route}`
  const scaled = (perMinute: number): number => Math.max(1, Math.ceil(perMinute * settings.windowMs / 60_000))

  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: settings.windowMs,
    max: async (request: FastifyRequest) => {
      const perMinute = (request.caller ? settings.agencies[request.caller.code] : undefined) ??
        settings.routes[routeGroup(request)] ?? settings.perMinute
      return scaled(perMinute)
    },
    keyGenerator: (request: FastifyRequest) => {
      const route = `${request.method}:${request.routeOptions.url ?? ''}`
      if (request.caller) return keyOf(request.caller.code, route)
      return keyOf(`ip:${clientAddressKey(app.config.subjectPepper, request.ip)}`, route)
    },
    allowList: (request: FastifyRequest) => EXEMPT.test(request.routeOptions.url ?? ''),
    ...(store ? { redis: store.client, nameSpace: '' } : {}),
    // Redis unreachable: let the request through; it gets its 503 from the store
    skipOnError: true,
    enableDraftSpec: true,
    errorResponseBuilder: (request, context) => {
      app.metrics?.rateLimited('route', routeGroup(request))
      const who = request.caller ? `agency ${request.caller.code}` : 'this client'
      return new ProblemError(429, 'rate_limited', `${who} has used its ${context.max} requests on ${request.method} ${request.routeOptions.url ?? ''} for this window; retry in ${context.after}`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) }
      })
    }
  })

  app.addHook('onReady', async () => {
    const unknown = Object.keys(settings.routes).filter((group) => !groups.has(group))
    if (unknown.length > 0) {
      throw new ConfigError(`invalid configuration: RATE_LIMIT_ROUTES names no route group ${unknown.join(', ')} (groups: ${[...groups].sort().join(', ')})`)
    }
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['store', 'auth'] })
