/**
 * A request's path as logs and traces show it: without its query string, whatever a client put
 * in it, and without a download link's token, a credential in the path.
 */
export function redactedPath (url: string): string {
  return (url.split('?')[0] ?? '').replace(/^(\/v1\/files\/)[^/]+/, '$1[redacted]')
}
