/**
 * Ids and hashes as bytes, for compact stored records and index members. A ULID (26 characters
 * of Crockford base32, 128 bits) is 16 bytes, big-endian, so byte order is id order = time
 * order (ZRANGEBYLEX and memcmp sort them as the strings sort); a SHA-256 in hex is 32 bytes.
 * Each conversion is exact both ways for the canonical form only (upper-case ULID, lower-case
 * hex): callers check with isUlid / isHex first and keep anything else as it is.
 */

import { Packr } from 'msgpackr'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < CROCKFORD.length; i++) VALUE[CROCKFORD.charCodeAt(i)] = i

const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/
const ULID_PREFIX = /^(?:[0-7][0-9A-HJKMNP-TV-Z]{0,25})?$/
const HEX = /^(?:[0-9a-f]{2})*$/

/** a canonical ULID: 26 upper-case Crockford characters, the first 0–7 (128 bits) */
export function isUlid (value: unknown): value is string {
  return typeof value === 'string' && ULID.test(value)
}

/** the first characters of a canonical ULID (its 10-character time part, a whole id, or any length between) */
export function isUlidPrefix (value: string): boolean {
  return ULID_PREFIX.test(value)
}

/** lower-case hex of whole bytes, optionally of exactly `bytes` bytes */
export function isHex (value: unknown, bytes?: number): value is string {
  return typeof value === 'string' && (bytes === undefined || value.length === 2 * bytes) && HEX.test(value)
}

/**
 * A ULID, or the first characters of one, as big-endian bytes; a prefix's last byte is padded
 * with zero bits. For every id X and prefix P: X ≥ P as strings exactly when bytes(X) ≥ bytes(P),
 * and likewise for <, so a prefix is a range bound in either form.
 */
export function ulidToBytes (ulid: string): Buffer {
  if (!isUlidPrefix(ulid)) throw new TypeError('not a ULID')
  const out = Buffer.allocUnsafe(Math.ceil((3 + 5 * (ulid.length - 1)) / 8))
  let at = 0
  let acc = 0
  let bits = 0
  for (let i = 0; i < ulid.length; i++) {
    // the first character carries 3 bits (a ULID is 130 bits of text whose top 2 are zero)
    acc = (acc << (i === 0 ? 3 : 5)) | (VALUE[ulid.charCodeAt(i)] as number)
    bits += i === 0 ? 3 : 5
    if (bits >= 8) {
      bits -= 8
      out[at++] = (acc >> bits) & 0xff
      acc &= (1 << bits) - 1
    }
  }
  if (bits > 0) out[at++] = (acc << (8 - bits)) & 0xff
  return out
}

/** 16 bytes back to the ULID they encode */
export function bytesToUlid (bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new TypeError('a ULID is 16 bytes')
  let out = ''
  // two zero bits first: 2 + 128 = 130 = 26 characters of 5 bits
  let acc = 0
  let bits = 2
  for (const byte of bytes) {
    acc = (acc << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += CROCKFORD[(acc >> bits) & 31] as string
    }
    acc &= (1 << bits) - 1
  }
  return out
}

/** lower-case hex → bytes (check with isHex first: anything else does not come back the same) */
export function hexToBytes (hex: string): Buffer {
  if (!isHex(hex)) throw new TypeError('not lower-case hex')
  return Buffer.from(hex, 'hex')
}

export function bytesToHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/*
 * Compact forms of stored values: MessagePack (msgpackr) tuples instead of JSON objects, ids and
 * hashes as bytes where they have the canonical form, anything else kept as it is (a test's short
 * hash), so decoding gives back exactly what was encoded.
 */

/** plain MessagePack: no record extension, so any MessagePack reader can read what is stored */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true })

export function pack (value: unknown): Buffer {
  return packr.pack(value)
}

export function unpack<T = unknown> (bytes: Buffer): T {
  return packr.unpack(bytes) as T
}

/**
 * A value JSON carries as it is (strings, finite numbers, booleans, null, arrays and plain
 * objects of those): MessagePack then gives back exactly what JSON.parse(JSON.stringify()) would.
 */
export function jsonPlain (value: unknown, depth = 0): boolean {
  if (depth > 32) return false
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (Array.isArray(value)) return value.every((item) => jsonPlain(item, depth + 1))
  if (typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return false
    if (!jsonPlain((value as Record<string, unknown>)[key], depth + 1)) return false
  }
  return true
}

/** whether a stored value is the earlier layout's JSON (`{`): a MessagePack tuple never starts so */
export function isJson (bytes: Buffer): boolean {
  return bytes[0] === 0x7b
}

/** a ULID as its 16 bytes; anything else as it is */
export function compactId (id: string): Buffer | string {
  return isUlid(id) ? ulidToBytes(id) : id
}

export function expandId (id: Buffer | string): string {
  return typeof id === 'string' ? id : bytesToUlid(id)
}

/** a SHA-256 in lower-case hex as its 32 bytes; anything else as it is */
export function compactHash (hash: string): Buffer | string {
  return isHex(hash, 32) ? hexToBytes(hash) : hash
}

export function expandHash (hash: Buffer | string): string {
  return typeof hash === 'string' ? hash : bytesToHex(hash)
}

/** an instant as epoch milliseconds when its ISO text is exactly what `toISOString` gives back; otherwise the text */
export function compactInstant (iso: string): number | string {
  const ms = Date.parse(iso)
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? ms : iso
}

export function expandInstant (instant: number | string): string {
  return typeof instant === 'number' ? new Date(instant).toISOString() : instant
}
