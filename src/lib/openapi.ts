/** Pieces of route schemas that many routes share. */

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is malformed or fails validation',
  401: 'No valid access token (the problem `code` says which check failed)',
  403: 'The calling agency lacks the scope or the grant for this',
  404: 'Not found',
  409: 'Conflicts with the current state',
  413: 'The body is over the limit',
  415: 'Unsupported content type',
  422: 'Well-formed but not acceptable',
  429: 'Too many requests; retry after Retry-After',
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
