import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { inspect, promisify } from 'node:util'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { ConfigError, loadConfig } from '../src/config.js'
import { canonicalDigest } from '../src/lib/digest.js'
import { BLOB_MAGIC, Keyring, SEGMENT } from '../src/lib/encryption.js'
import { rotateEncryption } from '../src/cli/encryption.js'
import { FileBlobStore } from '../src/store/blob-store.js'
import { MemoryStores } from '../src/store/index.js'
import type { RedisStores, StoredDocumentVersion } from '../src/store/index.js'
import { build, captureLogs } from './helper.js'
import { adminEnv, register } from './lib/agencies.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { ISSUABLE, PDF, bearer, buildWorld, downloadLink, reuseQuery, sample } from './lib/world.js'
import type { World } from './lib/world.js'
import { coverageEnv } from './lib/child-coverage.js'

/**
 * Encryption at rest: with ENCRYPTION_KEYS set, what Redis, the embedded store and the disk
 * hold is ciphertext, and every API still answers in clear; a ciphertext altered or moved is
 * refused, never returned as data; keys rotate without losing anything; and without the
 * variable nothing changes.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const K1 = randomBytes(32)
const K2 = randomBytes(32)
const keyList = (...keys: Array<[string, Buffer]>): string => keys.map(([id, key]) => `${id}:${key.toString('base64')}`).join(',')
/** a string that appears nowhere but in the data it is put in */
const marker = (): string => `Mat Ma ${randomBytes(6).toString('hex')}`
const blobDir = (): string => join(mkdtempSync(join(tmpdir(), 'rg-enc-')), 'blobs')

/** Indexes, as the world's issuer, a birth certificate of the world's citizen whose full name is `name`; returns its id. */
async function indexNamed (w: World, name: string, app: FastifyInstance = w.app): Promise<string> {
  const doc = sample('giay-khai-sinh', (d) => d.subject.id !== w.citizen)
  doc.subject = { kind: 'citizen', id: w.citizen }
  doc.documentNumber = `${doc.documentNumber}-${randomBytes(3).toString('hex')}`
  doc.data.fullName = name
  const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: doc })
  if (res.statusCode !== 201) throw new Error(`indexing failed: ${res.body}`)
  return res.json().id
}

async function amendNamed (w: World, id: string, name: string): Promise<void> {
  const current = (await w.app.inject({ method: 'GET', url: `/v1/documents/${id}`, headers: bearer(w.tokens.issuer) })).json()
  const res = await w.app.inject({ method: 'POST', url: `/v1/documents/${id}/amend`, headers: bearer(w.tokens.issuer), payload: { procedureCode: current.procedureCode, dossierCode: current.dossierCode, data: { ...current.data, fullName: name }, reason: 'cải chính họ tên' } })
  if (res.statusCode !== 201) throw new Error(`amending failed: ${res.body}`)
}

/** Everything under the store's key prefix, as Redis holds it. */
async function rawRedis (store: RedisStores): Promise<string> {
  const client = store.client as Redis
  const prefix = store.key('x').slice(0, -'{x}'.length)
  const out: string[] = []
  for (const key of await client.keys(`${prefix}*`)) {
    const type = await client.type(key)
    if (type === 'string') out.push(key, await client.get(key) ?? '')
    else if (type === 'hash') out.push(key, JSON.stringify(await client.hgetall(key)))
    else if (type === 'zset') out.push(key, ...await client.zrange(key, 0, -1))
    else if (type === 'list') out.push(key, ...await client.lrange(key, 0, -1))
    else if (type === 'set') out.push(key, ...await client.smembers(key))
    else out.push(key, type)
  }
  return out.join('\n')
}

/** The stored files, as the disk holds them. */
function rawFiles (dir: string): Buffer[] {
  const out: Buffer[] = []
  for (const folder of readdirSync(dir)) {
    if (folder === 'tmp') continue
    for (const file of readdirSync(join(dir, folder))) out.push(readFileSync(join(dir, folder, file)))
  }
  return out
}

async function readDocument (app: FastifyInstance, w: World, id: string, version?: number): Promise<{ statusCode: number, body: string, data?: Record<string, unknown> }> {
  const res = await app.inject({ method: 'GET', url: `/v1/documents/${id}${version ? `?version=${version}` : ''}`, headers: bearer(w.tokens.issuer) })
  return { statusCode: res.statusCode, body: res.body, ...(res.statusCode === 200 ? { data: res.json().data } : {}) }
}

async function download (app: FastifyInstance, w: World, link: string): Promise<{ statusCode: number, body: Buffer }> {
  const res = await app.inject({ method: 'GET', url: link, headers: bearer(w.tokens.requester) })
  return { statusCode: res.statusCode, body: res.rawPayload }
}

async function citizenNames (app: FastifyInstance, w: World): Promise<string[]> {
  const res = await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: bearer(w.tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen } } })
  if (res.statusCode !== 200) throw new Error(`portal failed: ${res.body}`)
  return res.json().documents.map((d: { data: { fullName?: string } }) => d.data.fullName).filter(Boolean)
}

async function reusedNames (app: FastifyInstance, w: World): Promise<{ statusCode: number, names: string[], body: string }> {
  const res = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  const names = res.statusCode === 200 ? res.json().results[0].documents.map((d: { data: { fullName: string } }) => d.data.fullName) : []
  return { statusCode: res.statusCode, names, body: res.body }
}

t.test('encrypted at rest on Redis: Redis and the disk hold ciphertext, every API answers in clear', async (t) => {
  const store = await testRedisStore(t, redis)
  const logs = captureLogs()
  const w = await buildWorld(t, { store, logs, env: { ENCRYPTION_KEYS: keyList(['k1', K1]) } })
  const first = marker()
  const second = marker()
  const id = await indexNamed(w, first)
  await amendNamed(w, id, second)

  const raw = await rawRedis(store)
  t.ok(raw.includes(id) && raw.includes('enc:v1:k1:'), 'the dump holds the document, sealed with k1')
  for (const name of [first, second, w.samples.birth.data.fullName as string]) {
    t.notOk(raw.includes(name), `Redis does not hold ${name} in clear`)
  }
  const files = rawFiles(w.app.config.blobDir)
  t.equal(files.length, 1)
  for (const file of files) {
    t.ok(file.subarray(0, BLOB_MAGIC.length).equals(BLOB_MAGIC), 'the file on disk is an encrypted one')
    t.equal(file.indexOf(PDF.subarray(9)), -1, 'and does not hold the file\'s bytes')
  }

  t.equal((await readDocument(w.app, w, id)).data?.fullName, second, 'the issuer reads the latest version in clear')
  t.equal((await readDocument(w.app, w, id, 1)).data?.fullName, first, 'and every earlier one')
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  t.equal(res.statusCode, 200)
  const released = res.json().results[0].documents as Array<{ id: string, data: Record<string, unknown>, attestation: string }>
  const ours = released.find((d) => d.id === id)
  t.equal(ours?.data.fullName, second, 'the requester receives the data in clear, minimized')
  t.same(Object.keys(ours?.data ?? {}).sort(), ['dateOfBirth', 'fullName'])
  t.equal(decodeJwt(ours?.attestation as string).data_sha256, canonicalDigest(ours?.data), 'the attestation is over the data in clear')
  t.same((await download(w.app, w, await downloadLink(w))).body, PDF, 'the file downloads as uploaded')
  t.ok((await citizenNames(w.app, w)).includes(second), 'the portal shows the citizen the data in clear')
  const started = logs.lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('encryption at rest on'))
  t.same(started?.encryptionAtRest, { activeKeyId: 'k1', keyIds: ['k1'] }, 'the start says encryption is on, by key id only')
})

t.test('without ENCRYPTION_KEYS nothing changes: data and files are stored as sent', async (t) => {
  const store = new MemoryStores()
  const logs = captureLogs()
  const w = await buildWorld(t, { store, logs })
  const name = marker()
  const id = await indexNamed(w, name)
  t.ok(JSON.stringify(await store.documents.getDocument(id)).includes(name), 'the store holds the data as sent')
  t.same(rawFiles(w.app.config.blobDir), [PDF], 'the disk holds the file as uploaded')
  t.equal((await readDocument(w.app, w, id)).data?.fullName, name)
  t.same((await download(w.app, w, await downloadLink(w))).body, PDF)
  t.ok(logs.lines.some((line) => line.encryptionAtRest === false), 'the start says encryption at rest is off')

  // a type whose schema lets anything through still cannot take data that would read as sealed
  const { code: _code, schemaVersion: _version, ...definition } = (await w.app.inject({ method: 'GET', url: '/v1/document-types/giay-khai-sinh', headers: bearer(w.tokens.issuer) })).json()
  t.equal((await w.app.inject({ method: 'PUT', url: '/v1/document-types/giay-tu-do', headers: bearer(w.tokens.admin), payload: { ...definition, schema: { type: 'object' } } })).statusCode, 201)
  await register(w.app, w.tokens.admin, w.agencies.issuer, ['issuer'], { issuableTypes: [...ISSUABLE.issuer, 'giay-tu-do'] })
  const doc = { ...sample('giay-khai-sinh'), type: 'giay-tu-do', data: { $sealed: `enc:v1:k1:${'A'.repeat(16)}:${'A'.repeat(22)}` } }
  const refused = await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: doc })
  t.equal(refused.statusCode, 422)
  t.equal(refused.json().code, 'data_invalid')
  t.equal((await w.app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(w.tokens.issuer), payload: { ...doc, data: { $sealed: 'a note', other: 1 } } })).statusCode, 201, 'a field of that name among others is data like any other')
})

t.test('an altered or moved ciphertext is refused, never returned as data', async (t) => {
  const store = new MemoryStores()
  const logs = captureLogs()
  const w = await buildWorld(t, { store, logs, env: { ENCRYPTION_KEYS: keyList(['k1', K1]) } })
  const name = marker()
  const id = await indexNamed(w, name)
  t.ok(!JSON.stringify(await store.documents.getDocument(id)).includes(name), 'the embedded store holds ciphertext too')

  // a file altered on disk: the download fails before a byte of it is sent
  const [folder] = readdirSync(w.app.config.blobDir).filter((f) => f !== 'tmp')
  const path = join(w.app.config.blobDir, folder as string, readdirSync(join(w.app.config.blobDir, folder as string))[0] as string)
  const sealed = readFileSync(path)
  const altered = Buffer.from(sealed)
  altered[altered.length - 20] = (altered[altered.length - 20] as number) ^ 1
  writeFileSync(path, altered)
  const bad = await download(w.app, w, await downloadLink(w))
  t.equal(bad.statusCode, 500)
  t.equal(JSON.parse(bad.body.toString()).code, 'internal_error')
  t.equal(bad.body.indexOf(PDF.subarray(9)), -1, 'nothing of the file is sent')
  writeFileSync(path, sealed)
  t.same((await download(w.app, w, await downloadLink(w))).body, PDF, 'restored, it downloads again')

  const found = await store.documents.getDocument(id)
  const version = found?.document.versions[0] as StoredDocumentVersion
  const envelope = version.data.$sealed as string
  const set = async (data: Record<string, unknown>): Promise<void> => {
    const current = (await store.documents.getDocument(id))?.document.versions[0] as StoredDocumentVersion
    t.ok(await store.documents.rewriteDocumentVersion(found?.subjectHash as string, current, { ...current, data }))
  }
  const i = envelope.length - 30
  await set({ $sealed: envelope.slice(0, i) + (envelope[i] === 'A' ? 'B' : 'A') + envelope.slice(i + 1) })
  let read = await readDocument(w.app, w, id)
  t.equal(read.statusCode, 500, 'altered data: refused')
  t.equal(JSON.parse(read.body).code, 'internal_error')
  t.notOk(read.body.includes(name))
  const reuse = await reusedNames(w.app, w)
  t.equal(reuse.statusCode, 500, 'a reuse query releases nothing')
  t.notOk(reuse.body.includes(name))
  const failures = logs.lines.filter((line) => line.level === 50).map((line) => line.err as { type: string, message: string })
  t.ok(failures.some((err) => err.type === 'DecryptionError' && err.message.includes(`document ${id} version 1`)), 'the operator is told which value, at error level')
  t.ok(failures.some((err) => err.type === 'DecryptionError' && err.message.includes('file ')), 'and which file')

  // another document's sealed data put in its place does not open there either
  const land = (await store.documents.getDocument(w.docs.land))?.document.versions[0] as StoredDocumentVersion
  await set(land.data)
  read = await readDocument(w.app, w, id)
  t.equal(read.statusCode, 500, 'data moved from another document: refused')
  t.notOk('data' in JSON.parse(read.body))

  await set({ $sealed: envelope })
  t.equal((await readDocument(w.app, w, id)).data?.fullName, name, 'put back, it reads again')
})

t.test('a value under a key no longer configured is an operator error: 500, logged by key id, never the key', async (t) => {
  const store = new MemoryStores()
  const dir = blobDir()
  const w = await buildWorld(t, { store, env: { ENCRYPTION_KEYS: keyList(['k1', K1]), BLOB_DIR: dir } })
  for (const env of [{ ENCRYPTION_KEYS: keyList(['k2', K2]) }, {}] as Array<Record<string, string>>) {
    const logs = captureLogs()
    const app = await build(t, { store, logs, env: { OUTBOX_WORKER: 'false', ...adminEnv(w.agencies.admin), BLOB_DIR: dir, ...env } })
    const read = await readDocument(app, w, w.docs.birth)
    t.equal(read.statusCode, 500)
    t.equal(JSON.parse(read.body).code, 'internal_error')
    t.equal((await download(app, w, await downloadLink(w))).statusCode, 500, 'the file neither')
    const errors = logs.lines.filter((line) => line.level === 50).map((line) => (line.err as { type: string, message: string }))
    t.ok(errors.some((err) => err.type === 'UnknownKeyError' && err.message.includes(`document ${w.docs.birth}`) && err.message.includes('key "k1"')), 'the log names the document and the key id')
    t.ok(errors.some((err) => err.type === 'UnknownKeyError' && err.message.includes('file ')), 'and the file')
    t.notOk(logs.text().includes(K1.toString('base64')) || logs.text().includes(K1.toString('base64url')), 'never the key')
  }
})

const root = fileURLToPath(new URL('../', import.meta.url))
async function cli (args: string[], env: Record<string, string>): Promise<{ stdout: string, stderr: string }> {
  return await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...coverageEnv(), ...env }, timeout: 60_000 })
}

t.test('data stored in clear still reads once encryption is on; rotation encrypts it, moves it to a new key, and the old key can go', async (t) => {
  const store = await testRedisStore(t, redis)
  const dir = blobDir()
  const w = await buildWorld(t, { store, env: { BLOB_DIR: dir } })
  const name = marker()
  const id = await indexNamed(w, name)
  const gateway = async (keys?: string): Promise<FastifyInstance> => await build(t, { store, env: { OUTBOX_WORKER: 'false', ...adminEnv(w.agencies.admin), BLOB_DIR: dir, ...(keys ? { ENCRYPTION_KEYS: keys } : {}) } })

  // turned on: what was stored in clear reads as before, and what is written now is sealed
  const on = await gateway(keyList(['k1', K1]))
  t.equal((await readDocument(on, w, id)).data?.fullName, name, 'data stored in clear still reads')
  t.same((await download(on, w, await downloadLink(w))).body, PDF, 'a file stored in clear still downloads')
  const amended = marker()
  w.app = on
  await amendNamed(w, id, amended)
  t.notOk((await rawRedis(store)).includes(amended), 'a new version is stored sealed')

  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: store.key('x').slice(0, -'{x}'.length), BLOB_DIR: dir }
  const [status, noKey] = await Promise.all([
    cli(['encryption', 'status'], { ...env, ENCRYPTION_KEYS: keyList(['k1', K1]) }),
    cli(['encryption', 'rotate'], env).catch((err: { stderr: string, code: number }) => err)
  ])
  t.match(noKey, { code: 1, stderr: /no encryption key/ }, 'rotate without a key says so')
  t.same(JSON.parse((status as { stdout: string }).stdout), { activeKeyId: 'k1', documentVersions: { clear: 5, k1: 1 }, files: { clear: 1 } }, 'status counts what each key protects')

  // a new key first, the old one after it: every value moves to the new key
  const both = keyList(['k2', K2], ['k1', K1])
  const rotated = JSON.parse((await cli(['encryption', 'rotate'], { ...env, ENCRYPTION_KEYS: both })).stdout)
  t.match(rotated, { activeKeyId: 'k2', documents: { reencrypted: 5, current: 0, missing: 0, changed: 0 }, files: { reencrypted: 1, current: 0 } })
  const again = await rotateEncryption({ store, keyring: new Keyring([{ id: 'k2', key: K2 }, { id: 'k1', key: K1 }]), blobDir: dir, pepper: on.config.subjectPepper, progress: false })
  t.match(again, { documents: { reencrypted: 0, current: 5 }, files: { reencrypted: 0, current: 1 } }, 'run again, it redoes nothing')
  const raw = await rawRedis(store)
  t.notOk(raw.includes(name) || raw.includes(amended) || raw.includes(w.samples.birth.data.fullName as string), 'Redis holds no data in clear')

  // the old key removed from the configuration: everything still reads
  const only = await gateway(keyList(['k2', K2]))
  t.equal((await readDocument(only, w, id, 1)).data?.fullName, name)
  t.equal((await readDocument(only, w, id)).data?.fullName, amended)
  t.equal((await readDocument(only, w, w.docs.land)).data?.parcelNumber, w.samples.land.data.parcelNumber)
  w.app = only
  t.same((await download(only, w, await downloadLink(w))).body, PDF)
  t.same((await reusedNames(only, w)).names.sort(), [amended, w.samples.birth.data.fullName, w.samples.otherIssuers.data.fullName].sort())
  t.ok((await citizenNames(only, w)).includes(amended))
})

t.test('files: large ones stream in authenticated segments; cut, reordered, altered or moved ones are refused', async (t) => {
  const dir = blobDir()
  const keyring = new Keyring([{ id: 'k1', key: K1 }])
  const blobs = new FileBlobStore(dir, keyring)
  const read = async (sha256: string): Promise<Buffer> => {
    const found = await blobs.open(sha256)
    if (!found) throw new Error('missing')
    const chunks: Buffer[] = []
    for await (const chunk of found.stream) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }
  const content = randomBytes(3 * SEGMENT + 5)
  const put = async (bytes: Buffer) => await blobs.put(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { maxBytes: 10 * SEGMENT })
  const { sha256, size } = await put(content)
  t.equal(size, content.length)
  t.same(await read(sha256), content, 'read back whole')
  t.equal((await blobs.open(sha256))?.size, content.length, 'the size is the size in clear')
  t.same(await put(content), { sha256, size }, 'the same file again: the same address')
  t.equal(await blobs.count(), 1, 'kept once')
  const empty = await put(Buffer.alloc(0))
  t.same(await read(empty.sha256), Buffer.alloc(0), 'an empty file too')

  const path = join(dir, sha256.slice(0, 2), sha256)
  const sealed = readFileSync(path)
  const header = sealed.length - (content.length + 4 * 16)
  const segment = (i: number): Buffer => sealed.subarray(header + i * (SEGMENT + 16), header + (i + 1) * (SEGMENT + 16))
  const refused = async (bytes: Buffer, why: string, address = sha256): Promise<void> => {
    writeFileSync(join(dir, address.slice(0, 2), address), bytes)
    await t.rejects(read(address), { name: 'DecryptionError' }, why)
  }
  const altered = Buffer.from(sealed)
  altered[header + SEGMENT + 100] = (altered[header + SEGMENT + 100] as number) ^ 0x80
  await refused(altered, 'a byte altered in a middle segment')
  await refused(sealed.subarray(0, header + 3 * (SEGMENT + 16)), 'cut after a whole segment')
  await refused(Buffer.concat([sealed.subarray(0, header), segment(1), segment(0), segment(2), segment(3)]), 'segments reordered')
  await refused(sealed, 'another file\'s ciphertext under this address', empty.sha256)
  writeFileSync(path, sealed)
  t.same(await read(sha256), content)
  t.ok(statSync(path).size > content.length, 'stored with its header and tags')
})

t.test('a wrong key configuration stops the start, naming the variable and never echoing a key', async (t) => {
  const short = randomBytes(16).toString('base64')
  const refused = (env: Record<string, string>, message: RegExp, secret?: string): void => {
    try {
      loadConfig({ NODE_ENV: 'test', ...env })
      t.fail(`accepted ${JSON.stringify(Object.keys(env))}`)
    } catch (err) {
      t.type(err, ConfigError)
      t.match((err as Error).message, message)
      if (secret) t.notOk((err as Error).message.includes(secret), 'the key is not echoed')
    }
  }
  refused({ ENCRYPTION_KEYS: `k1:${short}` }, /ENCRYPTION_KEYS: key k1 is 16 bytes; AES-256 needs 32/, short)
  refused({ ENCRYPTION_KEYS: `k1:${K1.toString('base64')},k2:not*base64!` }, /ENCRYPTION_KEYS: key k2 is not base64/, K1.toString('base64'))
  refused({ ENCRYPTION_KEYS: keyList(['k1', K1], ['k1', K2]) }, /ENCRYPTION_KEYS: key id k1 appears twice/, K2.toString('base64'))
  refused({ ENCRYPTION_KEYS: K1.toString('base64') }, /ENCRYPTION_KEYS: item 1 must be id:base64key/, K1.toString('base64'))
  refused({ ENCRYPTION_KEYS: `bad id:${K1.toString('base64')}` }, /ENCRYPTION_KEYS: item 1 must be id:base64key/)
  const dir = mkdtempSync(join(tmpdir(), 'rg-keys-'))
  const file = (name: string, text: string): string => { writeFileSync(join(dir, name), text); return join(dir, name) }
  refused({ ENCRYPTION_KEYS: keyList(['k1', K1]), ENCRYPTION_KEYS_FILE: file('a.json', '{}') }, /set ENCRYPTION_KEYS or ENCRYPTION_KEYS_FILE, not both/)
  refused({ ENCRYPTION_KEYS_FILE: join(dir, 'missing.json') }, /ENCRYPTION_KEYS_FILE: cannot read file/)
  refused({ ENCRYPTION_KEYS_FILE: file('b.json', 'k1:abc') }, /ENCRYPTION_KEYS_FILE .* is not JSON/)
  refused({ ENCRYPTION_KEYS_FILE: file('c.json', JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k1', k: K1.toString('base64url') }] })) }, /key 1 needs kty "oct"/, K1.toString('base64url'))
  refused({ ENCRYPTION_KEYS_FILE: file('d.json', JSON.stringify({ keys: [] })) }, /must be a JWKS: .* with at least one key/)

  const config = loadConfig({ NODE_ENV: 'test', ENCRYPTION_KEYS_FILE: file('e.json', JSON.stringify({ keys: [{ kty: 'oct', kid: 'k2', k: K2.toString('base64url') }, { kty: 'oct', kid: 'k1', k: K1.toString('base64url') }] })) })
  t.same(config.encryption?.ids, ['k2', 'k1'], 'a key file: the first key encrypts, all decrypt')
  const printed = JSON.stringify(config) + inspect(config, { depth: 10 })
  for (const key of [K1, K2]) {
    for (const form of ['base64', 'base64url', 'hex'] as const) t.notOk(printed.includes(key.toString(form)), `the configuration, printed, shows no key (${form})`)
  }
  t.equal(loadConfig({ NODE_ENV: 'test' }).encryption, undefined, 'unset: no encryption')
})

t.test('a key list is parsed as configured: ids kept in order, key material kept out of every printout', async (t) => {
  const keyring = new Keyring([{ id: 'k2', key: K2 }, { id: 'k1', key: K1 }])
  t.equal(keyring.activeId, 'k2')
  t.same(JSON.parse(JSON.stringify({ keyring })), { keyring: { activeKeyId: 'k2', keyIds: ['k2', 'k1'] } })
  t.equal(inspect(keyring), 'Keyring(k2, k1)')
  t.throws(() => new Keyring([{ id: 'k1', key: randomBytes(31) }]), /31 bytes/)
})
