/**
 * The audit archive in PostgreSQL (AUDIT_ARCHIVE_URL). Tables, in `schema` (migrations.ts):
 *   audit_events            events partitioned by month of their id (partitions.ts): the fields
 *                           searches use as columns, the rest as JSON text (event-rows.ts)
 *   audit_event_documents   (document id, event id), partitioned the same way: the document index
 *   audit_chains            each chain's archived head: the row an archiver locks to extend it
 *   audit_checkpoints       signed checkpoints, by position (oldest first), unique by digest
 *   audit_archive_migrations the versions applied
 *
 * Reads answer as the hot tier's do (same order, inclusive fromId, exclusive toId, a time prefix
 * as a bound), so that one cursor walks both tiers. Failure policy: a connection refused, lost or
 * timed out becomes ArchiveUnavailableError (archiving pauses, a read that needs the archive
 * answers 503); an SQL error is a bug and stays what it is.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import type { PoolClient, QueryResultRow } from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { AuditArchive, ArchivedHead, ArchivePartition } from '../audit-archive.js'
import type { AuditCheckpointRecord, AuditIndexPage, StoredAuditEvent } from '../audit.js'
import { ArchiveUnavailableError } from '../errors.js'
import type { StoreLogger } from '../redis/connection.js'
import { StatedError } from '../../lib/error-description.js'
import { EVENT_COLUMNS, READ_COLUMNS, copyRows, documentIds, eventRow, keepable, rowEvent } from './event-rows.js'
import type { StoredEventRow } from './event-rows.js'
import { lockSchema, migrate, schemaVersion } from './migrations.js'
import {
  createPartitionsSql, dropPartitionsSql, monthOfId, monthOfPartition, monthStart, monthSuffix, monthsBetween,
  nextMonth, PARTITIONED_TABLES, timePrefix
} from './partitions.js'
import type { Month } from './partitions.js'

const GENESIS_HASH = '0'.repeat(64)

export interface PostgresAuditArchiveOptions {
  /** postgres:// URL */
  url: string
  /** the schema holding the archive's tables (created by migrate) */
  schema?: string
  /** how long getting a connection may take before the archive counts as unavailable */
  connectTimeoutMs?: number
  /** statement_timeout of every connection */
  statementTimeoutMs?: number
  /** connections at most */
  max?: number
  logger?: StoreLogger
}

/** Node's socket errors that mean the server cannot be reached */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED'])
/**
 * SQLSTATEs that mean "the server is there but cannot serve now": shutting down or starting,
 * too many connections, a statement timeout (57014: this code never cancels otherwise), a
 * read-only server (a replica after a failover).
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '25006'])
/** node-postgres's own messages for a connection lost, refused in time or timed out */
const UNAVAILABLE_MESSAGE = /timeout exceeded when trying to connect|Connection terminated|connection error|not queryable|Query read timeout/i

function isUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08'))) return true
  if (err instanceof AggregateError && err.errors.some(isUnavailable)) return true
  return UNAVAILABLE_MESSAGE.test(err.message)
}

function translate (err: unknown): unknown {
  return isUnavailable(err) ? new ArchiveUnavailableError(undefined, { cause: err }) : err
}

/** PostgreSQL's answer to a row no partition holds (a month dropped or not yet created meanwhile) */
function isMissingPartition (err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === '23514' && /no partition/i.test(err.message)
}

/** a calendar day PostgreSQL reads as that day */
const DAY = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/

/** today in Vietnam (UTC+7, no daylight saving), the day of the portal's history */
function vietnamToday (): string {
  return new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 10)
}

export class PostgresAuditArchive implements AuditArchive {
  private readonly pool: pg.Pool
  /** the schema, quoted */
  private readonly s: string
  private readonly schemaName: string
  private readonly logger: StoreLogger | undefined
  private lastErrorLog = 0
  private closed = false
  /** the months whose partitions are known to exist (undefined: to be read again) */
  private months: Set<string> | undefined

  constructor (options: PostgresAuditArchiveOptions) {
    this.schemaName = options.schema ?? 'public'
    this.s = pg.escapeIdentifier(this.schemaName)
    this.logger = options.logger
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000
    const statementTimeoutMs = options.statementTimeoutMs ?? 30_000
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.max ?? 4,
      connectionTimeoutMillis: connectTimeoutMs,
      statement_timeout: statementTimeoutMs,
      // past the server's own timeout, the server itself is not answering: give the connection up
      query_timeout: statementTimeoutMs + connectTimeoutMs,
      keepAlive: true,
      idleTimeoutMillis: 30_000,
      application_name: 'reuse-gateway audit archive'
    })
    // An idle connection the server closes (a restart, a failover) is reported here: without a
    // listener it would crash the process. The pool drops it; log once a few seconds.
    this.pool.on('error', (err) => {
      const now = Date.now()
      if (now - this.lastErrorLog > 5000) {
        this.lastErrorLog = now
        this.logger?.warn({ err }, 'audit archive connection error')
      }
    })
  }

  private table (name: string): string {
    return `${this.s}.${name}`
  }

  private async query<R extends QueryResultRow> (sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, params)).rows
    } catch (err) {
      throw translate(err)
    }
  }

  /**
   * Runs `work` in a transaction on one connection: committed when `commit(result)` (default:
   * always), else rolled back. A connection whose ROLLBACK failed is destroyed, not reused.
   */
  private async transaction<T> (work: (client: PoolClient) => Promise<T>, commit: (result: T) => boolean = () => true): Promise<T> {
    let client: PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw translate(err)
    }
    // the pool listens for errors of idle connections only: a connection lost between two
    // statements of the transaction would otherwise be an uncaught 'error' (the next statement fails)
    const lost = (): void => {}
    client.on('error', lost)
    try {
      await client.query('BEGIN')
      const result = await work(client)
      await client.query(commit(result) ? 'COMMIT' : 'ROLLBACK')
      client.removeListener('error', lost)
      client.release()
      return result
    } catch (err) {
      // the listener stays: a connection that failed is destroyed on release and may still report its end
      await client.query('ROLLBACK').then(() => { client.removeListener('error', lost); client.release() }, (again: Error) => client.release(again))
      throw translate(err)
    }
  }

  async migrate (): Promise<number[]> {
    return await migrate(async (work) => await this.transaction(work), this.s, this.schemaName)
  }

  async schemaVersion (): Promise<{ current: number, latest: number }> {
    return await schemaVersion(async (work) => await this.transaction(work), this.s)
  }

  /** the partitions of the two partitioned tables, with their sizes */
  private async children (): Promise<Array<{ table: string, name: string, rows: number, bytes: number }>> {
    const rows = await this.query<{ parent: string, name: string, rows: number, bytes: string }>(
      `SELECT p.relname AS parent, c.relname AS name, c.reltuples AS rows, pg_total_relation_size(c.oid) AS bytes
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE i.inhparent IN (to_regclass($1), to_regclass($2)) ORDER BY c.relname`,
      PARTITIONED_TABLES.map((table) => this.table(table)))
    return rows.map((row) => ({ table: row.parent, name: row.name, rows: Number(row.rows), bytes: Number(row.bytes) }))
  }

  private async knownMonths (): Promise<Set<string>> {
    if (!this.months) {
      this.months = new Set((await this.children())
        .flatMap(({ table, name }) => table === 'audit_events' ? [monthOfPartition(name, table)] : [])
        .filter((month): month is Month => month !== undefined)
        .map(monthSuffix))
    }
    return this.months
  }

  /** creates the partitions of the months missing among `months`, in one short transaction */
  private async createMonths (months: Month[]): Promise<void> {
    const known = await this.knownMonths()
    const missing = months.filter((month) => !known.has(monthSuffix(month)))
    if (missing.length === 0) return
    await this.transaction(async (client) => {
      // another archiver may create the same ones: IF NOT EXISTS under the lock is then a no-op
      await lockSchema(client, this.schemaName)
      for (const month of missing) await client.query(createPartitionsSql(this.s, month))
    })
    for (const month of missing) known.add(monthSuffix(month))
  }

  async ensurePartitions (from: Date, to: Date): Promise<void> {
    await this.createMonths(monthsBetween(from, to))
  }

  async archivedHeads (): Promise<Map<string, ArchivedHead>> {
    const rows = await this.query<{ chain: string, seq: string, hash: string, last_id: string }>(
      `SELECT chain, seq, hash, last_id FROM ${this.table('audit_chains')} WHERE seq > 0 ORDER BY chain`)
    return new Map(rows.map((row) => [row.chain, { seq: Number(row.seq), hash: row.hash, id: row.last_id }]))
  }

  async archiveEvents (chain: string, afterSeq: number, events: StoredAuditEvent[], checkpoints: AuditCheckpointRecord[] = [], startsAfter?: { seq: number, hash: string }): Promise<boolean> {
    events.forEach((event, i) => {
      if (event.chain !== chain || event.seq !== afterSeq + 1 + i) throw new StatedError('archived events are consecutive events of their chain, from afterSeq + 1')
      if (i > 0 && event.prevHash !== events[i - 1]?.hash) throw new StatedError('archived events are linked: each prevHash is the hash before')
    })
    const rows = events.map((event) => {
      const row = eventRow(event)
      return EVENT_COLUMNS.map((column) => row[column])
    })
    const documents = events.flatMap((event) => documentIds(event).map((document) => [document, event.id]))
    const months = new Map(events.map((event) => {
      const month = monthOfId(event.id)
      return [monthSuffix(month), month]
    }))
    await this.createMonths([...months.values()])
    try {
      return await this.writeEvents(chain, afterSeq, events, rows, documents, checkpoints, startsAfter)
    } catch (err) {
      if (!isMissingPartition(err)) throw err
      // a month was dropped (or its partitions lost) since they were listed: list and create again, once
      this.months = undefined
      await this.createMonths([...months.values()])
      return await this.writeEvents(chain, afterSeq, events, rows, documents, checkpoints, startsAfter)
    }
  }

  private async writeEvents (chain: string, afterSeq: number, events: StoredAuditEvent[], rows: Array<Array<string | null>>,
    documents: string[][], checkpoints: AuditCheckpointRecord[], startsAfter?: { seq: number, hash: string }): Promise<boolean> {
    return await this.transaction(async (client) => {
      // The chain's row is the lock: a second archiver of the chain waits here, then finds the
      // head moved and writes nothing (the INSERT makes the row to lock for a new chain).
      // (a chain whose start retention removed before it was archived starts where a checkpoint pinned it)
      await client.query(`INSERT INTO ${this.table('audit_chains')} (chain, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (chain) DO NOTHING`, [chain, startsAfter?.seq ?? 0, startsAfter?.hash ?? GENESIS_HASH])
      const head = (await client.query<{ seq: string, hash: string }>(`SELECT seq, hash FROM ${this.table('audit_chains')} WHERE chain = $1 FOR UPDATE`, [chain])).rows[0]
      if (Number(head?.seq) !== afterSeq) return false
      const first = events[0]
      const last = events[events.length - 1]
      if (first && afterSeq > 0 && first.prevHash !== head?.hash) throw new StatedError('the first archived event does not link to its chain\'s archived head')
      if (rows.length) await this.copy(client, 'audit_events', EVENT_COLUMNS, rows)
      if (documents.length) await this.copy(client, 'audit_event_documents', ['document_id', 'id'], documents)
      await this.insertCheckpoints(client, checkpoints)
      if (last) {
        await client.query(`UPDATE ${this.table('audit_chains')} SET seq = $2, hash = $3, last_id = $4 WHERE chain = $1`, [chain, last.seq, last.hash, last.id])
      }
      return true
    }, (done) => done)
  }

  /** bulk insert through COPY FROM STDIN (text format), routed to the partitions by PostgreSQL */
  private async copy (client: PoolClient, table: string, columns: readonly string[], rows: Array<Array<string | null>>): Promise<void> {
    const stream = client.query(copyFrom(`COPY ${this.table(table)} (${columns.map((c) => pg.escapeIdentifier(c)).join(', ')}) FROM STDIN`))
    await pipeline(Readable.from([copyRows(rows)]), stream)
  }

  private async insertCheckpoints (client: PoolClient, checkpoints: AuditCheckpointRecord[]): Promise<void> {
    if (checkpoints.length === 0) return
    // ordered by ordinality: positions follow the order given; a digest already there is skipped
    await client.query(`INSERT INTO ${this.table('audit_checkpoints')} ("time", jws, chains, digest)
      SELECT t, j, c::jsonb, d FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(t, j, c, d, n)
      ORDER BY n ON CONFLICT (digest) DO NOTHING`, [
      checkpoints.map((cp) => cp.time),
      checkpoints.map((cp) => cp.jws),
      checkpoints.map((cp) => JSON.stringify(cp.chains)),
      checkpoints.map((cp) => createHash('sha256').update(cp.jws).digest('hex'))
    ])
  }

  async archiveCheckpoints (checkpoints: AuditCheckpointRecord[]): Promise<void> {
    await this.transaction(async (client) => { await this.insertCheckpoints(client, checkpoints) })
  }

  async auditIndexPage (page: AuditIndexPage): Promise<string[]> {
    if (page.count <= 0) return []
    const { index } = page
    const params: unknown[] = []
    const where: string[] = []
    const param = (value: unknown): string => `$${params.push(value)}`
    let table = 'audit_events'
    if (index.kind !== 'all') {
      // the hot tier indexes no empty actor or subject; a value text cannot hold was never archived
      if (!keepable(index.value) || (index.value === '' && index.kind !== 'document')) return []
      if (index.kind === 'agency') where.push(`actor = ${param(index.value)}`)
      else if (index.kind === 'subject') where.push(`subject = ${param(index.value)}`)
      else if (index.kind === 'document') {
        table = 'audit_event_documents'
        where.push(`document_id = ${param(index.value)}`)
      } else {
        const day = page.asOfDay ?? vietnamToday()
        if (!DAY.test(day)) throw new StatedError('asOfDay is a day, YYYY-MM-DD')
        where.push(`subject = ${param(index.value)}`, `history_from <= ${param(day)}::date`)
      }
    }
    if (page.fromId !== undefined) where.push(`id >= ${param(page.fromId)}`)
    if (page.toId !== undefined) where.push(`id < ${param(page.toId)}`)
    const rows = await this.query<{ id: string }>(
      `SELECT id FROM ${this.table(table)} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY id ${page.newestFirst ? 'DESC' : 'ASC'} LIMIT ${param(page.count)}`, params)
    return rows.map((row) => row.id)
  }

  async auditEvents (ids: string[]): Promise<StoredAuditEvent[]> {
    if (ids.length === 0) return []
    const rows = await this.query<StoredEventRow>(`SELECT ${READ_COLUMNS} FROM ${this.table('audit_events')} WHERE id = ANY($1::text[])`, [ids.filter(keepable)])
    const byId = new Map(rows.map((row) => [row.id, row]))
    return ids.flatMap((id) => {
      const row = byId.get(id)
      return row ? [rowEvent(row)] : []
    })
  }

  async auditChainSlice (chain: string, fromSeq: number, count: number): Promise<StoredAuditEvent[]> {
    if (count <= 0 || !keepable(chain)) return []
    const rows = await this.query<StoredEventRow>(
      `SELECT ${READ_COLUMNS} FROM ${this.table('audit_events')} WHERE chain = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
      [chain, fromSeq, fromSeq + count])
    return rows.map(rowEvent)
  }

  async auditCheckpointCount (): Promise<number> {
    const rows = await this.query<{ count: string }>(`SELECT count(*) AS count FROM ${this.table('audit_checkpoints')}`)
    return Number(rows[0]?.count ?? 0)
  }

  async auditCheckpoints (start = 0, stop = -1): Promise<AuditCheckpointRecord[]> {
    // positions as LRANGE counts them: a negative one from the end
    const count = start < 0 || stop < 0 ? await this.auditCheckpointCount() : 0
    const first = start < 0 ? Math.max(0, count + start) : start
    const last = stop < 0 ? count + stop : stop
    if (last < first) return []
    const rows = await this.query<{ time: Date, jws: string, chains: AuditCheckpointRecord['chains'] }>(
      `SELECT "time", jws, chains FROM ${this.table('audit_checkpoints')} ORDER BY "time", position OFFSET $1 LIMIT $2`,
      [first, last - first + 1])
    return rows.map((row) => ({ time: row.time.toISOString(), jws: row.jws, chains: row.chains }))
  }

  async partitions (): Promise<ArchivePartition[]> {
    const children = await this.children()
    const out: ArchivePartition[] = []
    for (const child of children) {
      const month = monthOfPartition(child.name, 'audit_events')
      if (!month || child.table !== 'audit_events') continue
      const documents = children.find((other) => other.name === `audit_event_documents_${monthSuffix(month)}`)
      // never analyzed yet (-1): count, once, rather than report nothing
      const rows = child.rows >= 0
        ? child.rows
        : Number((await this.query<{ count: string }>(`SELECT count(*) AS count FROM ${this.table(pg.escapeIdentifier(child.name))}`))[0]?.count)
      out.push({
        name: child.name,
        from: monthStart(month).toISOString(),
        to: monthStart(nextMonth(month)).toISOString(),
        rows,
        bytes: child.bytes + (documents?.bytes ?? 0)
      })
    }
    return out.sort((a, b) => a.from.localeCompare(b.from))
  }

  async headsBefore (before: Date): Promise<Array<{ chain: string, seq: number, hash: string }>> {
    // per chain, through (chain, seq) in each month before `before` (the later ones are pruned)
    const rows = await this.query<{ chain: string, seq: string, hash: string }>(
      `SELECT c.chain, e.seq, e.hash FROM ${this.table('audit_chains')} c
         CROSS JOIN LATERAL (SELECT seq, hash FROM ${this.table('audit_events')} e
                              WHERE e.chain = c.chain AND e.id < $1 ORDER BY e.seq DESC LIMIT 1) e
        ORDER BY c.chain`, [timePrefix(before)])
    return rows.map((row) => ({ chain: row.chain, seq: Number(row.seq), hash: row.hash }))
  }

  async dropPartitionsBefore (before: Date): Promise<string[]> {
    const children = await this.children()
    const dropped: string[] = []
    const due = children
      .map((child) => ({ ...child, month: monthOfPartition(child.name, child.table) }))
      .filter((child): child is typeof child & { month: Month } => child.month !== undefined && monthStart(nextMonth(child.month)) <= before)
    // month by month, oldest first, each in its short transaction (DETACH locks the table briefly)
    for (const suffix of [...new Set(due.map((child) => monthSuffix(child.month)))].sort()) {
      const month = due.filter((child) => monthSuffix(child.month) === suffix)
      await this.transaction(async (client) => {
        await lockSchema(client, this.schemaName)
        await client.query(dropPartitionsSql(this.s, month))
      })
      this.months?.delete(suffix)
      dropped.push(...month.filter((child) => child.table === 'audit_events').map((child) => child.name))
    }
    // checkpoints before the newest one older than `before`, which stays to anchor what remains
    await this.query(`DELETE FROM ${this.table('audit_checkpoints')} WHERE position < (
      SELECT position FROM ${this.table('audit_checkpoints')} WHERE "time" < $1 ORDER BY "time" DESC, position DESC LIMIT 1)`, [before])
    return dropped
  }

  async ping (): Promise<void> {
    await this.query('SELECT 1')
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.pool.end()
  }
}
