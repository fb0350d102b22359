import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGateway } from '../test/lib/gateway-process.js'
import type { GatewayProcess } from '../test/lib/gateway-process.js'
import { startTestRedis } from '../test/lib/redis-server.js'
import { fetchAccessToken, generateAgencyKeyPair } from '../src/cli/agency-keys.js'
import type { AgencyPrivateKey } from '../src/cli/agency-keys.js'

/** What the scenarios share: where processes run, a Redis, a gateway with agencies, the load generator. */
export const root = fileURLToPath(new URL('../', import.meta.url))

function hasTaskset (): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** the server on CPU 0, the load generator on CPU 1 — where taskset exists and there are two CPUs */
export const CPUS = hasTaskset() && cpus().length >= 2 ? { server: '0', load: '1', second: '1' } : undefined

export interface LoadFigures {
  requestsPerSecond: number
  requests: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  /** with LoadPlan.server, where /proc exists: what the server process did during the load */
  server?: ServerFigures
}

/**
 * The server process over a load (Linux /proc): its CPU time per request, the share of a CPU it
 * used, and how long its main thread was ready to run but waited for a CPU (ms per second): on a
 * machine other work shares, that wait is latency no change to the gateway removes.
 */
export interface ServerFigures { cpuUsPerRequest: number, cpuPercent: number, runQueueWaitMsPerSecond: number }

export interface LoadPlan {
  url: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  bodiesFile?: string
  seconds: number
  connections: number
  /** requests a second for all connections together (fixed-rate load) */
  rate?: number
  /** the server's process id: its figures are read over the load (LoadFigures.server) */
  server?: number
}

/** CPU time (ms) and run-queue wait of the main thread (ms) of a process so far; undefined without /proc */
export function processTimes (pid: number): { cpuMs: number, waitMs: number } | undefined {
  try {
    // utime and stime are the 14th and 15th fields, in clock ticks (100 a second on Linux)
    const stat = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ')
    // schedstat: time on a CPU, time waiting on a run queue (ns), time slices
    const waitNs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1])
    return { cpuMs: (Number(stat[11]) + Number(stat[12])) * 10, waitMs: waitNs / 1e6 }
  } catch {
    return undefined
  }
}

/** Runs a script of the suite in a process of its own on `cpu`; resolves with its last stdout line as JSON. */
async function runScript<T> (script: string, args: string[], cpu: string | undefined): Promise<T> {
  const argv = ['--import', 'tsx', script, ...args]
  const [command, list] = cpu ? ['taskset', ['-c', cpu, process.execPath, ...argv]] : [process.execPath, argv]
  const child = spawn(command, list, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`${script} exited with ${code}`)
  return JSON.parse(out.trim().split('\n').pop() as string) as T
}

/** Runs autocannon in its own process (pinned to the load CPU) and returns its figures. */
export async function load (plan: LoadPlan): Promise<LoadFigures> {
  const { server, ...worker } = plan
  const before = server === undefined ? undefined : processTimes(server)
  const started = Date.now()
  const figures = await runScript<LoadFigures>('bench/load-worker.ts', [JSON.stringify({ method: 'POST', headers: {}, ...worker })], CPUS?.load)
  const after = server === undefined ? undefined : processTimes(server)
  if (before && after) {
    // the worker's own start is inside the span: a second or so at no load, so the shares are a little low
    const seconds = (Date.now() - started) / 1000
    figures.server = {
      cpuUsPerRequest: 1000 * (after.cpuMs - before.cpuMs) / Math.max(1, figures.requests),
      cpuPercent: (after.cpuMs - before.cpuMs) / seconds / 10,
      runQueueWaitMsPerSecond: (after.waitMs - before.waitMs) / seconds
    }
  }
  return figures
}

export interface BenchRedis { url: string, prefix: string, owned: boolean, stop(): Promise<void> }

/** REDIS_URL if given (under a key prefix of its own), else a redis-server of the suite's own on a free loopback port */
export async function benchRedis (): Promise<BenchRedis> {
  const prefix = `bench${process.pid}-${Date.now().toString(36)}:`
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, prefix, owned: false, stop: async () => {} }
  const redis = await startTestRedis()
  return { url: redis.url, prefix, owned: true, stop: async () => await redis.destroy() }
}

export interface BenchGateway {
  gateway: GatewayProcess
  /** the gateway's process id (the node process itself: taskset execs it) */
  pid: number | undefined
  admin: string
  /** registers an agency with these roles (an issuer: competent for `issuableTypes`); returns its key and a token for it */
  agency(code: string, name: string, roles: string[], issuableTypes?: readonly string[]): Promise<{ privateKey: AgencyPrivateKey, token: string }>
  call(token: string, method: string, path: string, body: unknown): Promise<unknown>
  stop(): Promise<void>
}

export const ADMIN = '000.00.00.A01'
let adminPair: ReturnType<typeof generateAgencyKeyPair> | undefined

/** A gateway process on `redis`, pinned to `cpu`, with an admin agency. */
export async function benchGateway (redis: BenchRedis, cpu: string | undefined, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<BenchGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'rg-bench-'))
  // one admin key pair for every gateway of the run: each registers it at start
  adminPair ??= generateAgencyKeyPair('EdDSA', ADMIN)
  const admin = await adminPair
  writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
  const gateway = await startGateway({
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: redis.prefix,
    ADMIN_AGENCY_CODE: ADMIN,
    ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json'),
    LOG_LEVEL: 'info',
    AUDIT_LOG_FILE: join(dir, 'audit.log'),
    BLOB_DIR: join(dir, 'blobs'),
    // the benchmarks measure the gateway's work, not its throttling
    RATE_LIMIT_PER_MINUTE: '0',
    ...env
  }, { ...(cpu ? { cpus: cpu } : {}), nodeArgs: [...nodeArgs, ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [])] })
  // the request log would fill this process's memory: stop collecting it
  gateway.child.stdout?.removeAllListeners('data')
  gateway.child.stdout?.resume()
  const call = async (token: string, method: string, path: string, body: unknown): Promise<unknown> => {
    const res = await fetch(`${gateway.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
    return await res.json()
  }
  const adminToken = (await fetchAccessToken({ gateway: gateway.url, privateKey: admin.privateKey, agency: ADMIN })).access_token
  return {
    gateway,
    pid: gateway.child.pid,
    admin: adminToken,
    call,
    async agency (code, name, roles, issuableTypes) {
      const pair = await generateAgencyKeyPair('EdDSA', code)
      // a fresh admin token: parts of the suite outlast one (five minutes)
      const fresh = (await fetchAccessToken({ gateway: gateway.url, privateKey: admin.privateKey, agency: ADMIN })).access_token
      await call(fresh, 'PUT', `/v1/agencies/${code}`, { name, roles, ...(issuableTypes ? { issuableTypes } : {}), jwks: pair.jwks })
      return { privateKey: pair.privateKey, token: (await fetchAccessToken({ gateway: gateway.url, privateKey: pair.privateKey, agency: code })).access_token }
    },
    async stop () { await gateway.stop('SIGTERM') }
  }
}

/** a process of its own on the load CPU, running `script`; resolves with its last stdout line as JSON */
export async function loadScript<T> (script: string, args: string[] = []): Promise<T> {
  return await runScript<T>(script, args, CPUS?.load)
}

/** a process of its own, pinned like a server, running `script`; resolves with its last stdout line as JSON */
export async function pinnedScript<T> (script: string, args: string[] = []): Promise<T> {
  return await runScript<T>(script, args, CPUS?.server)
}
