import { t } from './i18n.js'
import { current } from './session.js'

/** Calls to the gateway's API with the session's token; a refusal becomes an error with the problem's own detail. */

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string | undefined, message: string) {
    super(message)
  }
}

export async function call (path: string, init: RequestInit = {}): Promise<Response> {
  const session = current()
  const headers = new Headers(init.headers)
  if (session) headers.set('authorization', `Bearer ${session.token}`)
  let response: Response
  try {
    // relative: the API is wherever this page is served from, behind a path prefix too
    response = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' })
  } catch {
    throw new ApiError(0, undefined, t('networkError'))
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({})) as { detail?: string, title?: string, code?: string }
    throw new ApiError(response.status, problem.code, problem.detail ?? problem.title ?? `${response.status}`)
  }
  return response
}

export async function getJson<T> (path: string): Promise<T> {
  return await (await call(path)).json() as T
}

export async function sendJson<T> (method: 'POST' | 'PUT', path: string, body: unknown): Promise<T> {
  return await (await call(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as T
}
