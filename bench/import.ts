import { mkdtempSync, statSync, writeFileSync, createWriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { startGateway } from '../test/lib/gateway-process.js'
import { startTestRedis } from '../test/lib/redis-server.js'
import { fetchAccessToken, generateAgencyKeyPair } from '../src/cli/agency-keys.js'
import { importDocuments } from '../src/cli/import.js'
import { generateDocuments } from '../src/sample-data/generate.js'

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
}

async function usedMemory (url: string): Promise<number> {
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

  // baseline: the raw lines into a Redis, one SET per line, one at a time
  const baselineRedis = await startTestRedis()
  const client = new Redis(baselineRedis.url)
  const { createReadStream } = await import('node:fs')
  const { createInterface } = await import('node:readline')
  let i = 0
  const baselineStart = process.hrtime.bigint()
  for await (const line of createInterface({ input: createReadStream(file, 'utf8') })) await client.set(`doc:${i++}`, line)
  const baselineSeconds = Number(process.hrtime.bigint() - baselineStart) / 1e9
  client.disconnect()
  await baselineRedis.destroy()

  const redis = await startTestRedis()
  const admin = await generateAgencyKeyPair('EdDSA', '000.00.00.A01')
  writeFileSync(join(dir, 'admin.jwks.json'), JSON.stringify(admin.jwks))
  const gateway = await startGateway({ REDIS_URL: redis.url, ADMIN_AGENCY_CODE: '000.00.00.A01', ADMIN_AGENCY_JWKS: join(dir, 'admin.jwks.json'), LOG_LEVEL: 'info', BATCH_MAX_LINES: '5000' })
  try {
    const issuer = await generateAgencyKeyPair('ES256', '000.00.12.H41')
    const adminToken = (await fetchAccessToken({ gateway: gateway.url, privateKey: admin.privateKey, agency: '000.00.00.A01' })).access_token
    await fetch(`${gateway.url}/v1/agencies/000.00.12.H41`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Sở Tư pháp', roles: ['issuer'], jwks: issuer.jwks }) })
    // the request log would fill this process's memory: drop it
    gateway.lines.length = 0
    const before = await usedMemory(redis.url)
    const summary = await importDocuments({ file, gateway: gateway.url, privateKey: issuer.privateKey, agency: '000.00.12.H41', chunk: 1000, restart: true, progress: process.stderr.isTTY })
    const after = await usedMemory(redis.url)
    if (summary.created !== count) throw new Error(`expected ${count} documents created, got ${JSON.stringify(summary)}`)
    return {
      documents: count,
      gatewayDocsPerSecond: count / summary.seconds,
      baselineSetsPerSecond: count / baselineSeconds,
      // includes the audit trail's share: one event and its index entries per document
      redisBytesPerDocument: (after - before) / count,
      rawBytesPerDocument: rawBytes / count
    }
  } finally {
    await gateway.stop('SIGTERM')
    await redis.destroy()
  }
}
