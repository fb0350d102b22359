import { createReadStream, createWriteStream, mkdtempSync, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ulid } from 'ulid'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { benchGateway, benchRedis, CPUS, processTimes } from './lib.js'
import { importDocuments } from '../src/cli/import.js'
import { RedisStores } from '../src/store/index.js'
import { encodeRegistration, encodeSubject } from '../src/store/redis/documents-codec.js'
import { compactId } from '../src/store/redis/binary.js'
import { bucketEntryBytes, fullAuditBuckets, memoryBreakdown } from './memory-usage.js'
import type { MemoryClass } from './memory-usage.js'
import { SAMPLE_TYPES, generateDocuments } from '../src/sample-data/generate.js'

/**
 * Batch import of generated documents through the gateway (the command-line import, batch
 * endpoint, validation, audit, index) into a Redis of its own. Prints documents per second and
 * Redis bytes per document, each beside a baseline measured in the same run: the same NDJSON
 * lines written to Redis with one plain SET each (throughput), and the raw NDJSON size (memory).
 */
export interface ImportFigures {
  documents: number
  gatewayDocsPerSecond: number
  baselineSetsPerSecond: number
  redisBytesPerDocument: number
  rawBytesPerDocument: number
  /** documents indexed and announced by the outbox, a second: the import and the fan-out it causes */
  announcedDocsPerSecond: number
  /** CPU time per document of the gateway process and of Redis, in microseconds: what bounds the rate on a machine of its own */
  gatewayCpuMicros: number
  redisCpuMicros: number
  /** where the memory went, per key class */
  breakdown: MemoryClass[]
  /**
   * bytes per document of the registration records and id pointers in full buckets, as they are
   * at 500 M documents (2^20 buckets of each, ~480 entries a bucket), on this server's settings
   */
  fullBuckets: { registration: number, pointer: number, encoding: string }
  /** likewise for the audit trail's and the outbox's buckets (bench/memory-usage.ts) */
  fullAuditBuckets: Awaited<ReturnType<typeof fullAuditBuckets>>
}

/**
 * A registration bucket and a pointer bucket filled as at 500 M documents, measured and removed:
 * at the bench's scale each bucket holds a record or two, and its key costs more than they do.
 */
async function fullBucketBytes (redis: { url: string, prefix: string }): Promise<ImportFigures['fullBuckets']> {
  const client = new Redis(redis.url)
  const entries = 480
  const measure = async (key: string, entry: (i: number) => [Buffer, Buffer]): Promise<{ bytes: number, encoding: string }> => await bucketEntryBytes(client, key, entries, entry)
  try {
    const id = (i: number): string => ulid(1_750_000_000_000 + i)
    const registration = await measure(`${redis.prefix}{u:probe}`, (i) => [randomBytes(16), encodeRegistration({ id: id(i), contentHash: randomBytes(32).toString('hex'), createdAt: new Date(1_750_000_000_000 + i).toISOString() })])
    const pointer = await measure(`${redis.prefix}{i:probe}`, (i) => [compactId(id(i)) as Buffer, encodeSubject(randomBytes(32).toString('hex'))])
    return { registration: registration.bytes, pointer: pointer.bytes, encoding: registration.encoding }
  } finally {
    client.disconnect()
  }
}

/** CPU seconds a process has used so far (user + system); NaN without /proc */
function processCpuSeconds (pid: number): number {
  return (processTimes(pid)?.cpuMs ?? NaN) / 1000
}

/** seconds until no outbox source is due any more (every new document announced), at most `limitMs` */
async function outboxDrained (redis: { url: string, prefix: string }, limitMs: number): Promise<number> {
  const store = new RedisStores({ url: redis.url, keyPrefix: redis.prefix, commandTimeoutMs: 5000, quitTimeoutMs: 500 })
  await store.connect()
  const started = Date.now()
  try {
    while ((await store.outbox.dueOutboxSources(Date.now(), 1)).length > 0) {
      if (Date.now() - started > limitMs) throw new Error(`the outbox did not drain within ${limitMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    await store.close()
  }
  return (Date.now() - started) / 1000
}

async function redisCpuSeconds (url: string): Promise<number> {
  const client = new Redis(url)
  try {
    const info = await client.info('cpu')
    return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
  } finally {
    client.disconnect()
  }
}

export async function usedMemory (url: string): Promise<number> {
  const client = new Redis(url)
  try {
    const info = await client.info('memory')
    return Number(/used_memory:(\d+)/.exec(info)?.[1])
  } finally {
    client.disconnect()
  }
}

export async function benchImport (count: number): Promise<ImportFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'rg-bench-import-'))
  const file = join(dir, 'documents.ndjson')
  const out = createWriteStream(file)
  for (const document of generateDocuments(count, { seed: 1 })) {
    if (!out.write(JSON.stringify(document) + '\n')) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  const rawBytes = statSync(file).size

  const redis = await benchRedis()
  try {
    // baseline: the raw lines into Redis, one SET per line, one at a time
    const client = new Redis(redis.url)
    let i = 0
    const baselineStart = process.hrtime.bigint()
    for await (const line of createInterface({ input: createReadStream(file, 'utf8') })) await client.set(`${redis.prefix}baseline:${i++}`, line)
    const baselineSeconds = Number(process.hrtime.bigint() - baselineStart) / 1e9
    if (redis.owned) await client.flushdb()
    else for (let k = 0; k < i; k += 1000) await client.unlink(...Array.from({ length: Math.min(1000, i - k) }, (_, j) => `${redis.prefix}baseline:${k + j}`))
    client.disconnect()

    const g = await benchGateway(redis, CPUS?.server, { BATCH_MAX_LINES: '5000' })
    try {
      const issuer = await g.agency('000.00.12.H41', 'Sở Tư pháp', ['issuer'], SAMPLE_TYPES)
      const before = await usedMemory(redis.url)
      const pid = g.gateway.child.pid as number
      const cpuBefore = { gateway: processCpuSeconds(pid), redis: await redisCpuSeconds(redis.url) }
      const summary = await importDocuments({ file, gateway: g.gateway.url, privateKey: issuer.privateKey, agency: '000.00.12.H41', chunk: 1000, restart: true, progress: process.stderr.isTTY })
      // what was acknowledged is announced (the outbox publishes each new document): memory is measured once it has
      const announced = await outboxDrained(redis, 180_000)
      const after = await usedMemory(redis.url)
      const cpuAfter = { gateway: processCpuSeconds(pid), redis: await redisCpuSeconds(redis.url) }
      const breakdown = await memoryBreakdown(redis.url, redis.prefix)
      const fullBuckets = await fullBucketBytes(redis)
      const auditBuckets = await fullAuditBuckets(redis.url, redis.prefix)
      if (summary.created !== count) throw new Error(`expected ${count} documents created, got ${JSON.stringify(summary)}`)
      return {
        documents: count,
        gatewayDocsPerSecond: count / summary.seconds,
        announcedDocsPerSecond: count / (summary.seconds + announced),
        baselineSetsPerSecond: count / baselineSeconds,
        // includes the audit trail's share: one event and its index entries per document
        redisBytesPerDocument: (after - before) / count,
        rawBytesPerDocument: rawBytes / count,
        gatewayCpuMicros: (cpuAfter.gateway - cpuBefore.gateway) * 1e6 / count,
        redisCpuMicros: (cpuAfter.redis - cpuBefore.redis) * 1e6 / count,
        breakdown,
        fullBuckets,
        fullAuditBuckets: auditBuckets
      }
    } finally {
      await g.stop()
    }
  } finally {
    await redis.stop()
  }
}
