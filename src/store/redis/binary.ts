/**
 * Compact forms of what the Redis modules store: MessagePack (msgpackr) tuples instead of JSON
 * objects, and identifiers and hashes as bytes instead of text. A ULID is 16 bytes instead of
 * 26 characters (big-endian, so byte order is time order, as the text's is); a SHA-256 in hex 32
 * bytes instead of 64. Values that are not of that form (a test's short hash) are kept as text,
 * so decoding gives back exactly what was encoded.
 */
import { Packr } from 'msgpackr'

/** plain MessagePack: no record extension, so any MessagePack reader can read what is stored */
const packr = new Packr({ useRecords: false, moreTypes: false })

export function pack (value: unknown): Buffer {
  return packr.pack(value)
}

export function unpack<T = unknown> (bytes: Buffer): T {
  return packr.unpack(bytes) as T
}

/** what a stored value starts with when the earlier layout wrote it as JSON (`{`); a tuple never does */
export function isJson (bytes: Buffer): boolean {
  return bytes[0] === 0x7b
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const CROCKFORD_VALUE = new Map([...CROCKFORD].map((c, i) => [c, i]))
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

/** a ULID as its 16 bytes; anything else as it is */
export function compactId (id: string): Buffer | string {
  if (!ULID.test(id)) return id
  // 26 characters of 5 bits are 130 bits, the first two always 0: the first character gives 3
  const bytes = Buffer.alloc(16)
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < 26; i++) {
    acc = (acc << 5) | (CROCKFORD_VALUE.get(id[i] as string) as number)
    bits += i === 0 ? 3 : 5
    if (bits >= 8) {
      bits -= 8
      bytes[o++] = (acc >>> bits) & 0xff
      acc &= (1 << bits) - 1
    }
  }
  return bytes
}

export function expandId (id: Buffer | string): string {
  if (typeof id === 'string') return id
  let text = ''
  let acc = 0
  let bits = 0
  for (let i = 15; i >= 0; i--) {
    acc |= (id[i] as number) << bits
    bits += 8
    while (bits >= 5) {
      text = (CROCKFORD[acc & 31] as string) + text
      acc >>>= 5
      bits -= 5
    }
  }
  return (CROCKFORD[acc] as string) + text
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** a SHA-256 in lower-case hex as its 32 bytes; anything else as it is */
export function compactHash (hash: string): Buffer | string {
  return SHA256_HEX.test(hash) ? Buffer.from(hash, 'hex') : hash
}

export function expandHash (hash: Buffer | string): string {
  return typeof hash === 'string' ? hash : hash.toString('hex')
}

/** an instant as epoch milliseconds when its ISO text is exactly what `toISOString` gives back; otherwise the text */
export function compactInstant (iso: string): number | string {
  const ms = Date.parse(iso)
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? ms : iso
}

export function expandInstant (instant: number | string): string {
  return typeof instant === 'number' ? new Date(instant).toISOString() : instant
}
