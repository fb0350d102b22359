import type { Test } from 'tap'
import pg from 'pg'
import type { LightMyRequestResponse } from 'fastify'
import { AuditArchiver } from '../../src/services/audit-archiver.js'
import type { AuditEvent } from '../../src/services/audit.js'
import type { Stores } from '../../src/store/index.js'
import { PostgresAuditArchive } from '../../src/store/postgres/audit-archive.js'
import type { TestPostgres } from './postgres-server.js'
import { bearer, buildWorld, reuseQuery } from './world.js'
import type { World } from './world.js'

/**
 * A gateway whose audit trail has an archive: the world of test/lib/world.ts on a given store,
 * with AUDIT_ARCHIVE_URL on a database of its own in a throwaway PostgreSQL, and an archiver whose
 * clock runs days ahead (with a hot window of one day), so that what the test did is due.
 */
export const DAY = 86_400_000

export interface ArchiveWorld<S extends Stores = Stores> {
  w: World
  store: S
  archive: PostgresAuditArchive
  archiver: (options?: { days?: number }) => AuditArchiver
}

let databases = 0

/** a database of its own on the throwaway server */
export async function archiveDatabase (postgres: TestPostgres, name = `archive${process.pid}_${++databases}`): Promise<string> {
  const admin = new pg.Client({ connectionString: postgres.url })
  // a test may stop the server: this connection's end must not be an uncaught error
  admin.on('error', () => {})
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  return postgres.url.replace(/\/postgres$/, `/${name}`)
}

export async function archiveWorld<S extends Stores> (t: Test, postgres: TestPostgres, store: S): Promise<ArchiveWorld<S>> {
  const url = await archiveDatabase(postgres)
  // the gateway's own archiver waits a day: the test's, with its clock days ahead, does the moving
  const w = await buildWorld(t, { store, env: { AUDIT_ARCHIVE_URL: url, AUDIT_ARCHIVE_INTERVAL_MS: String(DAY) } })
  const archive = new PostgresAuditArchive({ url })
  t.teardown(async () => await archive.close())
  const archiver = ({ days = 2 }: { days?: number } = {}): AuditArchiver => new AuditArchiver({
    hot: store.audit, archive, leases: store.leases, log: w.app.log, hotDays: 1, retentionDays: 0, migrate: true,
    signer: w.app.signingKeys, issuer: w.app.config.gatewayIssuer, batchSize: 7, now: () => Date.now() + days * DAY
  })
  return { w, store, archive, archiver }
}

export const auditor = (w: World): Record<string, string> => bearer(w.tokens.auditor)

/** every page of a search, following its cursors */
export async function searchAll (w: World, body: Record<string, unknown>): Promise<AuditEvent[]> {
  const events: AuditEvent[] = []
  let cursor: string | undefined
  do {
    const res = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: auditor(w), payload: { ...body, ...(cursor ? { cursor } : {}) } })
    if (res.statusCode !== 200) throw new Error(`search: ${res.statusCode} ${res.body}`)
    const page = res.json() as { events: AuditEvent[], nextCursor?: string }
    events.push(...page.events)
    cursor = page.nextCursor
  } while (cursor)
  return events
}

/** the world's citizen's access history, as the portal reads it */
export async function history (w: World, extra: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
  return await w.app.inject({ method: 'POST', url: '/v1/portal/access-history', headers: bearer(w.tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen }, ...extra } })
}

/** `n` reuse queries by the world's requester about its citizen */
export async function reuseSome (w: World, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
    if (res.statusCode !== 200) throw new Error(`reuse: ${res.body}`)
  }
}
