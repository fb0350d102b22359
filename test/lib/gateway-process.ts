import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { coverageEnv } from './child-coverage.js'

/**
 * The gateway as a real process (`src/server.ts` through tsx), for what only a process shows:
 * configuration errors, signals, several gateways on one store.
 */
export interface GatewayProcess {
  child: ChildProcess
  url: string
  lines: Array<Record<string, unknown>>
  stderr(): string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

const root = fileURLToPath(new URL('../../', import.meta.url))

export interface SpawnOptions {
  /** extra node options (e.g. --cpu-prof) */
  nodeArgs?: string[]
  /** pin the process to these CPUs with taskset (benchmarks), where taskset exists */
  cpus?: string
  /** variables left out of the environment, defaults included (e.g. AUDIT_LOG_FILE) */
  unset?: string[]
}

export function spawnGateway (env: Record<string, string>, options: SpawnOptions = {}): { child: ChildProcess, lines: Array<Record<string, unknown>>, stderr: () => string, exited: GatewayProcess['exited'] } {
  const args = [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/server.ts']
  const [command, argv] = options.cpus ? ['taskset', ['-c', options.cpus, process.execPath, ...args]] : [process.execPath, args]
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'info', DEMO_DIR: mkdtempSync(join(tmpdir(), 'rg-demo-')), AUDIT_LOG_FILE: join(mkdtempSync(join(tmpdir(), 'rg-audit-')), 'audit.log'), BLOB_DIR: mkdtempSync(join(tmpdir(), 'rg-blobs-')), ...coverageEnv(), ...env }
  for (const name of options.unset ?? []) delete childEnv[name]
  const child = spawn(command, argv, {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: Array<Record<string, unknown>> = []
  let errText = ''
  let buffer = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    let i
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 1)
      try { lines.push(JSON.parse(line)) } catch { lines.push({ raw: line }) }
    }
  })
  child.stderr?.on('data', (chunk: Buffer) => { errText += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  return { child, lines, stderr: () => errText, exited }
}

/** Starts a gateway and waits until it listens (bounded). */
export async function startGateway (env: Record<string, string>, options: SpawnOptions = {}): Promise<GatewayProcess> {
  const proc = spawnGateway(env, options)
  const deadline = Date.now() + 30_000
  let url: string | undefined
  while (!url) {
    const listening = proc.lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('Server listening at '))
    if (listening) url = String(listening.msg).slice('Server listening at '.length)
    else if (proc.child.exitCode !== null) throw new Error(`gateway exited with ${proc.child.exitCode}: ${proc.stderr()}`)
    else if (Date.now() > deadline) { proc.child.kill('SIGKILL'); throw new Error('gateway did not start within 30 s') }
    else await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    ...proc,
    url,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal)
      // a graceful stop that never ends is cut short, so that a teardown cannot hang the file
      const cut = signal === 'SIGKILL' ? undefined : setTimeout(() => proc.child.kill('SIGKILL'), 30_000)
      try {
        return await proc.exited
      } finally {
        clearTimeout(cut)
      }
    }
  }
}
