import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'

// canonicalize is CommonJS; NodeNext sees its default export as the module object
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

export function sha256Hex (data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** SHA-256 (hex) of the RFC 8785 canonical JSON of a value: the same value always hashes the same. */
export function canonicalDigest (value: unknown): string {
  return sha256Hex(canonicalize(value) as string)
}
