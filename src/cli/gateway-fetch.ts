import { StatedError } from '../lib/error-description.js'

/**
 * `fetch` for the command-line tool: a server it cannot reach is said in words — which server,
 * why (from the network error's code), and what to check — instead of fetch's own "fetch failed".
 * Only the origin is named: a path or query may carry what a log should not.
 */
export async function fetchFrom (url: string, init?: RequestInit, option = '--gateway'): Promise<Response> {
  let origin: string
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError('not http')
    origin = parsed.origin
  } catch {
    throw new StatedError(`${option} must be an http(s) URL, e.g. http://127.0.0.1:3000`)
  }
  try {
    return await fetch(url, init)
  } catch (err) {
    throw new StatedError(unreachable(origin, err, option))
  }
}

/** network error codes (Node, undici, OpenSSL) → what they mean to someone at a terminal */
const CAUSES: Array<[RegExp, string]> = [
  [/^ECONNREFUSED$/, 'connection refused'],
  [/^(ENOTFOUND|EAI_NONAME|EAI_NODATA)$/, 'DNS name not found'],
  [/^EAI_AGAIN$/, 'DNS lookup failed (no answer from the name server)'],
  [/^(ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT)$/, 'timed out'],
  [/^(ECONNRESET|EPIPE|UND_ERR_SOCKET)$/, 'connection closed by the other side'],
  [/^(EHOSTUNREACH|ENETUNREACH)$/, 'host unreachable'],
  [/^(EPROTO|ERR_SSL_.*)$/, 'TLS error (is it an http:// server named with https://?)'],
  [/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/, 'TLS error: the server\'s certificate is not trusted for that name']
]

function unreachable (origin: string, err: unknown, option: string): string {
  const cause = (err as { cause?: { code?: unknown, message?: unknown, errors?: Array<{ code?: unknown }> } }).cause
  // a name with several addresses fails as an AggregateError, one error per address tried
  const raw = cause?.code ?? cause?.errors?.[0]?.code ?? ((err as { name?: unknown }).name === 'TimeoutError' ? 'ETIMEDOUT' : undefined)
  const code = typeof raw === 'string' ? raw : undefined
  const meaning = code === undefined ? undefined : CAUSES.find(([pattern]) => pattern.test(code))?.[1]
  const why = code === undefined
    // fetch refuses some ports outright (those browsers block), saying only "bad port"
    ? cause?.message === 'bad port' ? 'fetch refuses to connect to that port (one browsers block)' : 'the request failed before any answer'
    : meaning ? `${meaning} (${code})` : code
  const check = option === '--gateway'
    ? `is the gateway running there? Check ${option} (default http://127.0.0.1:3000)`
    : `check ${option}`
  return `cannot reach ${origin}: ${why} — ${check}`
}
