/** The gateway's signing keys in memory (the embedded store). */
import type { SigningKeySetRecord, SigningKeyStore } from '../signing-keys.js'

export class MemorySigningKeyStore implements SigningKeyStore {
  private signingKeys: SigningKeySetRecord | undefined

  async getSigningKeys (): Promise<SigningKeySetRecord | undefined> {
    return this.signingKeys === undefined ? undefined : structuredClone(this.signingKeys)
  }

  async putSigningKeys (keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean> {
    if ((this.signingKeys?.revision ?? 0) !== expectedRevision) return false
    this.signingKeys = { revision: expectedRevision + 1, keys: structuredClone(keys) }
    return true
  }
}
