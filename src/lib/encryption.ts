import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { jwksKeys } from './jwks.js'
import { StatedError } from './error-description.js'

/**
 * Encryption at rest: AES-256-GCM under keys from configuration (ENCRYPTION_KEYS or
 * ENCRYPTION_KEYS_FILE). The first key encrypts, every key decrypts: a rotation puts a new key
 * first, re-encrypts what is stored (`reuse-gateway encryption rotate`), then drops the old one.
 * Each ciphertext names the key it was made with, so old and new values live side by side.
 */

/** a key id: short, printable, no `:` (it sits inside the value envelope) */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/
const KEY_BYTES = 32

export interface EncryptionKey {
  id: string
  key: Buffer
}

/**
 * The configured keys. The key material never leaves this object: logging it, printing it or
 * serializing it shows the key ids only.
 */
export class Keyring {
  readonly #keys: Map<string, Buffer>
  /** the key new values are encrypted with */
  readonly activeId: string
  readonly ids: string[]

  constructor (keys: EncryptionKey[]) {
    if (keys.length === 0) throw new StatedError('no encryption key')
    this.#keys = new Map()
    for (const { id, key } of keys) {
      if (!KEY_ID.test(id)) throw new StatedError(`key id ${JSON.stringify(id)} must be 1 to 64 letters, digits, '.', '_' or '-'`)
      if (key.length !== KEY_BYTES) throw new StatedError(`key ${id} is ${key.length} bytes; AES-256 needs ${KEY_BYTES}`)
      if (this.#keys.has(id)) throw new StatedError(`key id ${id} appears twice`)
      this.#keys.set(id, Buffer.from(key))
    }
    this.ids = keys.map((k) => k.id)
    this.activeId = this.ids[0] as string
  }

  has (id: string): boolean { return this.#keys.has(id) }

  /** the key `id`; UnknownKeyError when it is not configured */
  key (id: string, what: string): Buffer {
    const key = this.#keys.get(id)
    if (!key) throw new UnknownKeyError(id, what)
    return key
  }

  get activeKey (): Buffer { return this.#keys.get(this.activeId) as Buffer }

  toJSON (): { activeKeyId: string, keyIds: string[] } {
    return { activeKeyId: this.activeId, keyIds: this.ids }
  }

  [inspect.custom] (): string {
    return `Keyring(${this.ids.join(', ')})`
  }
}

/** A stored value names a key that is not configured: an operator error (a key dropped too early). */
export class UnknownKeyError extends StatedError {
  constructor (readonly keyId: string, what: string) {
    super(`${what} is encrypted with key "${keyId}", which is not configured (ENCRYPTION_KEYS / ENCRYPTION_KEYS_FILE); put the key back, then re-encrypt with: reuse-gateway encryption rotate`)
    this.name = 'UnknownKeyError'
  }
}

/** A ciphertext does not authenticate: altered, truncated, moved from elsewhere, or corrupt. */
export class DecryptionError extends StatedError {
  constructor (what: string) {
    super(`${what} does not decrypt: its ciphertext was altered, moved from another place, or is corrupt`)
    this.name = 'DecryptionError'
  }
}

function decodeKey (text: string, id: string, source: string): Buffer {
  // strict: Buffer.from(…, 'base64') skips what it does not understand
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new StatedError(`${source}: key ${id} is not base64`)
  const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64')
  if (key.length !== KEY_BYTES) throw new StatedError(`${source}: key ${id} is ${key.length} bytes; AES-256 needs ${KEY_BYTES} (create one with: reuse-gateway encryption generate-key)`)
  return key
}

/** `id:base64key,id:base64key`: the ENCRYPTION_KEYS form. */
export function parseKeyList (text: string, source = 'ENCRYPTION_KEYS'): EncryptionKey[] {
  const keys = text.split(',').map((item, i) => {
    const at = item.indexOf(':')
    const id = item.slice(0, at).trim()
    if (at < 0 || !KEY_ID.test(id)) throw new StatedError(`${source}: item ${i + 1} must be id:base64key, with an id of letters, digits, '.', '_' or '-'`)
    return { id, key: decodeKey(item.slice(at + 1).trim(), id, source) }
  })
  return checked(keys, source)
}

/**
 * A JWKS of symmetric keys (`{"keys": [{"kty": "oct", "kid": …, "k": <base64url>}]}`): the
 * ENCRYPTION_KEYS_FILE form, the format of SIGNING_KEYS_FILE for secret keys.
 */
export function parseKeyFile (text: string, source: string): EncryptionKey[] {
  return checked(jwksKeys(text, source, '{"keys": [{"kty": "oct", "kid": …, "k": …}]} with at least one key').map((jwk, i) => {
    if (jwk?.kty !== 'oct' || typeof jwk.kid !== 'string' || !KEY_ID.test(jwk.kid) || typeof jwk.k !== 'string') {
      throw new StatedError(`${source}: key ${i + 1} needs kty "oct", a kid of letters, digits, '.', '_' or '-', and k`)
    }
    return { id: jwk.kid, key: decodeKey(jwk.k, jwk.kid, source) }
  }), source)
}

function checked (keys: EncryptionKey[], source: string): EncryptionKey[] {
  if (keys.length === 0) throw new StatedError(`${source} has no key`)
  const seen = new Set<string>()
  for (const { id } of keys) {
    if (seen.has(id)) throw new StatedError(`${source}: key id ${id} appears twice`)
    seen.add(id)
  }
  return keys
}

/** A fresh key and an id made from the date, for ENCRYPTION_KEYS or a key file. */
export function generateKey (now = new Date()): EncryptionKey {
  return { id: `k${now.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(3).toString('hex')}`, key: randomBytes(KEY_BYTES) }
}

export function keyJwk (key: EncryptionKey): { kty: 'oct', kid: string, alg: 'A256GCM', k: string } {
  return { kty: 'oct', kid: key.id, alg: 'A256GCM', k: key.key.toString('base64url') }
}

// ---- values: `enc:v1:<kid>:<iv>:<ciphertext‖tag>` (base64url parts) ----

const ENVELOPE = /^enc:v1:([A-Za-z0-9._-]{1,64}):([A-Za-z0-9_-]{16}):([A-Za-z0-9_-]{22,})$/

/** whether a stored string is a value envelope (rather than a value kept in clear) */
export function isSealed (value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('enc:v1:')
}

/** the key id a value envelope names */
export function sealedKeyId (envelope: string): string | undefined {
  return ENVELOPE.exec(envelope)?.[1]
}

/**
 * Encrypts `plaintext` with the active key and a fresh random 96-bit IV. `aad` says where the
 * value belongs: it must be given again to decrypt, so a ciphertext copied to another place
 * does not decrypt there. The key id is authenticated too.
 */
export function seal (keyring: Keyring, plaintext: string, aad: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyring.activeKey, iv)
  cipher.setAAD(Buffer.from(`${keyring.activeId}\n${aad}`))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return `enc:v1:${keyring.activeId}:${iv.toString('base64url')}:${body.toString('base64url')}`
}

/** Decrypts a value envelope made for `aad`; `what` names the value in errors (never its content). */
export function open (keyring: Keyring | undefined, envelope: string, aad: string, what: string): string {
  const match = ENVELOPE.exec(envelope)
  if (!match) throw new DecryptionError(what)
  const [, kid, iv, body] = match as unknown as [string, string, string, string]
  if (!keyring) throw new UnknownKeyError(kid, what)
  const raw = Buffer.from(body, 'base64url')
  if (raw.length < 16) throw new DecryptionError(what)
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyring.key(kid, what), Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(`${kid}\n${aad}`))
    decipher.setAuthTag(raw.subarray(raw.length - 16))
    return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8')
  } catch (err) {
    if (err instanceof UnknownKeyError) throw err
    throw new DecryptionError(what)
  }
}

// ---- files: a header, then segments each sealed on its own ----
//
// header: MAGIC (8 bytes) ‖ key id length (1) ‖ key id ‖ salt (32)
// then the plaintext in segments of SEGMENT bytes (the last one shorter, possibly empty), each
// AES-256-GCM under a key derived for this file (HKDF-SHA-256 of the configured key and the
// salt), with a nonce made of the segment's number and a last-segment flag, and the header as
// additional data. A file key is used for one file only, so counter nonces never repeat; a
// segment moved, dropped, reordered or cut off does not authenticate; a file is streamed
// without ever being whole in memory.

export const BLOB_MAGIC = Buffer.from([0x00, 0x52, 0x47, 0x45, 0x4e, 0x43, 0x00, 0x01])
export const SEGMENT = 64 * 1024
const TAG = 16

export interface BlobHeader {
  keyId: string
  salt: Buffer
  /** the header's bytes (the additional data of every segment) */
  bytes: Buffer
}

export function newBlobHeader (keyring: Keyring): BlobHeader {
  const id = Buffer.from(keyring.activeId, 'latin1')
  const salt = randomBytes(32)
  return { keyId: keyring.activeId, salt, bytes: Buffer.concat([BLOB_MAGIC, Buffer.from([id.length]), id, salt]) }
}

/**
 * The header at the start of `head` (at least BLOB_MAGIC's length of it), or undefined for a
 * file written in clear; `complete` false when more bytes are needed to read it.
 */
export function readBlobHeader (head: Buffer): { header?: BlobHeader, complete: boolean } {
  if (head.length < BLOB_MAGIC.length || !head.subarray(0, BLOB_MAGIC.length).equals(BLOB_MAGIC)) return { complete: true }
  const idLength = head[BLOB_MAGIC.length]
  if (idLength === undefined) return { complete: false }
  const end = BLOB_MAGIC.length + 1 + idLength + 32
  if (head.length < end) return { complete: false }
  const keyId = head.subarray(BLOB_MAGIC.length + 1, BLOB_MAGIC.length + 1 + idLength).toString('latin1')
  return { header: { keyId, salt: head.subarray(end - 32, end), bytes: head.subarray(0, end) }, complete: true }
}

/** the longest a header can be */
export const BLOB_HEADER_MAX = BLOB_MAGIC.length + 1 + 255 + 32

function fileKey (keyring: Keyring | undefined, header: BlobHeader, what: string): Buffer {
  if (!keyring) throw new UnknownKeyError(header.keyId, what)
  return Buffer.from(hkdfSync('sha256', keyring.key(header.keyId, what), header.salt, 'reuse-gateway blob v1', 32))
}

function nonce (index: number, last: boolean): Buffer {
  const out = Buffer.alloc(12)
  out.writeUIntBE(index, 5, 6)
  out[11] = last ? 1 : 0
  return out
}

/** Seals a file's segments one after the other; `segment` is called with whole segments, then once with `last`. */
export class BlobSealer {
  private readonly key: Buffer
  private index = 0

  constructor (keyring: Keyring, readonly header: BlobHeader = newBlobHeader(keyring)) {
    this.key = fileKey(keyring, header, 'a new file')
  }

  segment (plaintext: Buffer, last: boolean): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce(this.index++, last))
    cipher.setAAD(this.header.bytes)
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  }
}

/** Opens a file's segments in order. */
export class BlobOpener {
  private readonly key: Buffer
  private index = 0

  constructor (keyring: Keyring | undefined, readonly header: BlobHeader, private readonly what: string) {
    this.key = fileKey(keyring, header, what)
  }

  segment (sealed: Buffer, last: boolean): Buffer {
    if (sealed.length < TAG) throw new DecryptionError(this.what)
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce(this.index++, last))
      decipher.setAAD(this.header.bytes)
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG))
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG)), decipher.final()])
    } catch {
      throw new DecryptionError(this.what)
    }
  }
}

/** how many sealed segments `bodyBytes` of segments make, and the plaintext size they hold */
export function sealedLayout (bodyBytes: number): { segments: number, plaintextBytes: number } | undefined {
  if (bodyBytes < TAG) return undefined
  const segments = Math.ceil(bodyBytes / (SEGMENT + TAG))
  return { segments, plaintextBytes: bodyBytes - segments * TAG }
}

/** the sealed size of one segment of `plaintextBytes` */
export const sealedSegmentBytes = (plaintextBytes: number): number => plaintextBytes + TAG
