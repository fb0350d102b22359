import { execFile } from 'node:child_process'
import { isDeepStrictEqual, promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import fc from 'fast-check'
import { startTestRedis } from '../lib/redis-server.js'
import { testRedisStore } from '../lib/redis-store.js'
import { coverageEnv } from '../lib/child-coverage.js'
import { RedisStores as RedisStoresClass } from '../../src/store/index.js'
import type { RedisStores, StoredDocumentVersion } from '../../src/store/index.js'
import { decodeVersion, encodeVersion } from '../../src/store/redis/documents-codec.js'
import { compactId, expandId } from '../../src/store/redis/binary.js'

/**
 * The compact layout of documents in Redis, and an upgrade from the earlier one: a store whose
 * documents were written as JSON, with a key per registration record and per id pointer, is read
 * as it is, and `reuse-gateway store migrate` rewrites it without losing or changing anything.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const root = fileURLToPath(new URL('../../', import.meta.url))

const version = (id: string, n: number, extra: Partial<StoredDocumentVersion> = {}): StoredDocumentVersion => ({
  id,
  version: n,
  type: 'giay-khai-sinh',
  typeSchemaVersion: 1,
  subject: { kind: 'citizen', id: '001099012345' },
  issuer: '000.00.12.H41',
  procedureCode: '1.001193',
  dossierCode: '000.00.41.H41-260101-0001',
  documentNumber: '12/2026',
  issuedAt: '2026-01-01',
  validFrom: '2026-01-01',
  data: { fullName: 'Nguyễn Văn An', birthPlace: { province: 'Hà Nội' } },
  createdAt: '2026-01-01T00:00:00.123Z',
  contentHash: 'c'.repeat(64),
  ...extra
})

/** what the earlier layout wrote for one registered document: its record, its pointer, its partition */
async function writeEarlierLayout (stores: RedisStores, doc: { naturalKey: string, subjectHash: string, first: StoredDocumentVersion, file?: object }): Promise<void> {
  const { first } = doc
  await stores.client.set(stores.key(`n:${doc.naturalKey}`), JSON.stringify({ id: first.id, subjectHash: doc.subjectHash, contentHash: first.contentHash, createdAt: first.createdAt }))
  await stores.client.set(stores.key(`d:${first.id}`), doc.subjectHash)
  const partition = stores.key(`s:${doc.subjectHash}`, 'docs')
  await stores.client.hset(partition, first.id, first.type, `${first.id}|v:1`, JSON.stringify(first))
  if (doc.file) await stores.client.hset(partition, `${first.id}|file:1`, JSON.stringify(doc.file))
}

const prefixOf = (stores: RedisStores): string => stores.key('x').slice(0, -'{x}'.length)

t.test('a version reads back exactly as written, whatever its data', async (t) => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 }))
  })).value
  fc.assert(fc.property(
    fc.dictionary(fc.string(), json, { maxKeys: 6 }),
    fc.option(fc.constantFrom('2030-01-01', '2030-01-01T00:00:00Z'), { nil: undefined }),
    fc.option(fc.string(), { nil: undefined }),
    fc.constantFrom('2026-01-01T00:00:00.123Z', '2026-01-01T07:00:00+07:00', 'x'),
    fc.constantFrom('c'.repeat(64), 'h1', 'C'.repeat(64)),
    fc.constantFrom<'citizen' | 'organization'>('citizen', 'organization'),
    (data, validUntil, amendmentReason, createdAt, contentHash, kind) => {
      const v = version('01J00000000000000000000001', 2, { data: JSON.parse(JSON.stringify(data)), createdAt, contentHash, subject: { kind, id: '0101234567' }, ...(validUntil ? { validUntil } : {}), ...(amendmentReason !== undefined ? { amendmentReason } : {}) })
      return isDeepStrictEqual(decodeVersion(encodeVersion(v), v.id, v.type), v)
    }
  ), { numRuns: 300 })
  t.pass('300 versions of random data read back deep-equal')
  // found by the property once: an own `__proto__` key, which MessagePack decoding would turn into a prototype
  const proto = version('01J00000000000000000000001', 2, { data: JSON.parse('{"__proto__":{"x":1},"a":[{"__proto__":null}]}'), subject: { kind: 'citizen', id: '0101234567' } })
  t.ok(isDeepStrictEqual(decodeVersion(encodeVersion(proto), proto.id, proto.type), proto), 'a `__proto__` key in the data reads back as the own key it was')
  const v = version('01J00000000000000000000001', 1)
  t.ok(encodeVersion(v).length < JSON.stringify(v).length * 0.8, `smaller than its JSON (${encodeVersion(v).length} vs ${JSON.stringify(v).length} bytes)`)
})

t.test('a ULID is 16 bytes and back, in the same order', async (t) => {
  fc.assert(fc.property(fc.array(fc.ulid(), { minLength: 2, maxLength: 8 }), (ids) => {
    const bytes = ids.map((id) => compactId(id) as Buffer)
    for (const [i, b] of bytes.entries()) if (b.length !== 16 || expandId(b) !== ids[i]) return false
    const byText = [...ids].sort()
    const byBytes = [...bytes].sort(Buffer.compare).map(expandId)
    return JSON.stringify(byText) === JSON.stringify(byBytes)
  }))
  t.equal(compactId('not-a-ulid'), 'not-a-ulid', 'another id is kept as it is')
})

t.test('documents written by the earlier layout are read, registered once, amended, listed, then migrated', async (t) => {
  const stores = await testRedisStore(t, redis)
  const subjectHash = 'a'.repeat(64)
  const old = version('01J00000000000000000000010', 1)
  const file = { mediaType: 'application/pdf', size: 3, sha256: 'f'.repeat(64), uploadedAt: '2026-01-02T00:00:00.000Z' }
  await writeEarlierLayout(stores, { naturalKey: 'nk-old', subjectHash, first: old, file })
  const documents = stores.documents

  const read = await documents.getDocument(old.id)
  t.same(read, { document: { versions: [old], files: { 1: file } }, subjectHash }, 'read as it was written')
  t.same(await documents.findRegistration('nk-old'), { id: old.id, contentHash: old.contentHash })
  const again = await documents.registerDocument({ subjectHash, naturalKey: 'nk-old' }, { ...old, id: '01J00000000000000000000011' })
  t.equal(again.outcome, 'existing', 'registered once: the same content again is existing')
  t.equal(again.document.versions[0]?.id, old.id, 'under the id it had')
  const [conflict] = await documents.registerDocuments([{ keys: { subjectHash, naturalKey: 'nk-old' }, first: { ...old, id: '01J00000000000000000000012', contentHash: 'd'.repeat(64) } }])
  t.equal(conflict?.outcome, 'conflict', 'other content under its natural key is a conflict')
  const fresh = version('01J00000000000000000000013', 1, { documentNumber: '13/2026' })
  t.equal((await documents.registerDocument({ subjectHash, naturalKey: 'nk-new' }, fresh)).outcome, 'created', 'a new document beside it')
  t.same(await documents.amendDocument(subjectHash, version(old.id, 2), 1, { carryFile: true }), { file: { ...file, carriedFrom: 1 } }, 'amended, its file carried')
  const listed: string[] = []
  for await (const page of documents.documentIdPages(10)) listed.push(...page)
  t.same([...new Set(listed)].sort(), [old.id, fresh.id], 'both listed')
  const before = await documents.documentsOfSubject(subjectHash)

  const moved = await documents.migrateLayout()
  t.same(moved, { registrations: 1, pointers: 1, versions: 1 }, 'the old record, pointer and JSON version moved')
  t.equal(await stores.client.exists(stores.key('n:nk-old'), stores.key(`d:${old.id}`)), 0, 'the earlier keys are gone')
  const stored = await stores.client.hgetBuffer(stores.key(`s:${subjectHash}`, 'docs'), `${old.id}|v:1`)
  t.not(stored?.[0], 0x7b, 'the version is no longer JSON')
  t.same(await documents.documentsOfSubject(subjectHash), before, 'everything reads as before')
  t.same(await documents.findRegistration('nk-old'), { id: old.id, contentHash: old.contentHash })
  t.same(await documents.migrateLayout(), { registrations: 0, pointers: 0, versions: 0 }, 'run again, nothing left to do')

  // another process, started after the migration, reads the same
  const other = new RedisStoresClass({ url: redis.url, keyPrefix: prefixOf(stores), commandTimeoutMs: 1000, quitTimeoutMs: 500 })
  await other.connect()
  t.teardown(async () => await other.close())
  t.same((await other.documents.getDocument(old.id))?.document.versions.map((v) => v.version), [1, 2])
  t.equal((await other.documents.registerDocument({ subjectHash, naturalKey: 'nk-old' }, { ...old, id: '01J00000000000000000000014' })).outcome, 'existing', 'still registered once after the migration')
})

t.test('reuse-gateway store migrate: with progress, resumable, and gateways read the store all along', async (t) => {
  const stores = await testRedisStore(t, redis)
  const subjects = ['1', '2', '3'].map((c) => c.repeat(64))
  const firsts = subjects.map((subjectHash, i) => ({ naturalKey: `nk-${i}`, subjectHash, first: version(`01J0000000000000000000002${i}`, 1, { documentNumber: `${i}/2026` }) }))
  for (const doc of firsts) await writeEarlierLayout(stores, doc)
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'store', 'migrate', '--quiet'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...coverageEnv(), REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefixOf(stores) },
    timeout: 60_000
  })
  t.same(JSON.parse(stdout), { registrations: 3, pointers: 3, versions: 3 })
  for (const doc of firsts) {
    t.same(await stores.documents.getDocument(doc.first.id), { document: { versions: [doc.first], files: {} }, subjectHash: doc.subjectHash })
    t.same(await stores.documents.findRegistration(doc.naturalKey), { id: doc.first.id, contentHash: doc.first.contentHash })
  }
  t.equal(await stores.client.get(stores.key('store', 'layout')), '2', 'the store is marked migrated')
})
