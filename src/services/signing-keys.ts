import { readFile, stat, writeFile, rename } from 'node:fs/promises'
import { createPrivateKey, sign as cryptoSign } from 'node:crypto'
import type { JsonWebKey, KeyObject as NodeKeyObject } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose'
import type { JWK, JWTPayload, KeyObject } from 'jose'
import { jwksKeys } from '../lib/jwks.js'
import type { SigningKeyStore } from '../store/index.js'
import { StoreUnavailableError } from '../store/errors.js'
import { StatedError } from '../lib/error-description.js'
import { inSpan, spansEnabled } from '../lib/trace-context.js'

/**
 * The gateway's own signing keys. One format everywhere: a list of private JWKs, each with
 * `kid` (its RFC 7638 thumbprint), `alg`, `created_at` and, once replaced, `retired_at`.
 * The first key that is not retired signs; every key still inside its retention is published
 * in the JWKS so that whatever it signed stays verifiable. Kept either in a file (production:
 * `SIGNING_KEYS_FILE`, a mounted secret) or, outside production, in the store, generated once.
 * A retired key keeps verifying attestations, receipts and checkpoints, but what it may still
 * authorize is the token service's rule (tokens.ts): keyFor tells when it was retired.
 */
export type GatewayAlg = 'EdDSA' | 'ES256'
export const GATEWAY_ALGORITHMS: GatewayAlg[] = ['EdDSA', 'ES256']

export type StoredKey = JWK & { kid: string, alg: GatewayAlg, created_at: string, retired_at?: string }

/**
 * How often a process looks for a rotation made elsewhere: for this long after a rotation, a
 * process that has not seen it yet may still sign with the key just retired.
 */
export const SIGNING_KEYS_REFRESH_MS = 10_000

/** A published key, as a verifier needs it: the key, and when it stopped signing (ms), if it did. */
export interface VerificationKey {
  key: KeyObject
  retiredAt?: number
}

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'created_at', 'retired_at'])

export function publicJwk (key: StoredKey): JWK {
  const out: JWK = {}
  for (const [name, value] of Object.entries(key)) if (!PRIVATE_MEMBERS.has(name)) (out as Record<string, unknown>)[name] = value
  out.use = 'sig'
  return out
}

export async function generateGatewayKey (alg: GatewayAlg, now = new Date()): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) })
  const jwk = await exportJWK(privateKey)
  const kid = await calculateJwkThumbprint(jwk)
  return { ...jwk, kid, alg, created_at: now.toISOString() }
}

/**
 * A rotation: the new key signs from now on, the one it replaces is marked retired and stays
 * published for `retentionMs` (attestations, receipts and checkpoints it signed remain
 * verifiable; access tokens only until those it signed have expired); keys retired longer than
 * that are dropped.
 */
export async function rotateKeys (keys: StoredKey[], alg: GatewayAlg, retentionMs: number, now = new Date()): Promise<StoredKey[]> {
  const fresh = await generateGatewayKey(alg, now)
  const kept = keys
    .map((key) => key.retired_at ? key : { ...key, retired_at: now.toISOString() })
    .filter((key) => now.getTime() - Date.parse(key.retired_at as string) < retentionMs)
  return [fresh, ...kept]
}

export function parseKeyFile (text: string, source: string): StoredKey[] {
  return jwksKeys(text, source, '{"keys": [...]} with at least one private key').map((key, i) => {
    if (typeof key.kid !== 'string' || !GATEWAY_ALGORITHMS.includes(key.alg as GatewayAlg) || typeof key.d !== 'string') {
      throw new StatedError(`${source}: key ${i} needs kid, alg (EdDSA or ES256) and its private part`)
    }
    return { created_at: new Date(0).toISOString(), ...key } as StoredKey
  })
}

export async function writeKeyFile (path: string, keys: StoredKey[]): Promise<void> {
  // write then rename, so a reader never sees half a key file
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, path)
}

export type KeySource =
  | { kind: 'file', path: string }
  | { kind: 'store', keys: SigningKeyStore, alg: GatewayAlg }

interface Loaded {
  stored: StoredKey[]
  active: { kid: string, alg: GatewayAlg, signer: NodeKeyObject }
  verifying: Map<string, VerificationKey>
  published: JWK[]
}

export interface SigningKeysOptions {
  /** how long a retired key stays published */
  retentionMs: number
  /** how often to look for a rotation made by another process or a new key file */
  refreshMs?: number
}

export class SigningKeys {
  private loaded: Loaded | undefined
  private timer: NodeJS.Timeout | undefined
  private pendingRefresh: Promise<void> | undefined
  private fileMtime = 0

  /** Not read yet: `open` reads them (the store may not answer at start; the caller retries). */
  constructor (private readonly source: KeySource, private readonly options: SigningKeysOptions) {}

  /** Loads the keys; in store mode, generates the first key if there is none yet. */
  static async load (source: KeySource, options: SigningKeysOptions): Promise<SigningKeys> {
    const keys = new SigningKeys(source, options)
    await keys.open()
    return keys
  }

  /** Reads the keys (in store mode generating the first one), then looks for rotations every refreshMs. */
  async open (): Promise<void> {
    await this.refresh(true)
    if (this.options.refreshMs && !this.timer) {
      this.timer = setInterval(() => { this.refresh(false).catch(() => {}) }, this.options.refreshMs)
      this.timer.unref()
    }
  }

  stop (): void {
    if (this.timer) clearInterval(this.timer)
  }

  /** the keys as last read; before the first read nothing can be signed or verified */
  private get current (): Loaded {
    if (!this.loaded) throw new StoreUnavailableError('the gateway\'s signing keys have not been read yet: the store has not answered')
    return this.loaded
  }

  get activeKid (): string { return this.current.active.kid }
  get activeAlg (): GatewayAlg { return this.current.active.alg }

  /** the JWKS document: public parts of every key still inside its retention */
  jwks (): { keys: JWK[] } {
    return { keys: this.current.published }
  }

  /** The verification key for `kid`; an unknown kid triggers one re-read (a rotation elsewhere). */
  async keyFor (kid: string | undefined): Promise<VerificationKey | undefined> {
    if (kid === undefined) return undefined
    const known = this.loaded?.verifying.get(kid)
    if (known) return known
    // Another process may have rotated a moment ago. Concurrent misses share one re-read, so a
    // flood of made-up kids costs one store read at a time, like any other request.
    this.pendingRefresh ??= this.refresh(false).finally(() => { this.pendingRefresh = undefined })
    await this.pendingRefresh
    return this.current.verifying.get(kid)
  }

  /**
   * A compact JWS of the claims. Signed with Node's own crypto.sign (Ed25519, or ECDSA P-256
   * with the raw r‖s encoding JWS uses), synchronously: the hot paths sign several times a
   * request, and WebCrypto's asynchronous round trip costs more than the signature itself.
   */
  async sign (claims: JWTPayload, typ: string): Promise<string> {
    return this.jws(Buffer.from(JSON.stringify(claims)), typ)
  }

  private jws (payload: Buffer, typ: string, detached = false): string {
    // a span per signature (attestation, receipt, checkpoint, webhook body, token), when traced;
    // untraced, nothing is built for one
    if (!spansEnabled()) return this.signed(payload, typ, detached)
    const { kid, alg } = this.current.active
    return inSpan(`sign ${typ}`, { 'reuse_gateway.jws.typ': typ, 'reuse_gateway.jws.kid': kid, 'reuse_gateway.jws.alg': alg }, () => this.signed(payload, typ, detached), { onlyInTrace: true })
  }

  private signed (payload: Buffer, typ: string, detached: boolean): string {
    const { kid, alg, signer } = this.current.active
    const header = Buffer.from(JSON.stringify({ alg, kid, typ })).toString('base64url')
    const body = payload.toString('base64url')
    const input = Buffer.from(`${header}.${body}`)
    const signature = alg === 'EdDSA'
      ? cryptoSign(null, input, signer)
      : cryptoSign('sha256', input, { key: signer, dsaEncoding: 'ieee-p1363' })
    return `${header}.${detached ? '' : body}.${signature.toString('base64url')}`
  }

  /**
   * A JWS over `payload` with the payload detached (RFC 7515 appendix F): `<header>..<signature>`.
   * The receiver puts the base64url of the bytes it got between the dots and verifies with the JWKS.
   */
  async signDetached (payload: string | Uint8Array, typ: string): Promise<string> {
    return this.jws(Buffer.from(payload), typ, true)
  }

  async refresh (initial: boolean): Promise<void> {
    let stored: StoredKey[]
    if (this.source.kind === 'file') {
      const path = this.source.path
      const unreadable = (err: unknown): never => {
        // at start, one line saying what to fix; later, the refresher logs it and keeps the keys it has
        throw new StatedError(`SIGNING_KEYS_FILE ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}): create it with \`reuse-gateway signing-keys generate --out ${path}\` or correct the path`)
      }
      const info = await stat(path).catch(unreadable)
      if (!initial && info.mtimeMs === this.fileMtime) return
      this.fileMtime = info.mtimeMs
      stored = parseKeyFile(await readFile(path, 'utf8').catch(unreadable), path)
    } else {
      const record = await this.source.keys.getSigningKeys()
      if (record) {
        stored = record.keys as StoredKey[]
      } else {
        stored = [await generateGatewayKey(this.source.alg)]
        // two processes starting together: the loser takes the winner's key
        if (!await this.source.keys.putSigningKeys(stored, 0)) {
          stored = (await this.source.keys.getSigningKeys())?.keys as StoredKey[]
        }
      }
    }
    if (!initial && this.loaded && sameKeys(this.loaded.stored, stored)) return
    this.loaded = await this.prepare(stored)
  }

  private async prepare (stored: StoredKey[]): Promise<Loaded> {
    const now = Date.now()
    const live = stored.filter((key) => !key.retired_at || now - Date.parse(key.retired_at) < this.options.retentionMs)
    const current = live.find((key) => !key.retired_at)
    if (!current) throw new StatedError('no active signing key: every key is retired')
    const verifying = new Map<string, VerificationKey>()
    for (const key of live) {
      const verification: VerificationKey = { key: await importJWK(publicJwk(key), key.alg) as KeyObject }
      if (key.retired_at) verification.retiredAt = Date.parse(key.retired_at)
      verifying.set(key.kid, verification)
    }
    return {
      stored,
      active: { kid: current.kid, alg: current.alg, signer: createPrivateKey({ key: { kty: current.kty, crv: current.crv, x: current.x, ...(current.y ? { y: current.y } : {}), d: current.d } as JsonWebKey, format: 'jwk' }) },
      verifying,
      published: live.map(publicJwk)
    }
  }
}

function sameKeys (a: StoredKey[], b: StoredKey[]): boolean {
  return a.length === b.length && a.every((key, i) => key.kid === b[i]?.kid && key.retired_at === b[i]?.retired_at)
}

/** Rotation of the key set kept in the store, safe against a concurrent rotation. */
export async function rotateStoredKeys (store: SigningKeyStore, alg: GatewayAlg, retentionMs: number): Promise<StoredKey[]> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const record = await store.getSigningKeys()
    const next = await rotateKeys((record?.keys ?? []) as StoredKey[], alg, retentionMs)
    if (await store.putSigningKeys(next, record?.revision ?? 0)) return next
  }
  throw new StatedError('the signing keys changed under five rotation attempts in a row; try again')
}
