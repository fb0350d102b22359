import { Presets, SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import type { Config } from '../config.js'
import { AuditArchiver } from '../services/audit-archiver.js'
import type { ArchiveStatus } from '../services/audit-archiver.js'
import type { Stores } from '../store/index.js'
import { PostgresAuditArchive } from '../store/postgres/audit-archive.js'
import { StatedError } from '../lib/error-description.js'

/**
 * `reuse-gateway audit archive …`: the audit archive (PostgreSQL at AUDIT_ARCHIVE_URL) for its
 * operators: apply its schema migrations, see how far archiving is, archive now.
 */
export function auditArchiveCommands (audit: Command, loadConfig: () => Config, withStore: (work: (store: Stores) => Promise<void>) => Promise<void>): void {
  const archiveCommand = audit.command('archive').description('the audit archive: events older than AUDIT_HOT_DAYS, moved from the store to PostgreSQL (AUDIT_ARCHIVE_URL)')

  const withArchive = async (work: (archive: PostgresAuditArchive, config: Config) => Promise<void>): Promise<void> => {
    const config = loadConfig()
    const settings = config.audit.archive
    if (!settings) throw new StatedError('no audit archive: set AUDIT_ARCHIVE_URL (postgres://…) as the gateways have it')
    const archive = new PostgresAuditArchive({ url: settings.url })
    try {
      await work(archive, config)
    } finally {
      await archive.close()
    }
  }

  const archiverOf = (store: Stores, archive: PostgresAuditArchive, config: Config, migrate: boolean): AuditArchiver => new AuditArchiver({
    hot: store.audit,
    archive,
    leases: store.leases,
    log: { info () {}, warn () {}, error () {} },
    hotDays: config.audit.archive?.hotDays ?? 30,
    // retention (which signs a final checkpoint with the gateway's key) is the gateways' to run
    retentionDays: 0,
    migrate,
    signer: { async sign () { throw new StatedError('retention is run by the gateways') } },
    issuer: config.gatewayIssuer
  })

  /** the archiver over the store and the archive the gateways share */
  const withArchiver = async (migrate: boolean, work: (archiver: AuditArchiver) => Promise<void>): Promise<void> => {
    await withArchive(async (archive, config) => {
      await withStore(async (store) => { await work(archiverOf(store, archive, config, migrate)) })
    })
  }

  archiveCommand.command('migrate')
    .description("apply the archive's pending schema migrations, in order, each in its transaction (safe to run while gateways serve, and twice)")
    .action(async () => {
      await withArchive(async (archive) => {
        const applied = await archive.migrate()
        const { current } = await archive.schemaVersion()
        process.stdout.write(applied.length ? `applied migrations ${applied.join(', ')}; the schema is at version ${current}\n` : `nothing to apply; the schema is at version ${current}\n`)
      })
    })

  archiveCommand.command('status')
    .description('the hot window, how far the trail is archived, the lag of each chain (events still in the store) and the size of each month')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withArchiver(false, async (archiver) => {
        const status = await archiver.status()
        process.stdout.write(options.json ? JSON.stringify(status, null, 2) + '\n' : statusText(status))
      })
    })

  archiveCommand.command('run')
    .description('archive now what is older than the hot window, with progress (waits for nothing: if a gateway is archiving, says so)')
    .option('--quiet', 'no progress')
    .action(async (options: { quiet?: boolean }) => {
      await withArchiver(true, async (archiver) => {
        const bar = options.quiet ? undefined : new SingleBar({ format: 'archiving | {bar} | {value}/{total} events | {eta_formatted} left', hideCursor: true }, Presets.shades_classic)
        let started = false
        const result = await archiver.run((moved, due) => {
          if (!started) { bar?.start(due, 0); started = true }
          bar?.update(moved)
        })
        bar?.stop()
        if (result.busy) {
          process.stdout.write('another process is archiving now (a gateway holds the archiver\'s lease); nothing done\n')
          return
        }
        process.stdout.write(`${result.moved} events and ${result.checkpoints} checkpoints archived${result.cut ? `, up to the checkpoint of ${result.cut}` : ' (nothing is older than the hot window yet)'}; ${result.forgotten} idle chains forgotten by the store\n`)
      })
    })
}

const MB = 1024 * 1024

function statusText (status: ArchiveStatus): string {
  const lines = [
    `hot window: ${status.hotDays} days (events before ${status.cutoff} are due for the archive)`,
    `retention: ${status.retentionDays ? `${status.retentionDays} days` : 'forever'}`,
    `schema: version ${status.schema.current} (this gateway's: ${status.schema.latest})`,
    `archived up to: ${status.archivedUpTo ? `${status.archivedUpTo.time} (${status.archivedUpTo.id})` : 'nothing yet'}`
  ]
  if (status.broken) lines.push(`BROKEN: chain ${status.broken.chain} at #${status.broken.seq}: ${status.broken.reason}`)
  lines.push('', `${'chain'.padEnd(28)} ${'in store'.padStart(10)} ${'archived'.padStart(10)} ${'lag'.padStart(10)}`)
  for (const c of status.chains) lines.push(`${c.chain.padEnd(28)} ${String(c.hot ?? '-').padStart(10)} ${String(c.archived ?? '-').padStart(10)} ${String(c.lag).padStart(10)}`)
  lines.push('', `${'month'.padEnd(28)} ${'rows'.padStart(12)} ${'MB'.padStart(10)}`)
  for (const p of status.partitions) lines.push(`${p.name.padEnd(28)} ${String(p.rows).padStart(12)} ${(p.bytes / MB).toFixed(1).padStart(10)}`)
  return lines.join('\n') + '\n'
}
