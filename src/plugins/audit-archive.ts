import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AuditArchiver } from '../services/audit-archiver.js'
import { TieredAuditStore } from '../services/audit-tiers.js'
import { ArchiveUnavailableError } from '../store/errors.js'
import type { AuditArchive, AuditStore } from '../store/index.js'
import { PostgresAuditArchive } from '../store/postgres/audit-archive.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the audit trail as the services read it: the store alone, or the store and the archive as one */
    auditTrail: AuditStore
    /** the archiver, when AUDIT_ARCHIVE_URL is set */
    auditArchiver: AuditArchiver | undefined
  }
}

/**
 * The audit archive (AUDIT_ARCHIVE_URL): PostgreSQL behind the store, the archiver that moves
 * events older than AUDIT_HOT_DAYS into it, and the trail both tiers make together, which every
 * reader of the audit trail is given. Without AUDIT_ARCHIVE_URL the trail is the store's alone
 * and nothing here runs.
 *
 * PostgreSQL down at start, or later, does not stop the gateway: archiving waits (events stay in
 * the store) and reads that need archived events are answered 503 archive_unavailable.
 */
async function auditArchivePlugin (app: FastifyInstance): Promise<void> {
  const settings = app.config.audit.archive
  if (!settings) {
    app.decorate('auditTrail', app.stores.audit)
    app.decorate('auditArchiver', undefined)
    return
  }
  const archive: AuditArchive = new PostgresAuditArchive({ url: settings.url, logger: app.log })
  const archiver = new AuditArchiver({
    hot: app.stores.audit,
    archive,
    leases: app.stores.leases,
    log: app.log,
    hotDays: settings.hotDays,
    // a process that dies holding the lease holds up archiving for ten intervals at most
    leaseMs: Math.min(300_000, Math.max(10_000, 10 * settings.intervalMs)),
    retentionDays: app.config.audit.retentionDays,
    migrate: settings.migrateAtStart,
    signer: app.signingKeys,
    issuer: app.config.gatewayIssuer
  })
  app.decorate('auditTrail', new TieredAuditStore(app.stores.audit, archive))
  app.decorate('auditArchiver', archiver)

  const onError = (err: unknown): void => {
    if (err instanceof ArchiveUnavailableError) app.log.warn({ err }, 'audit archive unreachable; archiving waits, events stay in the store')
    else app.log.error({ err }, 'audit archiving failed; trying again at the next interval')
  }
  app.addHook('onReady', async () => {
    if (settings.migrateAtStart) {
      try {
        const applied = await archive.migrate()
        if (applied.length) app.log.info({ applied }, 'audit archive schema migrated')
      } catch (err) {
        // the archiver migrates at its next run
        onError(err)
      }
    }
    archiver.start(settings.intervalMs, onError)
  })
  // runs after the audit trail's own shutdown (hooks run in reverse registration order)
  app.addHook('onClose', async () => {
    await archiver.stop()
    await archive.close()
  })
}

export default fp(auditArchivePlugin, { name: 'audit-archive', dependencies: ['store', 'auth'] })
