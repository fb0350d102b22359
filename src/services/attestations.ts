import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'
import type { DocumentStore } from '../store/index.js'
import type { Call } from './call.js'
import { statusOf } from './document-status.js'
import type { DocumentStatus } from './document-status.js'
import { ATTESTATION_TYP } from './reuse.js'
import type { SigningKeys } from './signing-keys.js'

/**
 * Attestation verification: whoever holds an attestation learns whether the gateway signed it,
 * with which key, and the document's status now.
 */

/** POST /v1/attestations/verify (schemas/attestation-verification.json). */
export interface AttestationVerification {
  valid: boolean
  reason?: string
  kid?: string
  claims?: JWTPayload
  statusNow?: DocumentStatus | 'unknown'
  revokedAt?: string
  latestVersion?: number
}

export interface AttestationServiceDeps {
  documents: Pick<DocumentStore, 'getDocument'>
  signer: Pick<SigningKeys, 'jwks'>
  /** the gateway's issuer name, which every attestation carries */
  issuer: string
}

export class AttestationService {
  constructor (private readonly deps: AttestationServiceDeps) {}

  /** A forged, altered or foreign attestation is an answer (`valid: false`), not an error; audited either way. */
  async verify (call: Pick<Call, 'audit'>, jws: string): Promise<AttestationVerification> {
    const result = await this.check(jws)
    await call.audit({
      action: 'attestation.verified',
      outcome: result.valid ? 'granted' : 'denied',
      ...(result.claims ? { documents: [{ id: String(result.claims.document_id), version: Number(result.claims.document_version) }] } : {}),
      detail: { valid: result.valid, ...(result.statusNow ? { statusNow: result.statusNow } : {}) }
    })
    return result
  }

  private async check (jws: string): Promise<AttestationVerification> {
    try {
      const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet(this.deps.signer.jwks()), { issuer: this.deps.issuer, typ: ATTESTATION_TYP, algorithms: ['EdDSA', 'ES256'] })
      const found = await this.deps.documents.getDocument(String(payload.document_id))
      let statusNow: AttestationVerification['statusNow'] = 'unknown'
      let extra: Pick<AttestationVerification, 'latestVersion' | 'revokedAt'> = {}
      if (found) {
        const version = found.document.versions.find((v) => v.version === payload.document_version)
        if (version) statusNow = statusOf(found.document, version)
        extra = { latestVersion: found.document.versions.length, ...(found.document.revoked ? { revokedAt: found.document.revoked.at } : {}) }
      }
      return { valid: true, ...(protectedHeader.kid !== undefined ? { kid: protectedHeader.kid } : {}), claims: payload, statusNow, ...extra }
    } catch (err) {
      let kid: string | undefined
      try { kid = decodeProtectedHeader(jws).kid } catch {}
      const reason = (err as { code?: string }).code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
        ? 'the signature does not verify: the attestation was altered or not made by this gateway'
        : `not a valid attestation of this gateway (${(err as Error).message})`
      return { valid: false, reason, ...(kid ? { kid } : {}) }
    }
  }
}
