import { spawn, execFile } from 'node:child_process'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { startGateway } from './lib/gateway-process.js'
import type { GatewayProcess } from './lib/gateway-process.js'
import { startTestRedis } from './lib/redis-server.js'
import { ADMIN_CODE, makeAgency } from './lib/agencies.js'
import type { TestAgency } from './lib/agencies.js'
import { fetchAccessToken } from '../src/cli/agency-keys.js'
import { importDocuments } from '../src/cli/import.js'
import { SAMPLE_TYPES, generateDocuments } from '../src/sample-data/generate.js'
import { coverageEnv } from './lib/child-coverage.js'

/**
 * `reuse-gateway documents import` against a running gateway on Redis: interrupted half-way
 * and run again, every good line is indexed exactly once and every bad one reported.
 */
const root = fileURLToPath(new URL('../', import.meta.url))

/** a gateway process on a Redis of its own, with an admin and an issuer registered */
async function gatewayWithIssuer (t: Test): Promise<{ gateway: GatewayProcess, dir: string, admin: TestAgency, adminToken: string, issuer: TestAgency }> {
  const redis = await startTestRedis()
  t.teardown(async () => await redis.destroy())
  const dir = mkdtempSync(join(tmpdir(), 'rg-import-'))
  const admin = await makeAgency(ADMIN_CODE)
  writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
  const gateway = await startGateway({ REDIS_URL: redis.url, ADMIN_AGENCY_CODE: ADMIN_CODE, ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json') })
  t.teardown(async () => { await gateway.stop('SIGKILL') })
  const issuer = await makeAgency('000.00.12.H41')
  const adminToken = (await fetchAccessToken({ gateway: gateway.url, privateKey: admin.privateKey, agency: ADMIN_CODE })).access_token
  const put = await fetch(`${gateway.url}/v1/agencies/${issuer.code}`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Sở Tư pháp', roles: ['issuer'], issuableTypes: SAMPLE_TYPES, jwks: issuer.jwks }) })
  t.equal(put.status, 201, 'the issuer is registered')
  return { gateway, dir, admin, adminToken, issuer }
}

t.test('an interrupted import, resumed, indexes every line exactly once', async (t) => {
  const { gateway, dir, adminToken, issuer } = await gatewayWithIssuer(t)
  const keyFile = join(dir, 'issuer.jwk.json')
  writeFileSync(keyFile, JSON.stringify(issuer.privateKey))

  const docs = [...generateDocuments(1200, { seed: 99 })].map((d) => JSON.stringify(d))
  docs.splice(100, 0, '{"not": "a document"}')
  docs.splice(700, 0, 'garbage')
  const file = join(dir, 'documents.ndjson')
  writeFileSync(file, docs.join('\n') + '\n')

  // first run: killed once it has made some progress
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'documents', 'import', file, '--key', keyFile, '--gateway', gateway.url, '--chunk', '50', '--quiet']
  const env = { ...process.env, ...coverageEnv() }
  const first = spawn(process.execPath, args, { cwd: root, env, stdio: 'ignore' })
  const stateFile = `${file}.import-state.json`
  for (let i = 0; i < 600; i++) {
    if (existsSync(stateFile) && JSON.parse(readFileSync(stateFile, 'utf8')).linesDone >= 300) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  first.kill('SIGKILL')
  await new Promise((resolve) => first.once('exit', resolve))
  const interruptedAt = JSON.parse(readFileSync(stateFile, 'utf8')).linesDone
  t.ok(interruptedAt >= 300 && interruptedAt < docs.length, `interrupted after ${interruptedAt} lines`)

  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: root, env })
  const summary = JSON.parse(stdout)
  t.equal(summary.lines, docs.length)
  t.equal(summary.skipped, interruptedAt, 'the second run resumed where the first stopped')
  t.equal(summary.rejected, interruptedAt > 700 ? 0 : 1, 'garbage line reported by the run that saw it')
  const rejected = readFileSync(summary.rejectedFile, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
  t.ok(rejected.every((r) => r.code && r.reason && r.line), 'each rejected line with its reason')

  // exactly once: the audit trail has one document.indexed per good line
  const auditor = await makeAgency('000.00.00.A02')
  await fetch(`${gateway.url}/v1/agencies/${auditor.code}`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Thanh tra', roles: ['auditor'], jwks: auditor.jwks }) })
  const auditorToken = (await fetchAccessToken({ gateway: gateway.url, privateKey: auditor.privateKey, agency: auditor.code })).access_token
  const exported = await (await fetch(`${gateway.url}/v1/audit/export`, { headers: { authorization: `Bearer ${auditorToken}` } })).text()
  const indexed = exported.trim().split('\n').map((line) => JSON.parse(line)).filter((e) => e.action === 'document.indexed')
  const ids = new Set(indexed.map((e) => e.documents[0].id))
  t.equal(indexed.length, 1200, 'every good line indexed')
  t.equal(ids.size, 1200, 'none twice')

  // a full re-run indexes nothing new
  const again = JSON.parse((await promisify(execFile)(process.execPath, [...args, '--restart'], { cwd: root, env })).stdout)
  t.equal(again.created, 0)
  t.equal(again.existing, 1200)
  t.equal(again.rejected, 2)
})

t.test('a chunk whose answer is cut off is sent again: every line indexed once, the import not ended', async (t) => {
  const { gateway, dir, issuer } = await gatewayWithIssuer(t)

  // a proxy in front of the gateway that cuts off the answer to the second batch half-way
  let batches = 0
  const proxy = createServer((req, res) => {
    const upstream = httpRequest(`${gateway.url}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
      const cut = req.url === '/v1/documents/batch' && ++batches === 2
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.once('data', (chunk: Buffer) => {
        res.write(chunk)
        if (cut) { res.socket?.destroy(); answer.destroy() } else answer.pipe(res)
      })
      answer.once('end', () => { if (!res.writableEnded) res.end() })
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { proxy.close() })
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`

  const file = join(dir, 'documents.ndjson')
  writeFileSync(file, [...generateDocuments(300, { seed: 7 })].map((d) => JSON.stringify(d)).join('\n') + '\n')
  const summary = await importDocuments({ file, gateway: proxyUrl, privateKey: issuer.privateKey, agency: issuer.code, chunk: 100, parallel: 1, progress: false })
  t.ok(batches >= 4, `the cut-off chunk was sent again (${batches} batch requests for 3 chunks)`)
  t.equal(summary.created + summary.existing, 300, 'every line answered')
  t.equal(summary.rejected + summary.conflict, 0)
  const again = await importDocuments({ file, gateway: gateway.url, privateKey: issuer.privateKey, agency: issuer.code, chunk: 100, restart: true, progress: false })
  t.same({ created: again.created, existing: again.existing }, { created: 0, existing: 300 }, 'indexed exactly once')
})
