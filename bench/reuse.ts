import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { startGateway } from '../test/lib/gateway-process.js'
import { startTestRedis } from '../test/lib/redis-server.js'
import { fetchAccessToken, generateAgencyKeyPair } from '../src/cli/agency-keys.js'
import { generateDocuments } from '../src/sample-data/generate.js'

/**
 * Reuse queries finding one document (agreement, minimization, attestation, receipt, audit,
 * log line) against a running gateway on its own Redis, versus a bare Fastify route returning a
 * constant JSON object, measured in the same run with the same load generator (autocannon, in
 * this process; the servers in their own). Where taskset exists the gateway is pinned to CPU 0.
 */
export interface LoadFigures { requestsPerSecond: number, p50: number, p99: number, errors: number }

async function load (url: string, body: string, headers: Record<string, string>, seconds: number, connections: number): Promise<LoadFigures> {
  const result = await autocannon({ url, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, duration: seconds, connections })
  return { requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}

export async function benchReuse (seconds: number, connections: number): Promise<{ gateway: LoadFigures, bare: LoadFigures, statusMode: LoadFigures }> {
  const root = fileURLToPath(new URL('../', import.meta.url))
  const bare = spawn(process.execPath, ['--import', 'tsx', 'bench/bare-server.ts'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  const bareUrl = await new Promise<string>((resolve) => bare.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())))

  const redis = await startTestRedis()
  const dir = mkdtempSync(join(tmpdir(), 'rg-bench-reuse-'))
  const admin = await generateAgencyKeyPair('EdDSA', '000.00.00.A01')
  writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
  const gateway = await startGateway({ REDIS_URL: redis.url, ADMIN_AGENCY_CODE: '000.00.00.A01', ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json'), LOG_LEVEL: 'info', AUDIT_LOG_FILE: join(dir, 'audit.log') })
  // the request log would fill this process's memory: stop collecting it
  gateway.child.stdout?.removeAllListeners('data')
  gateway.child.stdout?.resume()
  try {
    const put = async (token: string, url: string, body: unknown): Promise<void> => {
      const res = await fetch(`${gateway.url}${url}`, { method: url.startsWith('/v1/documents') ? 'POST' : 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
    }
    const adminToken = (await fetchAccessToken({ gateway: gateway.url, privateKey: admin.privateKey, agency: '000.00.00.A01' })).access_token
    const issuer = await generateAgencyKeyPair('ES256', '000.00.12.H41')
    const requester = await generateAgencyKeyPair('ES256', '000.20.41.H41')
    await put(adminToken, '/v1/agencies/000.00.12.H41', { name: 'Sở Tư pháp', roles: ['issuer'], jwks: issuer.jwks })
    await put(adminToken, '/v1/agencies/000.20.41.H41', { name: 'UBND phường', roles: ['requester'], jwks: requester.jwks })
    await put(adminToken, '/v1/agreements/bench', { requester: '000.20.41.H41', documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth', 'gender'] }, validFrom: '2020-01-01' })
    const issuerToken = (await fetchAccessToken({ gateway: gateway.url, privateKey: issuer.privateKey, agency: '000.00.12.H41' })).access_token
    const birth = [...generateDocuments(50, { seed: 5 })].find((d) => d.type === 'giay-khai-sinh')!
    await put(issuerToken, '/v1/documents', birth)
    const token = (await fetchAccessToken({ gateway: gateway.url, privateKey: requester.privateKey, agency: '000.20.41.H41' })).access_token
    const query = { subject: birth.subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: '1.001193', dossierCode: '000.20.41.H41-260301-0001' } }
    const headers = { authorization: `Bearer ${token}` }
    // warm both up, then measure
    await load(`${bareUrl}/bare`, JSON.stringify(query), {}, 2, connections)
    await load(`${gateway.url}/v1/reuse-queries`, JSON.stringify(query), headers, 2, connections)
    const bareFigures = await load(`${bareUrl}/bare`, JSON.stringify(query), {}, seconds, connections)
    const gatewayFigures = await load(`${gateway.url}/v1/reuse-queries`, JSON.stringify(query), headers, seconds, connections)
    const statusFigures = await load(`${gateway.url}/v1/reuse-queries`, JSON.stringify({ ...query, mode: 'status' }), headers, seconds, connections)
    return { gateway: gatewayFigures, bare: bareFigures, statusMode: statusFigures }
  } finally {
    bare.kill()
    await gateway.stop('SIGTERM')
    await redis.destroy()
  }
}
