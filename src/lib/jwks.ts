import { StatedError } from './error-description.js'

/**
 * The `keys` of a JWKS document read from a file or a variable: at least one, or an error that
 * names the source and the shape expected (never the content, which holds secrets).
 */
export function jwksKeys (text: string, source: string, shape: string): Array<Record<string, unknown>> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new StatedError(`${source} is not JSON`)
  }
  const keys = (parsed as { keys?: unknown }).keys
  if (!Array.isArray(keys) || keys.length === 0) throw new StatedError(`${source} must be a JWKS: ${shape}`)
  return keys
}
