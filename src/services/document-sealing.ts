import { isSealed, open, seal, sealedKeyId } from '../lib/encryption.js'
import type { Keyring } from '../lib/encryption.js'
import type { StoredDocument, StoredDocumentVersion } from '../store/index.js'

/**
 * Encryption at rest of the structured data: a version's `data` is stored as
 * `{ "$sealed": "enc:v1:…" }` when ENCRYPTION_KEYS is set, and opened as it is read back by the
 * document service, so the stores, the routes and every reader after it only ever see it in
 * clear. Data stored before encryption was turned on reads as it is.
 */
export const SEALED = '$sealed'

export function sealedEnvelope (data: Record<string, unknown>): string | undefined {
  const envelope = data[SEALED]
  return isSealed(envelope) && Object.keys(data).length === 1 ? envelope : undefined
}

/**
 * Where a version's data belongs, authenticated with it: this version of the result with this
 * natural key (issuer, type, number), so sealed data copied to another document or version does
 * not open there. Not the document id: a registration retried after a crash is completed under
 * the id reserved first, which need not be the id its data was sealed with.
 */
function dataPlace (version: StoredDocumentVersion): string {
  return JSON.stringify(['document-data', version.issuer, version.type, version.documentNumber, version.version])
}

const dataName = (version: StoredDocumentVersion): string => `the data of document ${version.id} version ${version.version}`

/** the key a version's data is sealed with; undefined when it is stored in clear */
export function dataKeyId (version: StoredDocumentVersion): string | undefined {
  const envelope = sealedEnvelope(version.data)
  return envelope === undefined ? undefined : sealedKeyId(envelope) ?? 'unreadable'
}

/** the version as stored: its data sealed with the active key (unchanged without a keyring) */
export function sealVersion (keyring: Keyring | undefined, version: StoredDocumentVersion): StoredDocumentVersion {
  if (!keyring) return version
  return { ...version, data: { [SEALED]: seal(keyring, JSON.stringify(version.data), dataPlace(version)) } }
}

/**
 * The version as read: its data in clear. Data sealed with a key that is not configured
 * (UnknownKeyError) or that does not authenticate (DecryptionError) is never passed on: both
 * are operator errors, answered as a 500 and logged with the document id and key id only.
 */
export function openVersion (keyring: Keyring | undefined, version: StoredDocumentVersion): StoredDocumentVersion {
  const envelope = sealedEnvelope(version.data)
  if (envelope === undefined) return version
  return { ...version, data: JSON.parse(open(keyring, envelope, dataPlace(version), dataName(version))) }
}

export function openDocument (keyring: Keyring | undefined, document: StoredDocument): StoredDocument {
  return { ...document, versions: document.versions.map((version) => openVersion(keyring, version)) }
}
