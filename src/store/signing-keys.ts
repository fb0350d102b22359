/** The gateway's own signing keys, kept as one versioned set. */

/** The gateway's own signing keys, versioned so that concurrent rotations cannot both win. */
export interface SigningKeySetRecord {
  revision: number
  keys: Array<Record<string, unknown>>
}

export interface SigningKeyStore {
  getSigningKeys(): Promise<SigningKeySetRecord | undefined>
  /** stores `keys` as revision `expectedRevision + 1` if the stored revision is still `expectedRevision` (0: none yet) */
  putSigningKeys(keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean>
}
