/**
 * How a document's parts are stored (redis/documents.ts): a version as a MessagePack tuple, a
 * registration record and an id pointer as short binary values. Fields are by position, so no
 * field name is stored with every record; the id and the type live in the partition's field
 * names and are not repeated in the version. Versions written as JSON by the earlier layout are
 * read as they are (`isJson`).
 */
import type { StoredDocumentVersion } from '../documents.js'
import { compactHash, compactId, compactInstant, expandHash, expandId, expandInstant, isJson, jsonPlain, pack, unpack } from './binary.js'

/** the first element of a version tuple: its layout, so a later one can be told apart */
const VERSION_LAYOUT = 2

type VersionTuple = [
  layout: number,
  version: number,
  typeSchemaVersion: number,
  subjectKind: 0 | 1,
  subjectId: string,
  issuer: string,
  procedureCode: string,
  dossierCode: string,
  documentNumber: string,
  issuedAt: string,
  validFrom: string,
  validUntil: string | null,
  data: Record<string, unknown>,
  createdAt: number | string,
  contentHash: Buffer | string,
  amendmentReason: string | null
]

export function encodeVersion (v: StoredDocumentVersion): Buffer {
  // data MessagePack would not give back as it was (a `__proto__` key, say) stays JSON, as the earlier layout stored it
  if (!jsonPlain(v.data)) return Buffer.from(JSON.stringify(v))
  const tuple: VersionTuple = [
    VERSION_LAYOUT, v.version, v.typeSchemaVersion, v.subject.kind === 'citizen' ? 0 : 1, v.subject.id, v.issuer,
    v.procedureCode, v.dossierCode, v.documentNumber, v.issuedAt, v.validFrom, v.validUntil ?? null, v.data,
    compactInstant(v.createdAt), compactHash(v.contentHash), v.amendmentReason ?? null
  ]
  return pack(tuple)
}

/** a stored version, given its document's id and type (the partition's field names) */
export function decodeVersion (bytes: Buffer, id: string, type: string): StoredDocumentVersion {
  if (isJson(bytes)) return JSON.parse(bytes.toString('utf8')) as StoredDocumentVersion
  const [, version, typeSchemaVersion, kind, subjectId, issuer, procedureCode, dossierCode, documentNumber, issuedAt, validFrom, validUntil, data, createdAt, contentHash, amendmentReason] = unpack<VersionTuple>(bytes)
  return {
    id,
    version,
    type,
    typeSchemaVersion,
    subject: { kind: kind === 0 ? 'citizen' : 'organization', id: subjectId },
    issuer,
    procedureCode,
    dossierCode,
    documentNumber,
    issuedAt,
    validFrom,
    ...(validUntil === null ? {} : { validUntil }),
    data,
    createdAt: expandInstant(createdAt),
    contentHash: expandHash(contentHash),
    ...(amendmentReason === null ? {} : { amendmentReason })
  }
}

/** what a registration (uniqueness) record holds: enough to answer a repeat and to finish a registration a crash interrupted */
export interface Registration {
  id: string
  contentHash: string
  createdAt: string
}

export function encodeRegistration (r: Registration): Buffer {
  return pack([compactId(r.id), compactHash(r.contentHash), compactInstant(r.createdAt)])
}

/** a registration record, or the earlier layout's JSON (which also named the subject's partition) */
export function decodeRegistration (bytes: Buffer): Registration & { subjectHash?: string } {
  if (isJson(bytes)) return JSON.parse(bytes.toString('utf8')) as Registration & { subjectHash: string }
  const [id, contentHash, createdAt] = unpack<[Buffer | string, Buffer | string, number | string]>(bytes)
  return { id: expandId(id), contentHash: expandHash(contentHash), createdAt: expandInstant(createdAt) }
}

/** the id → partition pointer's value: the subject hash */
export function encodeSubject (subjectHash: string): Buffer {
  return pack(compactHash(subjectHash))
}

export function decodeSubject (bytes: Buffer): string {
  return expandHash(unpack<Buffer | string>(bytes))
}
