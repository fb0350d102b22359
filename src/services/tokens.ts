import { randomUUID } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, errors as joseErrors } from 'jose'
import type { JWTPayload } from 'jose'
import { LRUCache } from 'lru-cache'
import { verifyJwt } from '../lib/jwt-verify.js'
import type { AgencyRecord, AgencyStore, LeaseStore } from '../store/index.js'
import { AGENCY_ALGORITHMS, AGENCY_CODE, ALL_SCOPES, scopesOf } from './agencies.js'
import type { AgencyKeys } from './agency-keys.js'
import type { Caller, RecordAudit } from './call.js'
import { AuthCheckError } from './auth-errors.js'
import { GATEWAY_ALGORITHMS, SIGNING_KEYS_REFRESH_MS } from './signing-keys.js'
import type { SigningKeys } from './signing-keys.js'

/**
 * clock skew tolerated on the time claims of client assertions and consent tokens (SPEC §6: at
 * most 60 s); access tokens take theirs from ACCESS_TOKEN_CLOCK_SKEW_SECONDS, 60 s by default
 */
export const CLOCK_TOLERANCE_S = 60
/** a client assertion may live at most this long (RFC 7523 assertions are meant to be short) */
export const MAX_ASSERTION_LIFETIME_S = 300
export const ACCESS_TOKEN_TYP = 'at+jwt'

/** An access token's claims: RFC 9068 §2.2's (iss, exp, aud, sub, client_id, iat, jti), scope, and the key behind it. */
export interface AccessTokenClaims extends JWTPayload {
  sub: string
  /** the agency that obtained the token, as `sub` (a client acting for itself, RFC 9068 §2.2) */
  client_id?: string
  scope: string
  exp: number
  jti: string
  /** the agency key the client assertion was signed with: removing it revokes the token */
  agency_kid: string
}

export interface IssuedToken {
  accessToken: string
  expiresIn: number
  scope: string
  agency: string
  tokenId: string
  /** the assertion's jti, for the audit trail */
  assertionId: string
}

export interface TokenServiceOptions {
  /** the agency records (services/registry-cache.ts keeps them between requests) */
  agencies: Pick<AgencyStore, 'getAgency'>
  leases: LeaseStore
  signingKeys: SigningKeys
  agencyKeys: AgencyKeys
  /** the gateway's id: issuer of access tokens, accepted audience of assertions */
  issuer: string
  accessTokenTtlSeconds: number
  /** how long past its exp an access token is still accepted (default CLOCK_TOLERANCE_S) */
  accessTokenClockSkewSeconds?: number
  /** how many verified access tokens to remember */
  cacheSize?: number
  /** told each token endpoint answer, issued or refused (metrics count them by refusal code) */
  onAnswered?: (answer: TokenGrant) => void
}

/** jose's rejection → which check failed, in words an integrator can act on */
function explain (err: unknown, what: 'assertion' | 'token', tolerance: number): AuthCheckError {
  if (err instanceof AuthCheckError) return err
  if (err instanceof joseErrors.JWTExpired) return new AuthCheckError(`${what}_expired`, `the ${what} has expired (exp is in the past, beyond ${tolerance} s of tolerance)`)
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = err.claim
    if (claim === 'nbf' || (claim === 'iat' && err.reason === 'check_failed')) return new AuthCheckError(`${what}_not_yet_valid`, `the ${what} is not valid yet (${claim} is in the future)`)
    if (claim === 'aud') return new AuthCheckError('audience_invalid', `the ${what} is for another audience (aud must be this gateway)`)
    if (claim === 'iss') return new AuthCheckError('issuer_invalid', `the ${what} has the wrong issuer`)
    if (err.reason === 'missing') return new AuthCheckError('claim_missing', `the ${what} lacks the "${claim}" claim`)
    return new AuthCheckError('claim_invalid', `the ${what}'s "${claim}" claim is invalid`)
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new AuthCheckError('signature_invalid', `the ${what}'s signature does not verify with the named key`)
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new AuthCheckError('alg_not_allowed', `the ${what}'s algorithm is not allowed`)
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) return new AuthCheckError(`${what}_malformed`, `the ${what} is not a well-formed signed JWT`)
  return new AuthCheckError(`${what}_invalid`, `the ${what} could not be verified`)
}

/**
 * The latest exp (epoch seconds) of an access token a key retired at `retiredAt` (epoch ms) can
 * have signed: made at most SIGNING_KEYS_REFRESH_MS after the retirement, living the token
 * lifetime, by a process whose clock may be ahead of the one that set the retirement time by
 * as much as the clock skew tolerated. Such a token is then accepted until that exp + the skew.
 */
export function latestRetiredKeyExp (retiredAt: number, ttlSeconds: number, skewSeconds: number): number {
  return Math.floor((retiredAt + SIGNING_KEYS_REFRESH_MS) / 1000) + ttlSeconds + skewSeconds
}

export const GRANT_TYPE = 'client_credentials'
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** A token request, as the form of RFC 6749 §4.4.2 with RFC 7523 §2.2's client assertion. */
export interface TokenRequest {
  grant_type: string
  client_assertion_type: string
  client_assertion: string
  scope?: string
  client_id?: string
}

/** The token endpoint's answer: the token (RFC 6749 §5.1), or the RFC 6749 §5.2 error and our code. */
export type TokenGrant =
  | { token: { access_token: string, token_type: 'Bearer', expires_in: number, scope: string } }
  | { refused: { error: AuthCheckError['oauthError'], code: string, description: string } }

/** What the token endpoint knows of its request: no caller yet, only the trail and the refusal ledger. */
export interface TokenCall {
  audit: RecordAudit
  /** records a refused request; past the client address's limit it throws the 429 instead */
  refuse: (refusal: { action: string, code: string, detail?: Record<string, unknown> }) => Promise<void>
  log: { info: (obj: object, msg: string) => void }
}

/** The agency a refused assertion claimed to come from, when it names one (unverified, for the record). */
function claimedAgency (assertion: string): { claimedAgency?: string } {
  try {
    const iss = decodeJwt(assertion).iss
    return typeof iss === 'string' && AGENCY_CODE.test(iss) ? { claimedAgency: iss } : {}
  } catch {
    return {}
  }
}

export class TokenService {
  private readonly cache: LRUCache<string, AccessTokenClaims>
  readonly tokenEndpoint: string
  /** seconds past exp an access token is still accepted */
  private readonly skew: number

  constructor (private readonly options: TokenServiceOptions) {
    this.skew = options.accessTokenClockSkewSeconds ?? CLOCK_TOLERANCE_S
    // verified access tokens, remembered until they expire: a JWT verify costs ~100 µs
    this.cache = new LRUCache({ max: options.cacheSize ?? 50_000, ttlAutopurge: false })
    this.tokenEndpoint = `${options.issuer}/v1/oauth/token`
  }

  /**
   * The token endpoint: a form's grant checked, the assertion exchanged, a refusal on record (and
   * counted against the client address), an issue on record before the token leaves.
   */
  async grant (call: TokenCall, body: TokenRequest): Promise<TokenGrant> {
    const answer = await this.decide(call, body)
    this.options.onAnswered?.(answer)
    return answer
  }

  private async decide (call: TokenCall, body: TokenRequest): Promise<TokenGrant> {
    if (body.grant_type !== GRANT_TYPE) return { refused: { error: 'unsupported_grant_type', code: 'unsupported_grant_type', description: `grant_type must be ${GRANT_TYPE}` } }
    if (body.client_assertion_type !== ASSERTION_TYPE) return { refused: { error: 'invalid_request', code: 'invalid_request', description: `client_assertion_type must be ${ASSERTION_TYPE}` } }
    let issued: IssuedToken
    try {
      issued = await this.exchangeAssertion(body.client_assertion, body.scope)
      if (body.client_id !== undefined && body.client_id !== issued.agency) {
        throw new AuthCheckError('client_id_mismatch', 'client_id does not match the assertion issuer')
      }
    } catch (err) {
      if (!(err instanceof AuthCheckError)) throw err
      call.log.info({ code: err.code }, 'token request refused')
      await call.refuse({ action: 'token.refused', code: err.code, detail: claimedAgency(body.client_assertion) })
      return { refused: { error: err.oauthError, code: err.code, description: err.description } }
    }
    await call.audit({ actor: issued.agency, action: 'token.issued', outcome: 'granted', detail: { scope: issued.scope, tokenId: issued.tokenId, assertionId: issued.assertionId } })
    call.log.info({ agency: issued.agency, scope: issued.scope, tokenId: issued.tokenId }, 'access token issued')
    return { token: { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn, scope: issued.scope } }
  }

  /** RFC 8414 metadata: where to get tokens and what a client assertion must be. */
  metadata (): Record<string, unknown> {
    const issuer = this.options.issuer
    return {
      issuer,
      token_endpoint: this.tokenEndpoint,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      grant_types_supported: [GRANT_TYPE],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: [...AGENCY_ALGORITHMS],
      scopes_supported: ALL_SCOPES
    }
  }

  /**
   * The client-credentials grant with private_key_jwt (RFC 7523 §2.2): verifies the agency's
   * signed assertion, refuses a replayed one, and issues a short-lived access token.
   */
  async exchangeAssertion (assertion: string, requestedScope: string | undefined): Promise<IssuedToken> {
    const header = this.header(assertion, 'assertion')
    if (!(AGENCY_ALGORITHMS as readonly string[]).includes(header.alg)) {
      throw new AuthCheckError('alg_not_allowed', `alg "${header.alg}" is not allowed for client assertions; use ${AGENCY_ALGORITHMS.join(', ')}`)
    }
    if (!header.kid) throw new AuthCheckError('kid_missing', 'the assertion header has no kid naming the agency key that signed it')

    let unverified: JWTPayload
    try {
      unverified = decodeJwt(assertion)
    } catch {
      throw new AuthCheckError('assertion_malformed', 'the assertion payload is not a JSON object')
    }
    const iss = unverified.iss
    if (typeof iss !== 'string' || !AGENCY_CODE.test(iss)) throw new AuthCheckError('issuer_invalid', 'iss must be the agency code of the caller')
    if (unverified.sub !== iss) throw new AuthCheckError('iss_sub_mismatch', 'iss and sub must both be the agency code (RFC 7523 §3)')

    const agency = await this.options.agencies.getAgency(iss)
    if (!agency) throw new AuthCheckError('agency_unknown', `no agency ${iss} is registered`)
    if (agency.status !== 'active') throw new AuthCheckError('agency_suspended', `agency ${iss} is suspended`)

    const key = await this.options.agencyKeys.key(agency, header.kid, header.alg)
    let payload: JWTPayload
    try {
      ({ payload } = await verifyJwt(assertion, key, {
        algorithms: [header.alg],
        audience: [this.options.issuer, this.tokenEndpoint],
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'iat', 'jti', 'aud']
      }))
    } catch (err) {
      throw explain(err, 'assertion', CLOCK_TOLERANCE_S)
    }
    const now = Math.floor(Date.now() / 1000)
    const exp = payload.exp as number
    const iat = payload.iat as number
    if (iat > now + CLOCK_TOLERANCE_S) throw new AuthCheckError('assertion_not_yet_valid', 'the assertion was issued in the future (iat)')
    if (exp - iat > MAX_ASSERTION_LIFETIME_S) throw new AuthCheckError('assertion_lifetime_too_long', `exp may be at most ${MAX_ASSERTION_LIFETIME_S} s after iat`)
    const jti = payload.jti
    if (typeof jti !== 'string' || jti.length < 8 || jti.length > 200) throw new AuthCheckError('jti_invalid', 'jti must be a unique string of 8 to 200 characters')

    const scope = this.grantScope(agency, requestedScope)

    // the jti is kept as long as the assertion could still be accepted, then forgotten
    const first = await this.options.leases.claimOnce('assertion', `${iss}\n${jti}`, (exp - now + CLOCK_TOLERANCE_S + 1) * 1000)
    if (!first) throw new AuthCheckError('assertion_replayed', 'this assertion (its jti) has already been used; sign a new one for each token request')

    const tokenId = randomUUID()
    const ttl = this.options.accessTokenTtlSeconds
    const claims: AccessTokenClaims = {
      iss: this.options.issuer,
      sub: agency.code,
      client_id: agency.code,
      aud: this.options.issuer,
      scope,
      iat: now,
      exp: now + ttl,
      jti: tokenId,
      agency_kid: header.kid
    }
    const accessToken = await this.options.signingKeys.sign(claims, ACCESS_TOKEN_TYP)
    return { accessToken, expiresIn: ttl, scope, agency: agency.code, tokenId, assertionId: jti }
  }

  private grantScope (agency: AgencyRecord, requested: string | undefined): string {
    const held = scopesOf(agency.roles)
    if (requested === undefined || requested.trim() === '') {
      if (held.length === 0) throw new AuthCheckError('invalid_scope', `agency ${agency.code} holds no role`, 'invalid_scope')
      return held.join(' ')
    }
    const wanted = [...new Set(requested.trim().split(/\s+/))]
    const missing = wanted.filter((scope) => !held.includes(scope))
    if (missing.length) {
      throw new AuthCheckError('invalid_scope', `agency ${agency.code} does not hold ${missing.join(', ')} (it holds: ${held.join(' ') || 'nothing'})`, 'invalid_scope')
    }
    return wanted.join(' ')
  }

  private header (token: string, what: 'assertion' | 'token'): { alg: string, kid?: string, typ?: string } {
    if (token.length > 8192 || token.split('.').length !== 3) throw new AuthCheckError(`${what}_malformed`, `the ${what} is not a compact JWS (three base64url parts)`)
    try {
      const header = decodeProtectedHeader(token)
      if (typeof header.alg !== 'string') throw new Error('no alg')
      return header as { alg: string, kid?: string, typ?: string }
    } catch {
      throw new AuthCheckError(`${what}_malformed`, `the ${what} header is not a JSON object with an alg`)
    }
  }

  /** Verifies a gateway access token, once per token: later calls hit the cache until exp. */
  async verifyAccessToken (token: string): Promise<AccessTokenClaims> {
    const cached = this.cache.get(token)
    if (cached) {
      // the cache entry dies at exp anyway; this keeps the clock-skew rule exact
      if (cached.exp + this.skew >= Date.now() / 1000) return cached
      this.cache.delete(token)
    }
    const header = this.header(token, 'token')
    if (!(GATEWAY_ALGORITHMS as string[]).includes(header.alg)) throw new AuthCheckError('alg_not_allowed', `alg "${header.alg}" is not one the gateway signs with`)
    if (header.typ !== ACCESS_TOKEN_TYP) throw new AuthCheckError('token_type_invalid', `this is not an access token (typ must be ${ACCESS_TOKEN_TYP})`)
    const found = await this.options.signingKeys.keyFor(header.kid)
    if (!found) throw new AuthCheckError('kid_unknown', 'the token names a key this gateway does not have (unknown or retired)')
    let payload: JWTPayload
    try {
      ({ payload } = await verifyJwt(token, found.key, {
        algorithms: GATEWAY_ALGORITHMS,
        issuer: this.options.issuer,
        audience: this.options.issuer,
        typ: ACCESS_TOKEN_TYP,
        clockTolerance: this.skew,
        requiredClaims: ['exp', 'sub', 'jti', 'scope']
      }))
    } catch (err) {
      throw explain(err, 'token', this.skew)
    }
    const claims = payload as AccessTokenClaims
    // signed by a gateway key, yet checked: a claim of the wrong type is a refusal, not a crash
    if (typeof claims.sub !== 'string' || typeof claims.scope !== 'string' || typeof claims.jti !== 'string' || (claims.agency_kid !== undefined && typeof claims.agency_kid !== 'string')) {
      throw new AuthCheckError('claim_invalid', 'the token\'s sub, scope, jti and agency_kid claims must be strings')
    }
    if (found.retiredAt !== undefined) this.checkSignedWhileCurrent(claims, found.retiredAt)
    const ttlMs = (claims.exp + this.skew) * 1000 - Date.now()
    if (ttlMs > 0) this.cache.set(token, claims, { ttl: ttlMs })
    return claims
  }

  /**
   * A retired key stays published for years so that what it signed stays verifiable, and so
   * whoever holds its private part could mint tokens all that time. It signed access tokens
   * only until its retirement (plus the time other processes take to see it), and none of those
   * lives beyond the token lifetime: a token that would expire later was made afterwards, by
   * someone else. Its exp bounds the cache entry too, so nothing outlives this window.
   */
  private checkSignedWhileCurrent (claims: AccessTokenClaims, retiredAt: number): void {
    if (claims.exp > latestRetiredKeyExp(retiredAt, this.options.accessTokenTtlSeconds, this.skew)) {
      throw new AuthCheckError('key_retired', 'the token is signed by a retired gateway key, which no longer makes access tokens (it only verifies the attestations, receipts and checkpoints it signed); get a new token')
    }
  }

  /**
   * The agency behind a verified token, as it is now: suspension, a removed key or a removed
   * role take effect on the very next request, whichever gateway process serves it.
   */
  async caller (claims: AccessTokenClaims): Promise<Caller> {
    const agency = await this.options.agencies.getAgency(claims.sub)
    if (!agency) throw new AuthCheckError('agency_unknown', `agency ${claims.sub} is no longer registered`)
    if (agency.status !== 'active') throw new AuthCheckError('agency_suspended', `agency ${claims.sub} is suspended`)
    if (!await this.options.agencyKeys.stillRegistered(agency, claims.agency_kid)) {
      throw new AuthCheckError('key_removed', 'the agency key this token was obtained with has been removed')
    }
    const held = scopesOf(agency.roles)
    return {
      code: agency.code,
      name: agency.name,
      roles: agency.roles,
      issuableTypes: agency.roles.includes('issuer') ? agency.issuableTypes ?? [] : [],
      scopes: claims.scope.split(' ').filter((scope) => held.includes(scope)),
      tokenId: claims.jti
    }
  }
}
