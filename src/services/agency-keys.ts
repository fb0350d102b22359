import { createRemoteJWKSet, customFetch, importJWK } from 'jose'
import type { JWK } from 'jose'
import type { OutboundFetch } from '../lib/outbound.js'
import type { AgencyRecord, AgencyStore } from '../store/index.js'
import { algorithmMatches, otherAlgorithmName } from './agencies.js'
import { AuthCheckError } from './auth-errors.js'

type RemoteSet = ReturnType<typeof createRemoteJWKSet>
type VerifyKey = Awaited<ReturnType<typeof importJWK>>

export interface AgencyKeysOptions {
  /** where each agency's keys generation is kept (moved on by an admin change or refresh) */
  agencies: Pick<AgencyStore, 'agencyKeysGeneration'>
  /** how long a jwks_uri fetch may take */
  fetchTimeoutMs: number
  /** how long a fetched JWKS is used before it is fetched again */
  cacheMs: number
  /** fetches only what OUTBOUND_ALLOWED_HOSTS allows (lib/outbound.ts), redirects not followed */
  fetch: OutboundFetch
}

/** this process's copy of an agency's jwks_uri, and the keys generation it was made at */
interface RemoteCopy {
  uri: string
  generation: number
  set: RemoteSet
}

/**
 * Finds the public key an agency signed with. Inline keys come from the registry; a `jwks_uri`
 * is fetched with a timeout, cached, and fetched again on an unknown `kid` (at most every 30 s,
 * so a flood of forged kids cannot turn the gateway into a fetcher). A failing fetch refuses
 * that agency and nothing else.
 *
 * A cached copy is per process, so an admin change or refresh of the agency's keys moves a
 * generation kept in the store, which every use compares first: a process whose copy is older
 * drops it and fetches again, so the change holds on every process from the next request on.
 */
export class AgencyKeys {
  private readonly imported = new Map<string, VerifyKey>()
  /** the same keys by the registered JWK object: the agency registry hands out one per change (registry-cache.ts) */
  private readonly byJwk = new WeakMap<object, Map<string, VerifyKey>>()
  private readonly remote = new Map<string, RemoteCopy>()

  constructor (private readonly options: AgencyKeysOptions) {}

  async key (agency: AgencyRecord, kid: string, alg: string): Promise<VerifyKey> {
    if (agency.jwks) {
      const jwk = agency.jwks.keys.find((key) => key.kid === kid)
      if (!jwk) throw new AuthCheckError('kid_unknown', `agency ${agency.code} has no key with kid "${kid}" (unknown or removed)`)
      if (jwk.alg !== undefined && !algorithmMatches(String(jwk.alg), alg)) throw new AuthCheckError('alg_mismatch', `key "${kid}" is registered for ${String(jwk.alg)}, not ${alg}`)
      const known = this.byJwk.get(jwk)?.get(alg)
      if (known) return known
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
      // only for a record nobody can change afterwards: a mutable one could be altered under its entry
      if (Object.isFrozen(jwk)) this.byJwk.set(jwk, (this.byJwk.get(jwk) ?? new Map()).set(alg, key))
      return key
    }
    if (agency.jwksUri) {
      const set = await this.remoteSet(agency, agency.jwksUri)
      try {
        return await set({ alg, kid })
      } catch (err) {
        const code = (err as { code?: string }).code
        // jose matches a key's alg by name: a key published as EdDSA also signs as Ed25519
        const other = otherAlgorithmName(alg)
        if (code === 'ERR_JWKS_NO_MATCHING_KEY' && other) {
          try {
            return await set({ alg: other, kid })
          } catch {
            // under neither name: refused below, naming the alg the client used
          }
        }
        if (code === 'ERR_JWKS_NO_MATCHING_KEY') throw new AuthCheckError('kid_unknown', `the JWKS at agency ${agency.code}'s jwks_uri has no key with kid "${kid}" for ${alg}`)
        throw unavailable(agency, code)
      }
    }
    throw new AuthCheckError('kid_unknown', `agency ${agency.code} has no keys registered`)
  }

  /**
   * Is `kid` still among the agency's keys? Never "cannot tell": a jwks_uri this process has no
   * current copy of is fetched now, and one that cannot be fetched refuses (jwks_unavailable).
   */
  async stillRegistered (agency: AgencyRecord, kid: string | undefined): Promise<boolean> {
    if (agency.jwks) return agency.jwks.keys.some((key) => key.kid === kid)
    if (!agency.jwksUri) return false
    const set = await this.remoteSet(agency, agency.jwksUri)
    if (!set.fresh) {
      try {
        await set.reload()
      } catch (err) {
        throw unavailable(agency, (err as { code?: string }).code)
      }
    }
    return set.jwks()?.keys.some((key) => key.kid === kid) ?? false
  }

  /** the process's copy of the agency's JWKS, a new one if the URI or the keys generation moved */
  private async remoteSet (agency: AgencyRecord, uri: string): Promise<RemoteSet> {
    const generation = await this.options.agencies.agencyKeysGeneration(agency.code)
    const copy = this.remote.get(agency.code)
    if (copy && copy.uri === uri && copy.generation === generation) return copy.set
    const set = createRemoteJWKSet(new URL(uri), {
      timeoutDuration: this.options.fetchTimeoutMs,
      cooldownDuration: 30_000,
      cacheMaxAge: this.options.cacheMs,
      [customFetch]: this.options.fetch
    })
    this.remote.set(agency.code, { uri, generation, set })
    return set
  }
}

function unavailable (agency: AgencyRecord, code: string | undefined): AuthCheckError {
  return new AuthCheckError('jwks_unavailable', `agency ${agency.code}'s jwks_uri could not be fetched (${code ?? 'error'}), so its keys cannot be confirmed; try again later`)
}
