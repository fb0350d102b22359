import { createRemoteJWKSet, customFetch, importJWK } from 'jose'
import type { JWK } from 'jose'
import type { OutboundFetch } from '../lib/outbound.js'
import type { AgencyRecord } from '../store/index.js'
import { AuthCheckError } from './auth-errors.js'

type RemoteSet = ReturnType<typeof createRemoteJWKSet>
type VerifyKey = Awaited<ReturnType<typeof importJWK>>

export interface AgencyKeysOptions {
  /** how long a jwks_uri fetch may take */
  fetchTimeoutMs: number
  /** how long a fetched JWKS is used before it is fetched again */
  cacheMs: number
  /** fetches only what OUTBOUND_ALLOWED_HOSTS allows (lib/outbound.ts), redirects not followed */
  fetch: OutboundFetch
}

/**
 * Finds the public key an agency signed with. Inline keys come from the registry; a `jwks_uri`
 * is fetched with a timeout, cached, and fetched again on an unknown `kid` (at most every 30 s,
 * so a flood of forged kids cannot turn the gateway into a fetcher). A failing fetch refuses
 * that agency's assertion and nothing else.
 */
export class AgencyKeys {
  private readonly imported = new Map<string, VerifyKey>()
  private readonly remote = new Map<string, RemoteSet>()

  constructor (private readonly options: AgencyKeysOptions) {}

  async key (agency: AgencyRecord, kid: string, alg: string): Promise<VerifyKey> {
    if (agency.jwks) {
      const jwk = agency.jwks.keys.find((key) => key.kid === kid)
      if (!jwk) throw new AuthCheckError('kid_unknown', `agency ${agency.code} has no key with kid "${kid}" (unknown or removed)`)
      if (jwk.alg !== undefined && jwk.alg !== alg) throw new AuthCheckError('alg_mismatch', `key "${kid}" is registered for ${String(jwk.alg)}, not ${alg}`)
      const cacheKey = `${alg}\n${JSON.stringify(jwk)}`
      let key = this.imported.get(cacheKey)
      if (!key) {
        try {
          key = await importJWK(jwk as JWK, alg)
        } catch {
          throw new AuthCheckError('alg_mismatch', `key "${kid}" cannot be used with ${alg}`)
        }
        if (this.imported.size > 10_000) this.imported.clear()
        this.imported.set(cacheKey, key)
      }
      return key
    }
    if (agency.jwksUri) {
      try {
        return await this.remoteSet(agency.jwksUri)({ alg, kid })
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'ERR_JWKS_NO_MATCHING_KEY') throw new AuthCheckError('kid_unknown', `the JWKS at agency ${agency.code}'s jwks_uri has no key with kid "${kid}" for ${alg}`)
        throw new AuthCheckError('jwks_unavailable', `agency ${agency.code}'s jwks_uri could not be fetched (${code ?? 'error'}); try again later`)
      }
    }
    throw new AuthCheckError('kid_unknown', `agency ${agency.code} has no keys registered`)
  }

  /** Is `kid` still among the agency's keys? (undefined: cannot tell without a fetch) */
  stillRegistered (agency: AgencyRecord, kid: string): boolean | undefined {
    if (agency.jwks) return agency.jwks.keys.some((key) => key.kid === kid)
    const set = agency.jwksUri ? this.remote.get(agency.jwksUri) : undefined
    const jwks = set?.jwks()
    return jwks ? jwks.keys.some((key) => key.kid === kid) : undefined
  }

  private remoteSet (uri: string): RemoteSet {
    let set = this.remote.get(uri)
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), {
        timeoutDuration: this.options.fetchTimeoutMs,
        cooldownDuration: 30_000,
        cacheMaxAge: this.options.cacheMs,
        [customFetch]: this.options.fetch
      })
      this.remote.set(uri, set)
    }
    return set
  }
}
