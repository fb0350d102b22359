import { spawn } from 'node:child_process'
import { CPUS, load, root } from './lib.js'
import type { BenchGateway, LoadFigures } from './lib.js'
import { generateDocuments } from '../src/sample-data/generate.js'

/**
 * Reuse queries finding one document (agreement, minimization, attestation, receipt, audit,
 * log line) against the gateway, versus a bare Fastify route returning a constant JSON object
 * (bench/bare-server.ts), each in its own process on the server CPU, loaded by the same
 * autocannon on the other CPU.
 */
export interface ReuseSetup { url: string, body: string, headers: Record<string, string> }

export async function prepareReuse (g: BenchGateway): Promise<ReuseSetup> {
  const issuer = await g.agency('000.00.12.H41', 'Sở Tư pháp', ['issuer'], ['giay-khai-sinh'])
  const requester = await g.agency('000.20.41.H41', 'UBND phường Quang Trung', ['requester'])
  await g.call(g.admin, 'PUT', '/v1/agreements/bench', { requester: '000.20.41.H41', documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth', 'gender'] }, validFrom: '2020-01-01' })
  const birth = [...generateDocuments(50, { seed: 5 })].find((d) => d.type === 'giay-khai-sinh')!
  await g.call(issuer.token, 'POST', '/v1/documents', birth)
  const body = JSON.stringify({ subject: birth.subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: '1.001193', dossierCode: '000.20.41.H41-260301-0001' } })
  return { url: `${g.gateway.url}/v1/reuse-queries`, body, headers: { authorization: `Bearer ${requester.token}`, 'content-type': 'application/json' } }
}

export async function startBare (): Promise<{ url: string, pid: number | undefined, stop: () => void }> {
  const args = ['--import', 'tsx', 'bench/bare-server.ts']
  const [command, argv] = CPUS ? ['taskset', ['-c', CPUS.server, process.execPath, ...args]] : [process.execPath, args]
  const bare = spawn(command, argv, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve) => bare.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())))
  return { url: `${url}/bare`, pid: bare.pid, stop: () => bare.kill() }
}

/**
 * At a fixed rate well below capacity, p99 is what a clerk waits for (closed-loop figures at 50
 * connections are mostly the queue's: p50 ≈ connections ÷ throughput).
 */
const FIXED_RATE_CONNECTIONS = 5
const FIXED_RATE_MIN_SECONDS = 20

export async function benchReuse (g: BenchGateway, seconds: number, connections: number, rate: number): Promise<{ bare: LoadFigures, full: LoadFigures, status: LoadFigures, fixed: LoadFigures, bareFixed: LoadFigures, setup: ReuseSetup }> {
  const setup = await prepareReuse(g)
  const bare = await startBare()
  try {
    const plan = { body: setup.body, headers: setup.headers, connections }
    // warm both up, then measure
    await load({ ...plan, url: bare.url, seconds: 2 })
    await load({ ...plan, url: setup.url, seconds: 3 })
    const bareFigures = await load({ ...plan, url: bare.url, seconds })
    const full = await load({ ...plan, url: setup.url, seconds, ...(g.pid ? { server: g.pid } : {}) })
    const status = await load({ ...plan, body: JSON.stringify({ ...JSON.parse(setup.body), mode: 'status' }), url: setup.url, seconds })
    // few connections: autocannon paces each one at rate ÷ connections, all in step, so 50
    // connections would send bursts of 50 and measure the burst's queue, not the server
    // and long enough that the load generator's own warm-up (a fresh process) is not the tail
    const paced = { ...plan, connections: FIXED_RATE_CONNECTIONS, seconds: Math.max(seconds, FIXED_RATE_MIN_SECONDS), rate }
    const bareFixed = await load({ ...paced, url: bare.url, ...(bare.pid ? { server: bare.pid } : {}) })
    const fixed = await load({ ...paced, url: setup.url, ...(g.pid ? { server: g.pid } : {}) })
    return { bare: bareFigures, full, status, fixed, bareFixed, setup }
  } finally {
    bare.stop()
  }
}
