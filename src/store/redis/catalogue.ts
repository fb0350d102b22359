/**
 * Document types in Redis. Keys (tag {document-types}):
 *   {document-types}  hash: type code → type record JSON (every schema version it had)
 */
import type { CatalogueStore, DocumentTypeRecord } from '../catalogue.js'
import type { RedisConnection } from './connection.js'

/** compare-and-set of a document type on its schema version. KEYS: the types hash. ARGV: code, expected version, record JSON. */
const PUT_DOCUMENT_TYPE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if current then version = cjson.decode(current).schemaVersion end
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`

export class RedisCatalogueStore implements CatalogueStore {
  private readonly putScript: (...args: string[]) => Promise<number>

  constructor (private readonly redis: RedisConnection) {
    this.putScript = redis.script('documentTypePut', PUT_DOCUMENT_TYPE, 1)
  }

  private get typesKey (): string { return this.redis.key('document-types') }

  async getDocumentType (code: string): Promise<DocumentTypeRecord | undefined> {
    return await this.redis.hashRecord<DocumentTypeRecord>(this.typesKey, code)
  }

  async listDocumentTypes (): Promise<DocumentTypeRecord[]> {
    return await this.redis.hashRecords<DocumentTypeRecord>(this.typesKey)
  }

  async putDocumentType (record: DocumentTypeRecord, expectedVersion: number): Promise<boolean> {
    // compare-and-set on the schema version: two admins changing a type cannot both win
    const done = await this.redis.run(async () => await this.putScript(this.typesKey, record.code, String(expectedVersion), JSON.stringify(record)))
    return done === 1
  }
}
