import { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

/**
 * Where a store's memory goes: every key under a prefix (SCAN), classified by what it holds,
 * with MEMORY USAGE (SAMPLES 0: every element counted) summed per class, and the number of
 * entries (fields of a hash, members of a sorted set or set, items of a list) so a figure per
 * entry can be read off. Nothing is written.
 * Usage: node --import tsx bench/memory-usage.ts REDIS_URL KEY_PREFIX [DOCUMENTS]
 * (with DOCUMENTS, a column of bytes per document).
 */
export interface MemoryClass { class: string, keys: number, entries: number, bytes: number }

/** the class of a key, from its name after the prefix (store/redis/*.ts headers list them) */
export function keyClass (name: string): string {
  if (name.startsWith('{audit}:ob:')) {
    const rest = name.slice('{audit}:ob:'.length)
    if (rest === 'ev' || rest === 'src' || rest === 'due' || rest === 'seq' || rest === 'dests') return `outbox ${rest}`
    const kind = /^(e|d|q|x|n):/.exec(rest)?.[1]
    return kind ? `outbox ${kind}:` : 'outbox other'
  }
  if (name.startsWith('{audit}:')) {
    const rest = name.slice('{audit}:'.length)
    if (rest === 'ev') return 'audit ev'
    if (rest === 'head' || rest.startsWith('chain:') || rest === 'cn') return 'audit chains'
    if (rest === 'cp') return 'audit checkpoints'
    if (rest === 'idx:all') return 'audit idx all'
    const index = /^idx:([a-z]+):/.exec(rest)?.[1]
    if (index) return `audit idx ${index}:`
    const bucket = /^([a-z0-9]+):/.exec(rest)?.[1]
    if (bucket) return `audit ${bucket}:`
    return 'audit other'
  }
  if (/^\{s:[^}]*\}:docs/.test(name)) return 'documents {s:}:docs'
  const tag = /^\{([a-z]+):/.exec(name)?.[1]
  if (tag === 'n' || tag === 'd') return `documents {${tag}:} (earlier layout)`
  if (tag === 'u') return 'documents {u:} registrations'
  if (tag === 'i') return 'documents {i:} id pointers'
  if (tag === 'lease' || name.startsWith('{lease')) return 'leases'
  return 'other'
}

const ENTRIES: Record<string, string | undefined> = { hash: 'hlen', zset: 'zcard', set: 'scard', list: 'llen' }

export async function memoryBreakdown (url: string, prefix: string): Promise<MemoryClass[]> {
  const client = new Redis(url)
  const classes = new Map<string, MemoryClass>()
  try {
    const pattern = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`) + '*'
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      if (keys.length === 0) continue
      const types = await Promise.all(keys.map(async (key) => await client.type(key)))
      const [bytes, entries] = await Promise.all([
        Promise.all(keys.map(async (key) => Number(await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') ?? 0))),
        Promise.all(keys.map(async (key, i) => {
          const command = ENTRIES[types[i] as string]
          return command ? Number(await client.call(command, key)) : 1
        }))
      ])
      keys.forEach((key, i) => {
        const name = keyClass(key.slice(prefix.length))
        const c = classes.get(name) ?? { class: name, keys: 0, entries: 0, bytes: 0 }
        c.keys++
        c.entries += entries[i] as number
        c.bytes += bytes[i] as number
        classes.set(name, c)
      })
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
  return [...classes.values()].sort((a, b) => b.bytes - a.bytes)
}

/**
 * The bytes of one entry in a hash of `entries` made by `entry`, as this server keeps it, and
 * its encoding: the hash is written, measured and removed. One field a command, as the gateway
 * writes them (a many-field HSET can leave a hash in a listpack past the server's limit).
 */
export async function bucketEntryBytes (client: Redis, key: string, entries: number, entry: (i: number) => [Buffer, Buffer]): Promise<{ bytes: number, encoding: string }> {
  await Promise.all(Array.from({ length: entries }, async (_, i) => await client.hset(key, ...entry(i))))
  const bytes = Number(await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
  const encoding = String(await client.call('OBJECT', 'ENCODING', key))
  await client.del(key)
  return { bytes: bytes / entries, encoding }
}

/**
 * The bytes of one record in the audit trail's and the outbox's buckets when they are as full as
 * at 500 M documents (store/redis/keys.ts AUDIT_BUCKETS): a bucket of each shape filled with
 * records of the gateway's own form, measured on this server's settings and removed. At a bench's
 * scale a bucket holds a record or two and its key costs more than they do.
 */
export async function fullAuditBuckets (url: string, prefix: string): Promise<{ documentEntry: number, subjectEntry: number, outboxEvent: number, encoding: string }> {
  const client = new Redis(url)
  const id = (): Buffer => randomBytes(16)
  const shapes = {
    // a document's first index entry: `d` + its id → the indexing event's id
    documentEntry: { count: 290, field: () => Buffer.concat([Buffer.from('d'), id()]), value: id },
    // a subject's first three: `s` + its hash → three event ids
    subjectEntry: { count: 290, field: () => Buffer.concat([Buffer.from('s'), randomBytes(32)]), value: () => Buffer.concat([id(), id(), id()]) },
    // an outbox event: document id, kind, version → "<cursor> <status><latest>"
    outboxEvent: { count: 330, field: () => Buffer.concat([id(), Buffer.from([0]), Buffer.from('1')]), value: () => Buffer.from(`${300_000_000 + Math.floor(Math.random() * 400_000_000)} v1`) }
  }
  const out: Record<string, number> = {}
  let encoding = ''
  try {
    for (const [name, shape] of Object.entries(shapes)) {
      const measured = await bucketEntryBytes(client, `${prefix}{audit}:full-bucket-probe:${name}`, shape.count, () => [shape.field(), shape.value()])
      out[name] = measured.bytes
      encoding = measured.encoding
    }
  } finally {
    client.disconnect()
  }
  return { documentEntry: out.documentEntry as number, subjectEntry: out.subjectEntry as number, outboxEvent: out.outboxEvent as number, encoding }
}

/** the breakdown as a table, with bytes per document when `documents` is given */
export function formatBreakdown (classes: MemoryClass[], documents?: number): string {
  const total = classes.reduce((sum, c) => ({ ...sum, keys: sum.keys + c.keys, entries: sum.entries + c.entries, bytes: sum.bytes + c.bytes }), { class: 'total', keys: 0, entries: 0, bytes: 0 })
  const rows = [...classes, total].map((c) => [
    c.class, String(c.keys), String(c.entries), String(c.bytes),
    (c.bytes / c.keys).toFixed(0), (c.bytes / c.entries).toFixed(1),
    ...(documents ? [(c.bytes / documents).toFixed(1)] : [])
  ])
  const head = ['class', 'keys', 'entries', 'bytes', 'B/key', 'B/entry', ...(documents ? ['B/document'] : [])]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  return [head, ...rows].map((r) => r.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join('  ')).join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, prefix, documents] = process.argv.slice(2)
  if (!url || prefix === undefined) {
    console.error('usage: node --import tsx bench/memory-usage.ts REDIS_URL KEY_PREFIX [DOCUMENTS]')
    process.exit(2)
  }
  console.log(formatBreakdown(await memoryBreakdown(url, prefix), documents ? Number(documents) : undefined))
  console.log('full audit buckets (as at 500 M documents), bytes a record:', JSON.stringify(await fullAuditBuckets(url, prefix)))
}
