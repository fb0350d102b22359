import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from './redis-server.js'
import { connect } from 'node:net'

/**
 * A throwaway PostgreSQL for one test file: `initdb` into a temporary folder, `pg_ctl start` on a
 * free loopback port (no Unix socket in a shared place), trust authentication for the loopback
 * only; `destroy` stops it and removes the folder. Never a PostgreSQL a machine may already run.
 * As root, the server runs as the `postgres` user (initdb refuses root).
 */
export interface TestPostgres {
  /** postgres://…/postgres on the throwaway server */
  url: string
  port: number
  /** stop it (fast shutdown), keeping its folder */
  stop(): Promise<void>
  /** start it again on the same port and folder */
  start(): Promise<void>
  /** stop it for good and remove its folder */
  destroy(): Promise<void>
}

export const HOW_TO_GET_POSTGRES =
  'the tests need PostgreSQL\'s server programs (initdb, pg_ctl): install them (Debian/Ubuntu: apt-get install -y postgresql) ' +
  'or set PG_BIN to the folder that holds them'

/** the folder holding initdb and pg_ctl: PG_BIN, else the newest /usr/lib/postgresql/<version>/bin */
export function postgresBinaries (): string | undefined {
  if (process.env.PG_BIN) return existsSync(join(process.env.PG_BIN, 'initdb')) ? process.env.PG_BIN : undefined
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => /^[0-9]+$/.test(v)).sort((a, b) => Number(b) - Number(a))
  for (const version of versions) {
    const bin = join(root, version, 'bin')
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin
  }
  return undefined
}

function runAs (user: string | undefined, bin: string, args: string[]): void {
  const [command, commandArgs] = user ? ['runuser', ['-u', user, '--', bin, ...args]] : [bin, args]
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', LANG: 'C' } })
  if (result.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${result.stderr || result.stdout || String(result.error)}`)
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

export interface TestPostgresOptions {
  /**
   * fsync, synchronous commit and full-page writes on, as in production (for benchmarks); tests
   * leave them off: they never survive a machine crash anyway
   */
  durable?: boolean
}

export async function startTestPostgres (startOptions: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = postgresBinaries()
  if (!bin) throw new Error(HOW_TO_GET_POSTGRES)
  const user = process.getuid?.() === 0 ? 'postgres' : undefined
  const dir = mkdtempSync(join(tmpdir(), 'reuse-gateway-pg-'))
  const data = join(dir, 'data')
  if (user) {
    const ids = spawnSync('id', ['-u', user], { encoding: 'utf8' })
    const gids = spawnSync('id', ['-g', user], { encoding: 'utf8' })
    chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()))
    chmodSync(dir, 0o700)
  }
  runAs(user, join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'])
  const port = await freePort()
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    ...(startOptions.durable ? ['-c shared_buffers=1GB', '-c max_wal_size=8GB', '-c maintenance_work_mem=256MB'] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c shared_buffers=64MB']),
    '-c max_connections=50'
  ].join(' ')
  const start = async (): Promise<void> => {
    runAs(user, join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start'])
    await waitFor(async () => await accepts(port), 30_000, `PostgreSQL on port ${port}`)
  }
  const stop = async (): Promise<void> => {
    try { runAs(user, join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']) } catch { /* already stopped */ }
  }
  await start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    async destroy () {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
