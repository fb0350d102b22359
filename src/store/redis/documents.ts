/**
 * Documents in Redis. A subject's results all live in one hash, its partition, under its hash
 * tag: a reuse query reads them with one command. The registration records and id pointers,
 * one per document, are bucketed into small hashes (2^20 buckets of each), which Redis keeps as
 * compact listpacks, instead of a key each (a key alone costs more than the record). Keys:
 *   {s:<subject hash>}:docs  hash, the partition: `<id>` → type (the index), `<id>|v:<n>` →
 *                            the version (documents-codec.ts), `<id>|file:<n>` → file JSON,
 *                            `<id>|revoked` → JSON
 *   {u:<bucket>}             registration records: 16 bytes of the SHA-256 of the natural key
 *                            (issuer, type, number) → id, content hash, creation time
 *   {i:<bucket>}             id pointers: the id's 16 bytes → its subject hash
 *   {store}:layout           "2" once no record of the earlier layout is left
 * The earlier layout had a key per registration ({n:<natural key>}, JSON) and per pointer
 * ({d:<id>}); until `reuse-gateway store migrate` has moved them (migrateLayout), they are read
 * too. Versions it stored as JSON are read as they are, and rewritten compactly by the migration.
 *
 * On one server, a chunk of registrations is one script (REGISTER_MANY): the record, version 1,
 * the index entry and the pointer of every document, atomically. On a cluster these are in
 * different slots, so each document is registered in steps (record first), every step
 * idempotent: a retry after a crash completes what was begun.
 */
import { createHash } from 'node:crypto'
import type { DocumentKeys, DocumentStore, RegisterOutcome, StoredDocument, StoredDocumentFile, StoredDocumentVersion } from '../documents.js'
import { StatedError } from '../../lib/error-description.js'
import type { RedisConnection } from './connection.js'
import { compactId, expandId, isJson, jsonPlain } from './binary.js'
import { decodeRegistration, decodeSubject, decodeVersion, encodeRegistration, encodeSubject, encodeVersion } from './documents-codec.js'
import type { Registration } from './documents-codec.js'
import { AMEND, LOOKUP_MANY, PUT_FIRST_VERSION, REGISTER_MANY, REWRITE_VERSION } from './documents-scripts.js'

/** the scripts called with their number of keys first */
export const DOCUMENT_VARIABLE_KEY_COMMANDS = ['documentRegisterMany', 'documentLookupMany']

/** registrations one script writes at most: a few milliseconds of server time */
const REGISTER_BATCH = 500

/** where a registration record is: its bucket (20 bits of the natural key's SHA-256) and its field (the next 16 bytes) */
function registrationSlot (naturalKey: string): { bucket: string, field: Buffer } {
  const digest = createHash('sha256').update(naturalKey).digest()
  return { bucket: digest.toString('hex', 0, 3).slice(0, 5), field: digest.subarray(3, 19) }
}

/** where an id pointer is: its bucket (the id's last 4 characters, 20 random bits of a ULID) and its field (the id's bytes) */
function pointerSlot (id: string): { bucket: string, field: Buffer | string } {
  return { bucket: id.slice(-4), field: compactId(id) }
}

/**
 * HGETALL of a subject's partition → its documents (versions in order), optionally only those of
 * some types or one id. Fields: `<id>` → type (the index), `<id>|v:<n>`, `<id>|file:<n>`,
 * `<id>|revoked`; ids never contain "|".
 */
function documentsFromPartition (fields: Record<string, Buffer>, wanted: { types?: string[], id?: string } = {}): StoredDocument[] {
  const types = wanted.types ? new Set(wanted.types) : undefined
  const documents = new Map<string, { type: string, document: StoredDocument }>()
  for (const [id, value] of Object.entries(fields)) {
    if (id.includes('|') || (wanted.id !== undefined && id !== wanted.id)) continue
    const type = value.toString('utf8')
    if (types && !types.has(type)) continue
    documents.set(id, { type, document: { versions: [], files: {} } })
  }
  for (const [field, value] of Object.entries(fields)) {
    const bar = field.indexOf('|')
    const id = field.slice(0, bar)
    const found = bar === -1 ? undefined : documents.get(id)
    if (!found) continue
    const part = field.slice(bar + 1)
    const { document } = found
    if (part.startsWith('v:')) document.versions.push(decodeVersion(value, id, found.type))
    else if (part.startsWith('file:')) document.files[Number(part.slice(5))] = JSON.parse(value.toString('utf8'))
    else if (part === 'revoked') document.revoked = JSON.parse(value.toString('utf8'))
  }
  const out: StoredDocument[] = []
  for (const { document } of documents.values()) {
    if (document.versions.length === 0) continue
    document.versions.sort((a, b) => a.version - b.version)
    out.push(document)
  }
  return out
}

type Reply = 1 | Buffer | null

export class RedisDocumentStore implements DocumentStore {
  private readonly scripts: {
    registerMany: (...args: Array<string | number | Buffer>) => Promise<Reply[]>
    lookupMany: (...args: Array<string | number | Buffer>) => Promise<Reply[]>
    putFirst: (...args: Array<string | Buffer>) => Promise<number>
    amend: (...args: Array<string | Buffer>) => Promise<number | string>
    rewrite: (...args: Array<string | Buffer>) => Promise<number>
  }

  /** whether records of the earlier layout may still be there: decided once, on first use */
  private legacyLayout: Promise<boolean> | undefined

  constructor (private readonly redis: RedisConnection) {
    this.scripts = {
      registerMany: redis.script('documentRegisterMany', REGISTER_MANY, undefined, 'bytes'),
      lookupMany: redis.script('documentLookupMany', LOOKUP_MANY, undefined, 'bytes'),
      putFirst: redis.script('documentPutFirst', PUT_FIRST_VERSION, 1),
      amend: redis.script('documentAmend', AMEND, 1),
      rewrite: redis.script('documentRewrite', REWRITE_VERSION, 1)
    }
  }

  private partitionKey (subjectHash: string): string { return this.redis.key(`s:${subjectHash}`, 'docs') }
  private registrationKey (bucket: string): string { return this.redis.key(`u:${bucket}`) }
  private pointerKey (bucket: string): string { return this.redis.key(`i:${bucket}`) }
  private get layoutKey (): string { return this.redis.key('store', 'layout') }
  /** the earlier layout's keys */
  private oldRegistrationKey (naturalKey: string): string { return this.redis.key(`n:${naturalKey}`) }
  private oldPointerKey (id: string): string { return this.redis.key(`d:${id}`) }

  /**
   * Whether the earlier layout's records must still be looked at: not once the store is marked
   * migrated, nor when none is there (a new store, which is then marked).
   */
  private async legacy (): Promise<boolean> {
    this.legacyLayout ??= (async () => {
      const marked = await this.redis.run(async () => await this.redis.client.get(this.layoutKey))
      if (marked === '2') return false
      if (await this.anyOldRecord()) return true
      await this.redis.run(async () => await this.redis.client.set(this.layoutKey, '2'))
      return false
    })().catch((err: unknown) => {
      this.legacyLayout = undefined
      throw err
    })
    return await this.legacyLayout
  }

  private async anyOldRecord (): Promise<boolean> {
    for (const pattern of [this.redis.key('n:*'), this.redis.key('d:*')]) {
      for await (const keys of this.scanKeys(pattern, 1000)) if (keys.length > 0) return true
    }
    return false
  }

  /** keys matching a pattern, a page at a time, on every master (a cluster spreads them) */
  private async * scanKeys (pattern: string, count: number): AsyncIterable<string[]> {
    for (const node of this.redis.masters()) {
      let cursor = '0'
      do {
        const [next, keys] = await this.redis.run(async () => await node.scan(cursor, 'MATCH', pattern, 'COUNT', count))
        cursor = next
        yield keys
      } while (cursor !== '0')
    }
  }

  async registerDocument (keys: DocumentKeys, first: StoredDocumentVersion): Promise<RegisterOutcome> {
    return (await this.registerDocuments([{ keys, first }]))[0] as RegisterOutcome
  }

  async registerDocuments (batch: ReadonlyArray<{ keys: DocumentKeys, first: StoredDocumentVersion }>): Promise<RegisterOutcome[]> {
    const legacy = await this.legacy()
    const outcomes: RegisterOutcome[] = []
    for (let start = 0; start < batch.length; start += REGISTER_BATCH) {
      const part = batch.slice(start, start + REGISTER_BATCH)
      const replies = this.redis.isCluster
        ? await Promise.all(part.map(async (one) => await this.reserve(one.keys, one.first, legacy)))
        : await this.registerOnOneServer(part, legacy)
      outcomes.push(...await Promise.all(part.map(async ({ keys, first }, i) => {
        const reply = replies[i]
        if (reply === 1) return { outcome: 'created' as const, document: { versions: [first], files: {} } }
        if (!reply) throw new StatedError('document registration record vanished')
        return await this.registeredBefore(keys, first, decodeRegistration(reply))
      })))
    }
    return outcomes
  }

  private async registerOnOneServer (batch: ReadonlyArray<{ keys: DocumentKeys, first: StoredDocumentVersion }>, legacy: boolean): Promise<Reply[]> {
    const keys: string[] = []
    const args: Array<string | Buffer> = [legacy ? '1' : '0']
    for (const { keys: k, first } of batch) {
      const record = registrationSlot(k.naturalKey)
      const pointer = pointerSlot(first.id)
      keys.push(this.registrationKey(record.bucket), this.partitionKey(k.subjectHash), this.pointerKey(pointer.bucket))
      if (legacy) keys.push(this.oldRegistrationKey(k.naturalKey))
      args.push(record.field, encodeRegistration(first), first.id, first.type, encodeVersion(first), pointer.field, encodeSubject(k.subjectHash))
    }
    return await this.redis.run(async () => await this.scripts.registerMany(keys.length, ...keys, ...args))
  }

  /** on a cluster: the registration record first (1 if this call wrote it, else the record found), then the version and the pointer */
  private async reserve (keys: DocumentKeys, first: StoredDocumentVersion, legacy: boolean): Promise<Reply> {
    const client = this.redis.client
    if (legacy) {
      const old = await this.redis.run(async () => await client.getBuffer(this.oldRegistrationKey(keys.naturalKey)))
      if (old) return old
    }
    const record = registrationSlot(keys.naturalKey)
    const key = this.registrationKey(record.bucket)
    const set = await this.redis.run(async () => await client.hsetnx(key, record.field, encodeRegistration(first)))
    if (set !== 1) return await this.redis.run(async () => await client.hgetBuffer(key, record.field))
    await this.completeRegistration(keys.subjectHash, first)
    return 1
  }

  /**
   * The natural key was registered before (or by another line of the same chunk): the same
   * content is `existing`, other content a `conflict`. The same content names the same subject,
   * so a registration a crash interrupted is completed in the partition of this one.
   */
  private async registeredBefore (keys: DocumentKeys, first: StoredDocumentVersion, record: Registration & { subjectHash?: string }): Promise<RegisterOutcome> {
    if (record.contentHash !== first.contentHash) {
      const found = await this.getDocument(record.id)
      return { outcome: 'conflict', document: found?.document ?? { versions: [{ ...first, id: record.id, createdAt: record.createdAt, contentHash: record.contentHash }], files: {} } }
    }
    const subjectHash = record.subjectHash ?? keys.subjectHash
    const found = await this.getDocumentIn(subjectHash, record.id)
    if (found) {
      // version 1 can be in while the id → subject pointer is not (a crash between the two writes)
      await this.putPointer(record.id, subjectHash)
      return { outcome: 'existing', document: found }
    }
    const completed = { ...first, id: record.id, createdAt: record.createdAt }
    await this.completeRegistration(subjectHash, completed)
    return { outcome: 'existing', document: { versions: [completed], files: {} } }
  }

  /** version 1 into the subject's partition, then the id → partition pointer; both idempotent */
  private async completeRegistration (subjectHash: string, first: StoredDocumentVersion): Promise<void> {
    await this.redis.run(async () => await this.scripts.putFirst(this.partitionKey(subjectHash), first.id, first.type, encodeVersion(first)))
    await this.putPointer(first.id, subjectHash)
  }

  private async putPointer (id: string, subjectHash: string): Promise<void> {
    const pointer = pointerSlot(id)
    await this.redis.run(async () => await this.redis.client.hset(this.pointerKey(pointer.bucket), pointer.field, encodeSubject(subjectHash)))
  }

  private async getDocumentIn (subjectHash: string, id: string): Promise<StoredDocument | undefined> {
    return documentsFromPartition(await this.partition(subjectHash), { id })[0]
  }

  private async partition (subjectHash: string): Promise<Record<string, Buffer>> {
    return await this.redis.run(async () => await this.redis.client.hgetallBuffer(this.partitionKey(subjectHash)))
  }

  async findRegistration (naturalKey: string): Promise<{ id: string, contentHash: string } | undefined> {
    return (await this.findRegistrations([naturalKey]))[0]
  }

  async findRegistrations (naturalKeys: readonly string[]): Promise<Array<{ id: string, contentHash: string } | undefined>> {
    const legacy = await this.legacy()
    const slots = naturalKeys.map(registrationSlot)
    let replies: Reply[]
    if (this.redis.isCluster) {
      const client = this.redis.client
      replies = await Promise.all(slots.map(async ({ bucket, field }, i) => await this.redis.run(async () =>
        await client.hgetBuffer(this.registrationKey(bucket), field) ??
          (legacy ? await client.getBuffer(this.oldRegistrationKey(naturalKeys[i] as string)) : null))))
    } else {
      replies = []
      for (let start = 0; start < slots.length; start += REGISTER_BATCH) {
        const part = slots.slice(start, start + REGISTER_BATCH)
        const keys = part.map(({ bucket }) => this.registrationKey(bucket))
        if (legacy) keys.push(...naturalKeys.slice(start, start + part.length).map((key) => this.oldRegistrationKey(key)))
        replies.push(...await this.redis.run(async () => await this.scripts.lookupMany(keys.length, ...keys, legacy ? '1' : '0', ...part.map(({ field }) => field))))
      }
    }
    return replies.map((reply) => {
      if (!reply || reply === 1) return undefined
      const { id, contentHash } = decodeRegistration(reply)
      return { id, contentHash }
    })
  }

  async getDocument (id: string): Promise<{ document: StoredDocument, subjectHash: string } | undefined> {
    const pointer = pointerSlot(id)
    const client = this.redis.client
    const found = await this.redis.run(async () => await client.hgetBuffer(this.pointerKey(pointer.bucket), pointer.field))
    let subjectHash = found ? decodeSubject(found) : undefined
    if (subjectHash === undefined && await this.legacy()) {
      subjectHash = await this.redis.run(async () => await client.get(this.oldPointerKey(id))) ?? undefined
    }
    if (subjectHash === undefined) return undefined
    const document = await this.getDocumentIn(subjectHash, id)
    return document ? { document, subjectHash } : undefined
  }

  async amendDocument (subjectHash: string, next: StoredDocumentVersion, expectedVersion: number, options: { carryFile?: boolean } = {}): Promise<false | { file?: StoredDocumentFile }> {
    const done = await this.redis.run(async () => await this.scripts.amend(this.partitionKey(subjectHash), next.id, String(expectedVersion), encodeVersion(next), options.carryFile ? '1' : '0'))
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
    return documentsFromPartition(await this.partition(subjectHash), types ? { types } : {})
  }

  async * documentIdPages (pageSize: number): AsyncIterable<string[]> {
    const client = this.redis.client
    for await (const keys of this.scanKeys(this.redis.key('i:*'), Math.max(1, Math.ceil(pageSize / 8)))) {
      const ids: string[] = []
      for (const key of keys) {
        for (const field of await this.redis.run(async () => await client.hkeysBuffer(key))) {
          // the bytes of a ULID; an id of another form (a test's) is its own text
          ids.push(field.length === 16 ? expandId(field) : field.toString('utf8'))
        }
      }
      if (ids.length > 0) yield ids
    }
    if (await this.legacy()) {
      for await (const keys of this.scanKeys(this.redis.key('d:*'), pageSize)) {
        if (keys.length > 0) yield keys.map((key) => this.tagValue(key, 'd:'))
      }
    }
  }

  async rewriteDocumentVersion (subjectHash: string, previous: StoredDocumentVersion, next: StoredDocumentVersion): Promise<boolean> {
    const done = await this.redis.run(async () => await this.scripts.rewrite(this.partitionKey(subjectHash), `${previous.id}|v:${previous.version}`, encodeVersion(next), encodeVersion(previous), JSON.stringify(previous)))
    return done === 1
  }

  /**
   * Rewrites what the earlier layout stored into this one: each registration record and id
   * pointer into its bucket (the old key deleted once it is there), each version stored as
   * JSON as a compact tuple. Repeatable and resumable: what is done is not found again. Marks
   * the store migrated at the end. `progress` is told how many records were moved so far.
   */
  async migrateLayout (progress?: (moved: { registrations: number, pointers: number, versions: number }) => void): Promise<{ registrations: number, pointers: number, versions: number }> {
    const moved = { registrations: 0, pointers: 0, versions: 0 }
    const client = this.redis.client
    moved.registrations = await this.moveToBuckets('n:', (naturalKey, json) => {
      const slot = registrationSlot(naturalKey)
      return { bucket: this.registrationKey(slot.bucket), field: slot.field, value: encodeRegistration(JSON.parse(json) as Registration) }
    }, (count) => progress?.({ ...moved, registrations: count }))
    moved.pointers = await this.moveToBuckets('d:', (id, subjectHash) => {
      const slot = pointerSlot(id)
      return { bucket: this.pointerKey(slot.bucket), field: slot.field, value: encodeSubject(subjectHash) }
    }, (count) => progress?.({ ...moved, pointers: count }))
    for await (const keys of this.scanKeys(this.redis.key('s:*', 'docs'), 200)) {
      for (const key of keys) {
        const subjectHash = this.tagValue(key.slice(0, -':docs'.length), 's:')
        const fields = await this.redis.run(async () => await client.hgetallBuffer(key))
        for (const document of documentsFromPartition(fields)) {
          for (const version of document.versions) {
            // JSON on purpose (data MessagePack would not give back as it was): nothing to rewrite
            if (!isJson(fields[`${version.id}|v:${version.version}`] as Buffer) || !jsonPlain(version.data)) continue
            if (await this.rewriteDocumentVersion(subjectHash, version, version)) moved.versions++
          }
        }
      }
      progress?.(moved)
    }
    await this.redis.run(async () => await client.set(this.layoutKey, '2'))
    this.legacyLayout = Promise.resolve(false)
    return moved
  }

  /** what an earlier-layout key holds in its hash tag after `kind`: `<prefix>{n:<natural key>}` → the natural key */
  private tagValue (key: string, kind: string): string {
    return key.slice(this.redis.key(kind).length - 1, -1)
  }

  /**
   * Moves every earlier-layout key of a `kind` (a string each) into the bucket `into` names: the
   * bucket first, then the old key deleted, so a run interrupted in between finds it again.
   * Returns how many it moved, telling `progress` after each page.
   */
  private async moveToBuckets (kind: string, into: (tagValue: string, value: string) => { bucket: string, field: Buffer | string, value: Buffer }, progress: (count: number) => void): Promise<number> {
    const client = this.redis.client
    let count = 0
    for await (const keys of this.scanKeys(this.redis.key(`${kind}*`), 500)) {
      for (const key of keys) {
        const value = await this.redis.run(async () => await client.get(key))
        if (value === null) continue
        const target = into(this.tagValue(key, kind), value)
        await this.redis.run(async () => await client.hsetnx(target.bucket, target.field, target.value))
        await this.redis.run(async () => await client.del(key))
        count++
      }
      progress(count)
    }
    return count
  }
}
