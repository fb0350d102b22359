import { spawn, spawnSync } from 'node:child_process'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { RedisStore } from '../../src/store/index.js'
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
  if (!redisServerBinary() || !cli) throw new Error(HOW_TO_GET_REDIS_CLI)

  const servers: TestRedis[] = []
  const destroy = async (): Promise<void> => {
    await Promise.all(servers.map(async (server) => await server.destroy()))
  }
  try {
    for (let i = 0; i < 3; i++) {
      // the cluster bus gets a port of its own: port + 10000 may be out of range or taken
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
      destroy
    }
  } catch (err) {
    await destroy()
    throw err
  }
}

let counter = 0

/** A RedisStore on the test cluster with a key prefix of its own, so subtests never collide. */
export async function testClusterStore (t: Test, cluster: TestCluster, options: { commandTimeoutMs?: number } = {}): Promise<RedisStore> {
  const store = new RedisStore({
    clusterNodes: cluster.nodes,
    keyPrefix: `c${process.pid}-${++counter}:`,
    commandTimeoutMs: options.commandTimeoutMs ?? 2000,
    quitTimeoutMs: 500
  })
  await store.connect()
  t.teardown(async () => await store.close())
  return store
}
