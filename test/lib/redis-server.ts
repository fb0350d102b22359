import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A throwaway redis-server for one test file, on a free loopback port, with its own data
 * folder. Tests never use a developer's Redis, and never its database 0.
 */
export interface TestRedis {
  url: string
  port: number
  /** stop it (SIGTERM, as an operator would) and wait until the port is closed */
  stop(): Promise<void>
  /** kill -9: no chance to write anything */
  kill(): Promise<void>
  /** SIGSTOP / SIGCONT: a server that is there but does not answer */
  pause(): void
  resume(): void
  /** start it again on the same port and data folder */
  start(): Promise<void>
  /** stop it for good and remove its folder */
  destroy(): Promise<void>
}

export interface TestRedisOptions {
  /** extra redis-server arguments, e.g. ['--appendonly', 'yes', '--appendfsync', 'always'] */
  args?: string[]
  /** listen on this port (e.g. one a gateway was told to use before Redis was up) instead of a free one */
  port?: number
}

const HOW_TO_GET_REDIS =
  'the tests need redis-server: install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) ' +
  'or set REDIS_URL to a Redis the tests may use (they use database 15 and flush it)'

export function redisServerBinary (): string | undefined {
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server'
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  return probe.status === 0 ? bin : undefined
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address ? address.port : 0) })
    })
  })
}

async function portAnswers (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.write('PING\r\n')
      socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

export async function waitFor (predicate: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await predicate()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export async function startTestRedis (options: TestRedisOptions = {}): Promise<TestRedis> {
  const bin = redisServerBinary()
  if (!bin) {
    const external = process.env.REDIS_URL
    if (!external) throw new Error(HOW_TO_GET_REDIS)
    const url = new URL(external)
    url.pathname = '/15'
    const noop = async (): Promise<void> => { throw new Error('cannot stop an external REDIS_URL server; install redis-server') }
    const unsupported = (): void => { throw new Error('cannot pause an external REDIS_URL server; install redis-server') }
    return { url: url.toString(), port: Number(url.port || 6379), stop: noop, kill: noop, start: noop, pause: unsupported, resume: unsupported, destroy: async () => {} }
  }

  const dir = mkdtempSync(join(tmpdir(), 'rg-redis-'))
  let child: ChildProcess | undefined
  let port = 0

  const launch = async (): Promise<void> => {
    const proc = spawn(bin, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning',
      ...(options.args ?? [])
    ], { stdio: 'ignore' })
    child = proc
    const exited = new Promise<boolean>((resolve) => proc.once('exit', () => resolve(true)))
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode} on port ${port}`)
      return await Promise.race([portAnswers(port), exited.then(() => false)])
    }, 10_000, `redis-server on port ${port}`)
  }

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    await exited
  }

  // a free port can be taken between the probe and the bind: try a few
  for (let attempt = 0; ; attempt++) {
    port = options.port ?? await freePort()
    try {
      await launch()
      break
    } catch (err) {
      await halt('SIGKILL')
      if (attempt >= 4 || options.port !== undefined) throw err
    }
  }

  return {
    url: `redis://127.0.0.1:${port}/15`,
    port,
    stop: async () => await halt('SIGTERM'),
    kill: async () => await halt('SIGKILL'),
    start: launch,
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    destroy: async () => {
      child?.kill('SIGCONT')
      await halt('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
