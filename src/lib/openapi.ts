/** Pieces of route schemas that many routes share, and what every operation declares. */

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is malformed or fails validation',
  401: 'No valid access token (the problem `code` says which check failed)',
  403: 'The calling agency lacks the scope or the grant for this',
  404: 'Not found',
  409: 'Conflicts with the current state',
  408: 'The request did not arrive within REQUEST_TIMEOUT_MS (`request_timeout`); the connection is closed',
  413: 'The body is over the limit',
  414: 'A path parameter is longer than any this API accepts (`path_parameter_too_long`)',
  415: 'Unsupported content type',
  417: 'An `Expect` header other than `100-continue` (`expectation_failed`)',
  422: 'Well-formed but not acceptable',
  429: 'Too many requests; retry after Retry-After',
  431: 'The request line and header section are larger than the gateway accepts (`headers_too_large`); the connection is closed',
  500: 'The gateway could not complete the request (`internal_error`); nothing about the cause is said but the request id, under which it is logged',
  503: 'The gateway cannot serve right now; retry after Retry-After'
}

/** Error responses as problem+json, for the response section of a route schema. */
export function problemResponses (...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {}
  for (const status of statuses) {
    out[status] = {
      description: PROBLEM_DESCRIPTIONS[status] ?? 'Error',
      content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } }
    }
  }
  return out
}

/** The security requirement of a route: a gateway access token holding `scopes` (none: any agency). */
export function requires (...scopes: string[]): Array<Record<string, string[]>> {
  return [{ accessToken: scopes }]
}

/** The security requirement of a route anyone may call: no access token. */
export const PUBLIC: Array<Record<string, string[]>> = []

/** Methods whose requests carry a body that Fastify parses (and measures against BODY_LIMIT_BYTES). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH'])

interface RouteLike { method: string | string[], url: string, schema?: unknown }

/** what a 400 says on an operation whose own input cannot be invalid: only HTTP itself can be */
const UNPARSABLE = 'The request could not be parsed as HTTP (`bad_request`) or its URL is not valid (`bad_url`)'

/**
 * Adds to a route's response schema the statuses any route may answer whatever its handler does,
 * so that no route forgets one: 400 (a request line or URL that cannot be parsed), 408 (a request
 * that does not arrive in time), 417 (an expectation other than 100-continue) and 431 (the header
 * section), all before any route runs, and 500, everywhere; 413 and 415 where a body is parsed;
 * 414 where a path parameter can be too long. 429 and 503 are added by the plugins that answer
 * them (rate-limit.ts, load-shedding.ts).
 */
export function declareCommonResponses (route: RouteLike): void {
  const schema = route.schema as { response?: Record<string, unknown>, hide?: boolean } | undefined
  if (!schema?.response || schema.hide) return
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  schema.response[400] ??= { ...(problemResponses(400)[400] as object), description: UNPARSABLE }
  const statuses = [408, 417, 431, 500]
  if (methods.some((m) => BODY_METHODS.has(m))) statuses.push(413, 415)
  if (route.url.includes(':')) statuses.push(414)
  for (const status of statuses) schema.response[status] ??= problemResponses(status)[status]
}

/** Response headers every operation may carry, published once under components.headers. */
export const COMMON_HEADERS = {
  'X-Request-Id': {
    description: 'The request id: the caller\'s own X-Request-Id when it was 8–128 characters of `A-Za-z0-9._:-`, a new UUID otherwise. Also the problem body\'s `requestId`, and on every log line the request wrote.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' }
  },
  'Retry-After': {
    description: 'Seconds to wait before retrying (RFC 9110 §10.2.3).',
    schema: { type: 'integer', minimum: 1 }
  },
  'WWW-Authenticate': {
    description: 'The Bearer challenge (RFC 6750 §3): `Bearer realm="reuse-gateway"`, with `error="invalid_token"` when a token was sent and refused, or `error="insufficient_scope", scope="…"` when it lacks a scope (on that 403 only).',
    schema: { type: 'string' }
  },
  'RateLimit-Limit': {
    description: 'Requests this caller may make on this route in the window (IETF draft RateLimit header fields); sent on answers counted against the rate limit.',
    schema: { type: 'integer', minimum: 0 }
  },
  'RateLimit-Remaining': {
    description: 'Requests left in the window.',
    schema: { type: 'integer', minimum: 0 }
  },
  'RateLimit-Reset': {
    description: 'Seconds until the window ends.',
    schema: { type: 'integer', minimum: 0 }
  }
} as const

const headerRef = (name: keyof typeof COMMON_HEADERS): { $ref: string } => ({ $ref: `#/components/headers/${name}` })

interface OpenApiResponse { headers?: Record<string, unknown>, [key: string]: unknown }
interface OpenApiOperation { security?: unknown[], responses?: Record<string, OpenApiResponse>, [key: string]: unknown }
interface OpenApiDocument { paths?: Record<string, Record<string, OpenApiOperation>>, components?: Record<string, unknown>, [key: string]: unknown }

/** answers given before the rate limit counts the request (or on the bare socket) */
const UNCOUNTED = new Set(['401', '408', '417', '431'])

const OPERATION_KEYS = new Set(['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'])

/**
 * Declares on every response of the finished document the headers the gateway's cross-cutting
 * plugins send: X-Request-Id on all (http-frame.ts; errors.ts on answers written on the socket),
 * WWW-Authenticate on a protected operation's 401 and 403 (auth.ts), Retry-After on every 429
 * and 503, and the RateLimit-* fields on the answers of an operation that can be rate-limited
 * (the ones that declare 429) that the limit counts (a 401 is answered before it).
 */
export function declareCommonHeaders (document: OpenApiDocument): OpenApiDocument {
  document.components = { ...document.components, headers: COMMON_HEADERS }
  for (const operations of Object.values(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!OPERATION_KEYS.has(method)) continue
      const responses = operation.responses ?? {}
      const protectedOperation = (operation.security?.length ?? 0) > 0
      const limited = responses['429'] !== undefined
      for (const [status, response] of Object.entries(responses)) {
        const own = response.headers ?? {}
        const added: Record<string, unknown> = {}
        added['X-Request-Id'] = headerRef('X-Request-Id')
        if (protectedOperation && (status === '401' || status === '403')) added['WWW-Authenticate'] = headerRef('WWW-Authenticate')
        if (status === '429' || status === '503') added['Retry-After'] = headerRef('Retry-After')
        if (limited && !UNCOUNTED.has(status)) {
          for (const name of ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'] as const) added[name] = headerRef(name)
        }
        response.headers = { ...added, ...own }
      }
    }
  }
  return document
}
