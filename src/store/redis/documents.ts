/**
 * Documents in Redis. A subject's results all live in one hash, its partition, under its hash
 * tag: a reuse query reads them with one command (one key, so nothing to declare or route
 * apart). Keys:
 *   {s:<subject hash>}:docs  hash, the partition: `<id>` → type (the index), `<id>|v:<n>` →
 *                            version JSON, `<id>|file:<n>` → file JSON, `<id>|revoked` → JSON
 *   {n:<natural key>}        the registration (uniqueness) record: id, subject, content hash
 *   {d:<id>}                 the id → subject pointer
 * Registration writes all three idempotently, so a retry completes a half-done one.
 */
import type { DocumentKeys, DocumentStore, RegisterOutcome, StoredDocument, StoredDocumentFile, StoredDocumentVersion } from '../documents.js'
import { StatedError } from '../../lib/error-description.js'
import type { RedisConnection } from './connection.js'

/**
 * Writes version 1 of a document into its subject's partition, idempotently (a retry after a
 * crash redoes exactly this). KEYS: the partition. ARGV: id, type, version JSON.
 */
const PUT_FIRST_VERSION = `
redis.call('HSETNX', KEYS[1], ARGV[1] .. '|v:1', ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

/**
 * Appends version n+1 when the document's last version is still n and it is not revoked; with
 * ARGV[4] = '1', version n's file (if any) becomes version n+1's too, marked with the version it
 * was uploaded to. KEYS: the subject's partition. ARGV: document id, expected n, the new version
 * JSON, '1' to carry the file. Returns 0 (not appended), 1 (appended, no file) or the carried file's JSON.
 */
const AMEND = `
local d = ARGV[1] .. '|'
if redis.call('HEXISTS', KEYS[1], d .. 'revoked') == 1 then return 0 end
local n = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], d .. 'v:' .. n) == 0 or redis.call('HEXISTS', KEYS[1], d .. 'v:' .. (n + 1)) == 1 then return 0 end
redis.call('HSET', KEYS[1], d .. 'v:' .. (n + 1), ARGV[3])
if ARGV[4] ~= '1' then return 1 end
local found = redis.call('HGET', KEYS[1], d .. 'file:' .. n)
if not found then return 1 end
local file = cjson.decode(found)
if file.carriedFrom == nil then file.carriedFrom = n end
local carried = cjson.encode(file)
redis.call('HSET', KEYS[1], d .. 'file:' .. (n + 1), carried)
return carried`

/**
 * Replaces a stored version if it is still exactly as read (re-encryption of its data).
 * KEYS: the subject's partition. ARGV: the version's field, its JSON as read, the new JSON.
 */
const REWRITE_VERSION = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`

/**
 * HGETALL of a subject's partition → its documents (versions in order), optionally only those of
 * some types or one id. Fields: `<id>` → type (the index), `<id>|v:<n>`, `<id>|file:<n>`,
 * `<id>|revoked`; ids never contain "|".
 */
function documentsFromPartition (fields: Record<string, string>, wanted: { types?: string[], id?: string } = {}): StoredDocument[] {
  const types = wanted.types ? new Set(wanted.types) : undefined
  const documents = new Map<string, StoredDocument>()
  for (const [id, type] of Object.entries(fields)) {
    if (id.includes('|') || (wanted.id !== undefined && id !== wanted.id) || (types && !types.has(type))) continue
    documents.set(id, { versions: [], files: {} })
  }
  for (const [field, value] of Object.entries(fields)) {
    const bar = field.indexOf('|')
    const document = bar === -1 ? undefined : documents.get(field.slice(0, bar))
    if (!document) continue
    const part = field.slice(bar + 1)
    if (part.startsWith('v:')) document.versions.push(JSON.parse(value))
    else if (part.startsWith('file:')) document.files[Number(part.slice(5))] = JSON.parse(value)
    else if (part === 'revoked') document.revoked = JSON.parse(value)
  }
  const found: StoredDocument[] = []
  for (const document of documents.values()) {
    if (document.versions.length === 0) continue
    document.versions.sort((a, b) => a.version - b.version)
    found.push(document)
  }
  return found
}

export class RedisDocumentStore implements DocumentStore {
  private readonly scripts: {
    putFirst: (...args: string[]) => Promise<number>
    amend: (...args: string[]) => Promise<number | string>
    rewrite: (...args: string[]) => Promise<number>
  }

  constructor (private readonly redis: RedisConnection) {
    this.scripts = {
      putFirst: redis.script('documentPutFirst', PUT_FIRST_VERSION, 1),
      amend: redis.script('documentAmend', AMEND, 1),
      rewrite: redis.script('documentRewrite', REWRITE_VERSION, 1)
    }
  }

  private partitionKey (subjectHash: string): string { return this.redis.key(`s:${subjectHash}`, 'docs') }

  async registerDocument (keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome> {
    const naturalKey = this.redis.key(`n:${keys.naturalKey}`)
    // the reservation names the id, partition and content; a retry with the same content
    // carries everything else needed to finish a registration a crash interrupted
    const reservation = { id: first.id, subjectHash: keys.subjectHash, contentHash: first.contentHash, createdAt: first.createdAt }
    const reserved = await this.redis.run(async () => await this.redis.client.set(naturalKey, JSON.stringify(reservation), 'NX'))
    if (reserved === 'OK') {
      await this.completeRegistration(keys.subjectHash, first)
      return { outcome: 'created', document: { versions: [first], files: {} } }
    }
    const existing = await this.redis.run(async () => await this.redis.client.get(naturalKey))
    if (existing === null) throw new StatedError('document reservation vanished')
    const record = JSON.parse(existing) as typeof reservation
    const found = await this.getDocumentIn(record.subjectHash, record.id)
    if (record.contentHash !== first.contentHash) {
      return { outcome: 'conflict', document: found ?? { versions: [{ ...first, id: record.id, createdAt: record.createdAt, contentHash: record.contentHash }], files: {} } }
    }
    if (found) {
      // version 1 can be in while the id → subject pointer is not (a crash between the two writes)
      await this.redis.run(async () => await this.redis.client.set(this.redis.key(`d:${record.id}`), record.subjectHash))
      return { outcome: 'existing', document: found }
    }
    const completed = { ...first, id: record.id, createdAt: record.createdAt }
    await this.completeRegistration(record.subjectHash, completed)
    return { outcome: 'existing', document: { versions: [completed], files: {} } }
  }

  /** version 1 into the subject's partition, then the id → partition pointer; both idempotent */
  private async completeRegistration (subjectHash: string, first: StoredDocumentVersion): Promise<void> {
    await this.redis.run(async () => await this.scripts.putFirst(this.partitionKey(subjectHash), first.id, first.type, JSON.stringify(first)))
    await this.redis.run(async () => await this.redis.client.set(this.redis.key(`d:${first.id}`), subjectHash))
  }

  private async getDocumentIn (subjectHash: string, id: string): Promise<StoredDocument | undefined> {
    return documentsFromPartition(await this.redis.run(async () => await this.redis.client.hgetall(this.partitionKey(subjectHash))), { id })[0]
  }

  async findRegistration (naturalKey: string): Promise<{ id: string, contentHash: string } | undefined> {
    const json = await this.redis.run(async () => await this.redis.client.get(this.redis.key(`n:${naturalKey}`)))
    if (json === null) return undefined
    const { id, contentHash } = JSON.parse(json) as { id: string, contentHash: string }
    return { id, contentHash }
  }

  async getDocument (id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined> {
    const subjectHash = await this.redis.run(async () => await this.redis.client.get(this.redis.key(`d:${id}`)))
    if (subjectHash === null) return undefined
    const document = await this.getDocumentIn(subjectHash, id)
    return document ? { document, subjectHash } : undefined
  }

  async amendDocument (subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options: { carryFile?: boolean } = {}): Promise<false | { file?: StoredDocumentFile }> {
    const done = await this.redis.run(async () => await this.scripts.amend(this.partitionKey(subjectHash), next.id, String(expectedVersion), JSON.stringify(next), options.carryFile ? '1' : '0'))
    if (done === 0) return false
    return typeof done === 'string' ? { file: JSON.parse(done) as StoredDocumentFile } : {}
  }

  async revokeDocument (subjectHash: string, id: string, revoked: NonNullable<StoredDocument['revoked']>): Promise<boolean> {
    const set = await this.redis.run(async () => await this.redis.client.hsetnx(this.partitionKey(subjectHash), `${id}|revoked`, JSON.stringify(revoked)))
    return set === 1
  }

  async attachDocumentFile (subjectHash: string, id: string, version: number, file: StoredDocumentFile): Promise<boolean> {
    const set = await this.redis.run(async () => await this.redis.client.hsetnx(this.partitionKey(subjectHash), `${id}|file:${version}`, JSON.stringify(file)))
    return set === 1
  }

  async documentsOfSubject (subjectHash: string, types?: string[]): Promise<StoredDocument[]> {
    const fields = await this.redis.run(async () => await this.redis.client.hgetall(this.partitionKey(subjectHash)))
    return documentsFromPartition(fields, types ? { types } : {})
  }

  async * documentIdPages (pageSize: number): AsyncIterable<string[]> {
    // the id → partition pointers {d:<id>}, scanned on every master (a cluster spreads them)
    const nodes = this.redis.masters()
    const pattern = this.redis.key('d:*')
    const start = this.redis.key('d:').length - 1
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await this.redis.run(async () => await node.scan(cursor, 'MATCH', pattern, 'COUNT', pageSize))
        cursor = next
        if (keys.length > 0) yield keys.map((key) => key.slice(start, -1))
      } while (cursor !== '0')
    }
  }

  async rewriteDocumentVersion (subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean> {
    const done = await this.redis.run(async () => await this.scripts.rewrite(this.partitionKey(subjectHash), `${previous.id}|v:${previous.version}`, JSON.stringify(previous), JSON.stringify(next)))
    return done === 1
  }
}
