import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { encodeTime } from 'ulid'
import { load } from './lib.js'
import type { BenchGateway, BenchRedis, LoadFigures } from './lib.js'
import { usedMemory } from './import.js'
import { CITIZEN } from './audit-search.js'
import { AuditArchiver } from '../src/services/audit-archiver.js'
import { RedisStores } from '../src/store/index.js'
import { PostgresAuditArchive } from '../src/store/postgres/audit-archive.js'
import { copyRows } from '../src/store/postgres/event-rows.js'
import { monthsBetween, monthStart, monthSuffix, nextMonth } from '../src/store/postgres/partitions.js'
import type { Month } from '../src/store/postgres/partitions.js'
import { subjectHash } from '../src/services/identifiers.js'
import { DEVELOPMENT_PEPPER } from '../src/config.js'
import { startTestPostgres } from '../test/lib/postgres-server.js'
import type { TestPostgres } from '../test/lib/postgres-server.js'

/**
 * The audit archive (issue: years of audit trail): a PostgreSQL of the suite's own, durable as in
 * production (fsync, synchronous commit and full-page writes on), behind the bench gateway.
 *
 * - **Archiver throughput**: the first `archived` events of the 1 M-event trail are moved —
 *   read from Redis, every hash recomputed and every link checked, copied in transactions of
 *   5,000, removed from Redis — beside a baseline measured in the same run: PostgreSQL taking
 *   rows of the same width by COPY into a bare table (no index, no check, no Redis).
 * - **Redis stays bounded**: its memory before and after the move.
 * - **Search across tiers**: `older` events (default 10 M) are written straight into the
 *   archive's months before the hot trail, then an auditor searches a citizen whose events are
 *   in both tiers and one whose events are all archived.
 */
export const ARCHIVED_CITIZEN = { kind: 'citizen' as const, id: '079188004321' }

export interface BenchArchive { postgres: TestPostgres, url: string, archive: PostgresAuditArchive, stop(): Promise<void> }

export async function benchArchive (): Promise<BenchArchive> {
  const postgres = await startTestPostgres({ durable: true })
  const archive = new PostgresAuditArchive({ url: postgres.url, statementTimeoutMs: 600_000 })
  await archive.migrate()
  return { postgres, url: postgres.url, archive, async stop () { await archive.close(); await postgres.destroy() } }
}

export interface ArchiverFigures {
  moved: number
  eventsPerSecond: number
  /** COPY of rows of the same width into a bare table, per second */
  baselineRowsPerSecond: number
  redisBytesBefore: number
  redisBytesAfter: number
  /** bytes per archived event in PostgreSQL, indexes and the document table included */
  postgresBytesPerEvent: number
}

/** moves the first `count` events of the trail (half from each chain) to the archive */
export async function benchArchiver (redis: BenchRedis, a: BenchArchive, count: number): Promise<ArchiverFigures> {
  const store = new RedisStores({ url: redis.url, keyPrefix: redis.prefix, commandTimeoutMs: 60_000, quitTimeoutMs: 1000 })
  await store.connect()
  try {
    const chains = await store.audit.auditChains()
    const heads = []
    for (const chain of chains) {
      const seq = Math.floor(count / chains.length)
      const [event] = await store.audit.auditChainSlice(chain, seq, 1)
      if (event) heads.push({ chain, seq, hash: event.hash })
    }
    // the cut: a checkpoint pinning where each chain is archived up to (the archiver reads its
    // positions; its signature is the verifier's business, not measured here)
    await store.audit.putAuditCheckpoint({ time: new Date().toISOString(), jws: 'bench.cut.checkpoint', chains: heads })
    const redisBytesBefore = await usedMemory(redis.url)
    const archiver = new AuditArchiver({
      hot: store.audit,
      archive: a.archive,
      leases: store.leases,
      log: { info () {}, warn () {}, error () {} },
      hotDays: 1,
      retentionDays: 0,
      signer: { async sign () { return '' } },
      issuer: 'bench',
      now: () => Date.now() + 2 * 86_400_000
    })
    const start = process.hrtime.bigint()
    const result = await archiver.run()
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const redisBytesAfter = await usedMemory(redis.url)
    return {
      moved: result.moved,
      eventsPerSecond: result.moved / seconds,
      baselineRowsPerSecond: await bareCopy(a.url, result.moved),
      redisBytesBefore,
      redisBytesAfter,
      postgresBytesPerEvent: await archiveBytesPerEvent(a.url)
    }
  } finally {
    await store.close()
  }
}

/** rows a second PostgreSQL takes by COPY into a table without index or constraint, rows as wide as archived events */
async function bareCopy (url: string, rows: number): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('CREATE TABLE IF NOT EXISTS bench_bare (seq bigint, time timestamptz, history_from date, id text, chain text, actor text, action text, outcome text, subject text, prev_hash text, hash text, body text)')
    await client.query('TRUNCATE bench_bare')
    const template = generatedRows(Date.now() - 86_400_000, 1000, 'BARE', 0)
    const start = process.hrtime.bigint()
    await pipeline(Readable.from((function * () { for (let done = 0; done < rows; done += 1000) yield copyRows(template) })()), client.query(copyFrom('COPY bench_bare FROM STDIN')))
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    await client.query('DROP TABLE bench_bare')
    return Math.ceil(rows / 1000) * 1000 / seconds
  } finally {
    await client.end()
  }
}

async function archiveBytesPerEvent (url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('ANALYZE audit_events; ANALYZE audit_event_documents')
    const { rows } = await client.query<{ bytes: string, events: string }>(`
      SELECT (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits WHERE inhparent IN ('audit_events'::regclass, 'audit_event_documents'::regclass)) AS bytes,
             (SELECT count(*) FROM audit_events) AS events`)
    return Number(rows[0]?.bytes) / Math.max(1, Number(rows[0]?.events))
  } finally {
    await client.end()
  }
}

const OTHER_SUBJECTS = 2_000_000

/**
 * `count` reuse-query events as archive rows, one a millisecond from `fromMs`, over 2 M
 * subjects and 50 agencies, like the hot trail's: the rows of the COPY baseline (fillArchive
 * makes the same rows in SQL). Not a hash chain (searches do not recompute hashes; the
 * archiver's checks are measured above).
 */
function generatedRows (fromMs: number, count: number, chain: string, firstSeq: number): Array<Array<string | null>> {
  const rows: Array<Array<string | null>> = []
  for (let i = 0; i < count; i++) {
    const n = firstSeq + i
    const ms = fromMs + i
    const id = encodeTime(ms, 10) + (n.toString(32).toUpperCase().replace(/[ILOU]/g, 'Z')).padStart(16, '0')
    const subject = (((n * 2654435761) % OTHER_SUBJECTS).toString(16).padStart(8, '0')).repeat(8)
    const body = `{"documents":[{"id":"${id}","version":1}],"purpose":{"procedureCode":"1.001193","dossierCode":"000.20.41.H41-250101-${String(n % 10_000_000).padStart(7, '0')}"},"requestId":"${n.toString(16).padStart(16, '0')}","clientAddress":"10.0.0.1","detail":{"documentTypes":["giay-khai-sinh"],"mode":"full"}}`
    rows.push([String(n), new Date(ms).toISOString(), '-infinity', id, chain, `000.00.${String(n % 50).padStart(2, '0')}.H41`, 'reuse.queried', 'granted', subject, '0'.repeat(64), n.toString(16).padStart(64, 'f'), body])
  }
  return rows
}

/** Crockford base 32 of a bigint SQL expression, `length` characters (the ULID alphabet): SQL that PostgreSQL evaluates per row */
function base32Sql (expression: string, length: number): string {
  return Array.from({ length }, (_, i) => `substr('${ULID_ALPHABET}', ((${expression} >> ${5 * (length - 1 - i)}) & 31)::int + 1, 1)`).join(' || ')
}
const ULID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/**
 * Writes `count` events into the archive's months of the year before `beforeMs` (a month's
 * start), ten about the citizen whose recent events are in Redis and twenty about one whose
 * events are all archived: the rows of generatedRows, made by PostgreSQL itself
 * (`INSERT … SELECT` over `generate_series`), so that loading ten million rows costs the
 * server's writing, not a client's formatting and the protocol. As a bulk load is done, on two
 * connections a month at a time: the month's tables are filled before they have an index, their
 * indexes (the parent's, one by one) are built in one pass each, then the tables are attached as
 * the month's partitions, which finds the indexes already there.
 */
export async function fillArchive (a: BenchArchive, count: number, beforeMs: number): Promise<{ seconds: number }> {
  const start = process.hrtime.bigint()
  const spanMs = 365 * 86_400_000
  const fromMs = beforeMs - spanMs
  const months = monthsBetween(new Date(fromMs), new Date(beforeMs - 1))
  const stepMs = spanMs / count
  const half = Math.floor(count / 2)
  const literal = (text: string): string => pg.escapeLiteral(text)
  const spanning = literal(subjectHash(DEVELOPMENT_PEPPER, CITIZEN))
  const archivedOnly = literal(subjectHash(DEVELOPMENT_PEPPER, ARCHIVED_CITIZEN))
  const id = `${base32Sql('ms', 10)} || lpad(${base32Sql('n', 6)}, 16, '0')`
  // the parent tables' indexes, to build on each month's tables before they are attached
  const setup = new pg.Client({ connectionString: a.url })
  await setup.connect()
  const { rows: parentIndexes } = await setup.query<{ table: string, name: string, definition: string, primary: boolean }>(`
    SELECT c.relname AS table, i.relname AS name, pg_get_indexdef(i.oid) AS definition, x.indisprimary AS primary
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
     WHERE c.relname IN ('audit_events', 'audit_event_documents') AND c.relnamespace = current_schema()::regnamespace`)
  await setup.end()
  const fillMonth = async (client: pg.Client, month: Month): Promise<void> => {
    const suffix = monthSuffix(month)
    const first = Math.max(0, Math.ceil((monthStart(month).getTime() - fromMs) / stepMs))
    const last = Math.min(count, Math.ceil((monthStart(nextMonth(month)).getTime() - fromMs) / stepMs)) - 1
    await client.query('BEGIN')
    // unlogged: these months are the search's ground, not what is measured; written without WAL,
    // they cost the server's CPU, not a second copy of ten gigabytes through the log and its fsyncs
    await client.query(`CREATE UNLOGGED TABLE audit_events_${suffix} (LIKE audit_events); CREATE UNLOGGED TABLE audit_event_documents_${suffix} (LIKE audit_event_documents)`)
    if (last >= first) {
      await client.query(`
        INSERT INTO audit_events_${suffix} (seq, "time", history_from, id, chain, actor, action, outcome, subject, prev_hash, hash, body)
        SELECT n, to_timestamp(ms / 1000.0), '-infinity', id, CASE WHEN n < ${half} THEN 'BENCHOLDA' ELSE 'BENCHOLDB' END,
               '000.00.' || lpad((n % 50)::text, 2, '0') || '.H41', 'reuse.queried', 'granted',
               CASE WHEN n % ${Math.floor(count / 10)} = 7 THEN ${spanning} WHEN n % ${Math.floor(count / 20)} = 3 THEN ${archivedOnly}
                    ELSE repeat(lpad(to_hex((n * 2654435761) % ${OTHER_SUBJECTS}), 8, '0'), 8) END,
               repeat('0', 64), lpad(to_hex(n), 64, 'f'),
               '{"documents":[{"id":"' || id || '","version":1}],"purpose":{"procedureCode":"1.001193","dossierCode":"000.20.41.H41-250101-' ||
               lpad((n % 10000000)::text, 7, '0') || '"},"requestId":"' || lpad(to_hex(n), 16, '0') ||
               '","clientAddress":"10.0.0.1","detail":{"documentTypes":["giay-khai-sinh"],"mode":"full"}}'
          FROM (SELECT n, ms, ${id} AS id
                  FROM (SELECT n, ${fromMs}::bigint + floor(n * ${stepMs})::bigint AS ms FROM generate_series(${first}::bigint, ${last}::bigint) AS n) AS timed) AS events`)
      await client.query(`INSERT INTO audit_event_documents_${suffix} (document_id, id) SELECT id, id FROM audit_events_${suffix}`)
    }
    for (const index of parentIndexes) {
      const table = `${index.table}_${suffix}`
      const own = `${index.name}_${suffix}`
      await client.query(index.definition.replace(` ${index.name} ON ONLY `, ` ${own} ON `).replace(/\.(audit_events|audit_event_documents) USING /, `.${table} USING `))
      if (index.primary) await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY USING INDEX ${own}`)
    }
    await client.query('COMMIT')
  }
  const queue = [...months]
  await Promise.all([0, 1].map(async () => {
    const client = new pg.Client({ connectionString: a.url })
    await client.connect()
    try {
      await client.query("SET maintenance_work_mem = '256MB'")
      for (let month = queue.shift(); month; month = queue.shift()) await fillMonth(client, month)
    } finally {
      await client.end()
    }
  }))
  const client = new pg.Client({ connectionString: a.url })
  await client.connect()
  try {
    for (const month of months) {
      const bounds = `FROM ('${encodeTime(monthStart(month).getTime(), 10)}${'0'.repeat(16)}') TO ('${encodeTime(monthStart(nextMonth(month)).getTime(), 10)}${'0'.repeat(16)}')`
      for (const table of ['audit_events', 'audit_event_documents']) await client.query(`ALTER TABLE ${table} ATTACH PARTITION ${table}_${monthSuffix(month)} FOR VALUES ${bounds}`)
    }
    await client.query('ANALYZE audit_events; ANALYZE audit_event_documents')
  } finally {
    await client.end()
  }
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9 }
}

export async function benchArchivedSearch (g: BenchGateway, seconds: number, connections: number, subject: typeof CITIZEN): Promise<LoadFigures> {
  const auditor = await g.agency(`000.00.98.H${String(Math.floor(Math.random() * 90) + 10)}`, 'Thanh tra bộ', ['auditor'])
  return await load({ url: `${g.gateway.url}/v1/audit/search`, headers: { authorization: `Bearer ${auditor.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ subject, limit: 20 }), seconds, connections, ...(g.pid ? { server: g.pid } : {}) })
}
