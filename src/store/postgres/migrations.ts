/**
 * The audit archive's schema, as versioned migrations: each one runs in its own transaction and is
 * recorded in `audit_archive_migrations`, under a transaction-scoped advisory lock, so that several
 * gateways starting at once (or an operator's `audit archive migrate` beside them) apply each
 * migration exactly once and never see a half-made schema.
 *
 * Sizing (about a billion events over five years): events are partitioned by month of their id
 * (a ULID, whose first 10 characters are its time), so the primary key is the partition key,
 * every search by time prunes to the months it spans, and retention drops whole months instead
 * of deleting rows. Each row keeps the fields searches use as columns and the rest of the event
 * as JSON text (event-rows.ts): nothing is stored twice, and the event reads back exactly as
 * archived (verifiers recompute its hash over it). Monthly partitions are created ahead of time
 * by the archiver (partitions.ts), not here.
 */
import type { PoolClient } from 'pg'

export interface Migration {
  version: number
  description: string
  /** the statements, for the schema (an identifier already quoted) */
  sql: (schema: string) => string
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'audit events and their documents partitioned by month of their id, archived chain heads, checkpoints',
    sql: (s) => `
      -- fixed-width columns first: no alignment padding between them
      CREATE TABLE ${s}.audit_events (
        seq bigint NOT NULL,
        "time" timestamptz,
        -- the day from which the subject sees the event in its access history (-infinity: at once)
        history_from date,
        id text COLLATE "C" NOT NULL,
        chain text COLLATE "C" NOT NULL,
        actor text COLLATE "C",
        action text,
        outcome text,
        -- a keyed hash of the person or organization concerned, never its identifier
        subject text COLLATE "C",
        prev_hash text NOT NULL,
        hash text NOT NULL,
        -- the rest of the event, JSON (text, not jsonb: jsonb refuses \\u0000 in strings)
        body text NOT NULL,
        PRIMARY KEY (id)
      ) PARTITION BY RANGE (id);
      CREATE INDEX audit_events_actor ON ${s}.audit_events (actor, id) WHERE actor IS NOT NULL;
      CREATE INDEX audit_events_subject ON ${s}.audit_events (subject, id) WHERE subject IS NOT NULL;
      -- not unique: a unique index must hold the partition key; archiveEvents keeps seqs unique
      CREATE INDEX audit_events_chain ON ${s}.audit_events (chain, seq);

      CREATE TABLE ${s}.audit_event_documents (
        document_id text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        PRIMARY KEY (document_id, id)
      ) PARTITION BY RANGE (id);

      -- the archived head of each chain: the row archiveEvents locks, so two archivers never both extend a chain
      CREATE TABLE ${s}.audit_chains (
        chain text COLLATE "C" PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL,
        last_id text COLLATE "C"
      );

      -- read in time order (a retention checkpoint, archived late, pins the time it names), then by position; digest (SHA-256 of the JWS) makes archiving one twice a no-op
      CREATE TABLE ${s}.audit_checkpoints (
        position bigserial PRIMARY KEY,
        "time" timestamptz NOT NULL,
        jws text NOT NULL,
        chains jsonb NOT NULL,
        digest text NOT NULL UNIQUE
      );
      CREATE INDEX audit_checkpoints_time ON ${s}.audit_checkpoints ("time", position);`
  }
]

export const LATEST_VERSION = Math.max(...MIGRATIONS.map((m) => m.version))

/** the advisory lock every schema change of one schema's archive takes (migrations and partitions) */
export async function lockSchema (client: PoolClient, schema: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`reuse-gateway audit archive ${schema}`])
}

/** runs work in a transaction on one connection (the archive's, which turns connection failures into ArchiveUnavailableError) */
export type InTransaction = <T>(work: (client: PoolClient) => Promise<T>) => Promise<T>

async function appliedVersions (client: PoolClient, schema: string): Promise<Set<number>> {
  const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${schema}.audit_archive_migrations`)
  return new Set(rows.map((row) => row.version))
}

/**
 * Applies the migrations not applied yet, in order, each in its own transaction holding the
 * schema's advisory lock (and checking again under it: another process may have just applied
 * it). `schema` is the quoted identifier, `name` its plain name. Returns the versions applied.
 */
export async function migrate (inTransaction: InTransaction, schema: string, name: string): Promise<number[]> {
  await inTransaction(async (client) => {
    await lockSchema(client, name)
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.audit_archive_migrations (
      version int PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
  })
  const applied: number[] = []
  for (const migration of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
    const done = await inTransaction(async (client) => {
      await lockSchema(client, name)
      if ((await appliedVersions(client, schema)).has(migration.version)) return false
      await client.query(migration.sql(schema))
      await client.query(`INSERT INTO ${schema}.audit_archive_migrations (version, description) VALUES ($1, $2)`, [migration.version, migration.description])
      return true
    })
    if (done) applied.push(migration.version)
  }
  return applied
}

/** the newest version applied (0: none, or no archive schema yet) and the newest this code knows */
export async function schemaVersion (inTransaction: InTransaction, schema: string): Promise<{ current: number, latest: number }> {
  return await inTransaction(async (client) => {
    const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [`${schema}.audit_archive_migrations`])
    if (!rows[0]?.exists) return { current: 0, latest: LATEST_VERSION }
    const max = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${schema}.audit_archive_migrations`)
    return { current: max.rows[0]?.version ?? 0, latest: LATEST_VERSION }
  })
}
