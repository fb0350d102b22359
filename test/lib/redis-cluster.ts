import { spawn, spawnSync } from 'node:child_process'
import { connect } from 'node:net'
import { Redis } from 'ioredis'
import { freePort, redisServerBinary, startTestRedis, waitFor } from './redis-server.js'
import type { TestRedis } from './redis-server.js'

/**
 * A throwaway Redis Cluster for one test file: three masters on free loopback ports, no
 * replicas, each with its own data folder, its slots assigned by `redis-cli --cluster create`.
 */
export interface TestCluster {
  nodes: Array<{ host: string, port: number }>
  /** REDIS_CLUSTER_NODES as the gateway reads it: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  nodesEnv: string
  /** kill -9 one node: its slots are out of reach until it is back (no replicas) */
  kill(index: number): Promise<void>
  /** stop every node and remove its folder */
  destroy(): Promise<void>
}

const HOW_TO_GET_REDIS_CLI =
  'the cluster tests need redis-server and redis-cli (Debian/Ubuntu: apt-get install -y redis-server redis-tools; macOS: brew install redis)'

function redisCliBinary (): string | undefined {
  const bin = process.env.REDIS_CLI_BIN ?? 'redis-cli'
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  return probe.status === 0 ? bin : undefined
}

/** runs redis-cli to its end, within a bound; rejects with its output when it fails */
async function runCli (bin: string, args: string[], ms: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    proc.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    proc.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    const timer = setTimeout(() => { proc.kill('SIGKILL') }, ms)
    proc.once('error', (err) => { clearTimeout(timer); reject(err) })
    proc.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`redis-cli ${args.join(' ')} ${signal ? `killed by ${signal} after ${ms} ms` : `exited with ${code}`}:\n${output}`))
    })
  })
}

/** CLUSTER INFO of one node says the cluster is formed and every slot served */
async function clusterOk (port: number): Promise<boolean> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  try {
    await client.connect()
    const info = await client.cluster('INFO') as string
    return /^cluster_state:ok\r?$/m.test(info) && /^cluster_known_nodes:3\r?$/m.test(info)
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

export async function startTestCluster (): Promise<TestCluster> {
  const cli = redisCliBinary()
  const server = redisServerBinary()
  if (!server || !cli) throw new Error(HOW_TO_GET_REDIS_CLI)
  // the cluster bus gets a port of its own (--cluster-port), which Redis has had since 7.0
  const major = Number(/v=(\d+)\./.exec(spawnSync(server, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? 0)
  if (major < 7) throw new Error(`the cluster tests need Redis 7 or later; ${server} is ${major || 'of an unknown version'}`)

  const servers: TestRedis[] = []
  const destroy = async (): Promise<void> => {
    await Promise.all(servers.map(async (server) => await server.destroy()))
  }
  try {
    for (let i = 0; i < 3; i++) {
      // not port + 10000, which may be out of range or taken
      const busPort = await freePort()
      servers.push(await startTestRedis({
        // relative to the node's own data folder (--dir)
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort)]
      }))
    }
    const addresses = servers.map((server) => `127.0.0.1:${server.port}`)
    await runCli(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], 30_000)
    for (const server of servers) {
      await waitFor(async () => await clusterOk(server.port), 20_000, `cluster_state:ok on 127.0.0.1:${server.port}`)
    }
    return {
      nodes: servers.map((server) => ({ host: '127.0.0.1', port: server.port })),
      nodesEnv: addresses.join(','),
      kill: async (index) => { await servers[index]?.kill() },
      destroy
    }
  } catch (err) {
    await destroy()
    throw err
  }
}

/**
 * Parses one MONITOR line, `<time> [<db> <source>] "arg" "arg" …`, its arguments escaped as
 * redis-cli shows them (\\ \" \n \r \t \a \b \xHH), into the source and the raw arguments.
 */
function parseMonitorLine (line: string): { source: string, args: Buffer[] } | undefined {
  const open = line.indexOf('[')
  const close = line.indexOf(']', open)
  if (open === -1 || close === -1) return undefined
  const source = line.slice(open + 1, close).split(' ')[1] ?? ''
  const args: Buffer[] = []
  let bytes: number[] | undefined
  const escapes: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, '"': 34, '\\': 92 }
  for (let i = close + 1; i < line.length; i++) {
    const c = line[i] as string
    if (bytes === undefined) {
      if (c === '"') bytes = []
      continue
    }
    if (c === '"') {
      args.push(Buffer.from(bytes))
      bytes = undefined
    } else if (c === '\\') {
      const next = line[++i] as string
      if (next === 'x') {
        bytes.push(parseInt(line.slice(i + 1, i + 3), 16))
        i += 2
      } else {
        bytes.push(escapes[next] ?? next.charCodeAt(0))
      }
    } else {
      bytes.push(...Buffer.from(c, 'latin1'))
    }
  }
  return { source, args }
}

export interface ScriptKeyWatch {
  /** waits until every node's monitor has seen what was sent before, then lists what scripts ran */
  report(): Promise<{ scripts: number, commands: number, undeclared: string[] }>
  stop(): void
}

/**
 * Watches every master with MONITOR and checks each command a script runs (logged right after
 * the EVAL/EVALSHA that ran it, "lua" as its source) against the keys the script was given:
 * a key a script reaches without being given it is listed, with the command.
 */
export async function watchScriptKeys (cluster: TestCluster): Promise<ScriptKeyWatch> {
  const watches = await Promise.all(cluster.nodes.map(async ({ host, port }) => {
    const socket = connect({ host, port })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
    const client = new Redis({ host, port, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    socket.on('error', () => {})
    const state = { scripts: 0, commands: 0, declared: undefined as Set<string> | undefined, marker: '', pending: [] as Array<{ declared: Set<string>, args: Buffer[] }> }
    let buffer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      buffer += chunk
      let end: number
      while ((end = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const parsed = line.startsWith('+') ? parseMonitorLine(line.slice(1)) : undefined
        if (!parsed || parsed.args.length === 0) continue
        const name = (parsed.args[0] as Buffer).toString('latin1').toLowerCase()
        if (parsed.source === 'lua') {
          state.commands++
          state.pending.push({ declared: state.declared ?? new Set(), args: parsed.args })
        } else if (name === 'eval' || name === 'evalsha') {
          state.scripts++
          const n = Number(parsed.args[2]?.toString('latin1'))
          state.declared = new Set(parsed.args.slice(3, 3 + n).map((key) => key.toString('latin1')))
        } else {
          state.declared = undefined
          if (name === 'echo') state.marker = parsed.args[1]?.toString('latin1') ?? ''
        }
      }
    })
    socket.write('MONITOR\r\n')
    return { port, socket, client, state }
  }))
  let markers = 0
  return {
    async report () {
      const marker = `watch-${++markers}`
      await Promise.all(watches.map(async ({ client }) => await client.echo(marker)))
      await waitFor(async () => watches.every(({ state }) => state.marker === marker), 10_000, 'MONITOR to catch up')
      const undeclared: string[] = []
      let scripts = 0
      let commands = 0
      for (const { client, state } of watches) {
        scripts += state.scripts
        commands += state.commands
        const pending = state.pending.splice(0)
        const keys = await Promise.all(pending.map(async ({ args }) => await client.call('COMMAND', 'GETKEYS', ...args) as string[]))
        pending.forEach(({ declared, args }, i) => {
          for (const key of keys[i] ?? []) {
            if (!declared.has(key)) undeclared.push(`${(args[0] as Buffer).toString('latin1')} ${key}`)
          }
        })
      }
      return { scripts, commands, undeclared }
    },
    stop () {
      for (const { socket, client } of watches) {
        socket.destroy()
        client.disconnect()
      }
    }
  }
}
