import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { decodeJwt } from 'jose'
import { MemoryStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { startTestRedis } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { PDF, bearer, buildWorld, reuseQuery } from './lib/world.js'
import type { World } from './lib/world.js'

/**
 * A file belongs to the paper, not to one version of its record: amending a document carries
 * the file forward, so the new version is released with a download link that serves the same
 * bytes; an amendment that replaces the paper starts the new version without a file.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')
const reprDigest = (bytes: Buffer): string => `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`

async function amend (w: World, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const current = (await w.app.inject({ method: 'GET', url: `/v1/documents/${w.docs.birth}`, headers: bearer(w.tokens.issuer) })).json()
  const res = await w.app.inject({ method: 'POST', url: `/v1/documents/${w.docs.birth}/amend`, headers: bearer(w.tokens.issuer), payload: { procedureCode: current.procedureCode, dossierCode: current.dossierCode, data: { ...current.data, fullName: `${String(current.data.fullName)} ${randomBytes(2).toString('hex')}` }, reason: 'cải chính họ tên', ...extra } })
  if (res.statusCode !== 201) throw new Error(`amending failed: ${res.body}`)
  return res.json()
}

/** the world's birth certificate as a reuse query releases it */
async function released (w: World): Promise<Record<string, any>> {
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  const found = (res.json().results[0].documents as Array<Record<string, any>>).find((d) => d.id === w.docs.birth)
  if (!found) throw new Error(`not released: ${res.body}`)
  return found
}

async function download (w: World, link: string): Promise<{ status: number, bytes: Buffer, digest: unknown }> {
  const res = await w.app.inject({ method: 'GET', url: link, headers: bearer(w.tokens.requester) })
  return { status: res.statusCode, bytes: res.rawPayload, digest: res.headers['repr-digest'] }
}

const stores: Array<[string, (t: Test) => Promise<Stores>, Record<string, string>]> = [
  ['embedded store, files in clear', async () => new MemoryStores(), {}],
  ['Redis, files encrypted at rest', async (t) => await testRedisStore(t, redis), { ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` }]
]

for (const [name, makeStore, env] of stores) {
  t.test(name, async (t) => {
    t.test('an amended document keeps its file: the new version is released with a link to the same bytes', async (t) => {
      const w = await buildWorld(t, { store: await makeStore(t), env })
      const amended = await amend(w)
      t.equal(amended.version, 2)
      t.same(amended.file, { mediaType: 'application/pdf', size: PDF.length, sha256: sha256(PDF), carriedFrom: 1 }, 'the amend answer says the file was carried forward, and from which version')

      const v2 = await released(w)
      t.equal(v2.version, 2, 'the new version is the one released')
      t.same(v2.file, { mediaType: 'application/pdf', size: PDF.length, sha256: sha256(PDF) })
      t.equal(decodeJwt(v2.attestation as string).file_sha256, sha256(PDF), 'the attestation names the file')
      t.match(v2.download, /^\/v1\/files\/[\w-]{43}$/, 'with a download link')
      const got = await download(w, v2.download as string)
      t.equal(got.status, 200)
      t.same(got.bytes, PDF, 'the same bytes as uploaded to version 1')
      t.equal(got.digest, reprDigest(PDF))

      const v1 = (await w.app.inject({ method: 'GET', url: `/v1/documents/${w.docs.birth}?version=1`, headers: bearer(w.tokens.issuer) })).json()
      t.same(v1.file, { mediaType: 'application/pdf', size: PDF.length, sha256: sha256(PDF) }, 'version 1 keeps its own file')
      const again = await w.app.inject({ method: 'PUT', url: `/v1/documents/${w.docs.birth}/file`, headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/pdf' }, payload: Buffer.from('%PDF-1.7 another scan') })
      t.equal(again.statusCode, 409, 'the carried file is the version\'s one file')
      t.equal(again.json().code, 'file_exists')
      t.match(again.json().detail, /carried forward.*replacesFile/)

      const v3 = await amend(w)
      t.same(v3.file, { mediaType: 'application/pdf', size: PDF.length, sha256: sha256(PDF), carriedFrom: 1 }, 'carried on by a further amendment')

      const revoked = await w.app.inject({ method: 'POST', url: `/v1/documents/${w.docs.birth}/revoke`, headers: bearer(w.tokens.issuer), payload: { reason: 'cấp nhầm' } })
      t.equal(revoked.statusCode, 200)
      const after = (await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })).json()
      t.same(after.results[0].documents.filter((d: { id: string }) => d.id === w.docs.birth), [], 'a revoked document is released with no file, whatever version it is carried to')
    })

    t.test('an amendment that replaces the paper leaves the new version without a file until its scan is uploaded', async (t) => {
      const w = await buildWorld(t, { store: await makeStore(t), env })
      const amended = await amend(w, { replacesFile: true })
      t.equal(amended.version, 2)
      t.notOk('file' in amended, 'no file in the answer')
      const without = await released(w)
      t.equal(without.version, 2)
      t.notOk(without.download, 'no file, no link')
      t.equal(decodeJwt(without.attestation as string).file_sha256, null)

      const scan = Buffer.from('%PDF-1.7 bản chính mới')
      const upload = await w.app.inject({ method: 'PUT', url: `/v1/documents/${w.docs.birth}/file`, headers: { ...bearer(w.tokens.issuer), 'content-type': 'application/pdf' }, payload: scan })
      t.equal(upload.statusCode, 200)
      t.equal(upload.json().version, 2)
      t.notOk('carriedFrom' in upload.json().file)
      const withScan = await released(w)
      const got = await download(w, withScan.download as string)
      t.same(got.bytes, scan, 'the new scan')
      t.equal(got.digest, reprDigest(scan))
    })
  })
}
