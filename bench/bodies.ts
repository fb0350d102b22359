import { readFileSync } from 'node:fs'
import type { Options, Request } from 'autocannon'

/**
 * What autocannon sends as bodies: one body for every request, or the lines of `bodiesFile`
 * in turn (each token request needs a fresh client assertion, each indexed document is new).
 */
export function bodyOptions (method: 'GET' | 'POST', body?: string, bodiesFile?: string): Pick<Options, 'body' | 'requests'> {
  if (bodiesFile) {
    const bodies = readFileSync(bodiesFile, 'utf8').split('\n').filter(Boolean)
    let next = 0
    return { requests: [{ method, setupRequest: (request: Request): Request => ({ ...request, body: bodies[next++ % bodies.length] as string }) }] }
  }
  return body !== undefined ? { body } : {}
}
