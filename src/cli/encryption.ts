import { resolve } from 'node:path'
import { Presets, SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import type { Config } from '../config.js'
import { generateKey, keyJwk } from '../lib/encryption.js'
import type { Keyring } from '../lib/encryption.js'
import { Catalogue } from '../services/catalogue.js'
import { DocumentService } from '../services/documents.js'
import { dataKeyId } from '../services/document-sealing.js'
import type { ReencryptOutcome } from '../services/documents.js'
import { FileBlobStore } from '../store/blob-store.js'
import type { BlobReencryptOutcome } from '../store/blob-store.js'
import type { Stores } from '../store/index.js'
import { StatedError } from '../lib/error-description.js'

/**
 * `encryption rotate`: re-encrypts every document's data and every file with the first key of
 * ENCRYPTION_KEYS (or ENCRYPTION_KEYS_FILE), so the keys after it can be removed. What is under
 * the first key already is skipped, and every write replaces a whole value or file that is
 * still as read: the command can be stopped at any moment and run again, and picks up where it
 * stopped. `encryption status` counts what each key protects.
 */
export interface RotationOptions {
  store: Stores
  keyring: Keyring
  blobDir: string
  pepper: string
  /** show progress bars (on standard error) */
  progress?: boolean
}

export interface RotationSummary {
  activeKeyId: string
  documents: Record<ReencryptOutcome, number>
  files: Record<BlobReencryptOutcome, number>
  seconds: number
}

/** documents re-encrypted at once: their reads and writes overlap */
const WINDOW = 32
const PAGE = 500

function progressBar (label: string, enabled: boolean | undefined): SingleBar | undefined {
  return enabled === false ? undefined : new SingleBar({ format: `${label} {bar} {value}/{total} | re-encrypted {reencrypted}`, hideCursor: true }, Presets.shades_classic)
}

async function inWindows<T> (items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += WINDOW) await Promise.all(items.slice(i, i + WINDOW).map(work))
}

async function countDocuments (store: Stores): Promise<number> {
  let n = 0
  for await (const page of store.documents.documentIdPages(PAGE)) n += page.length
  return n
}

export async function rotateEncryption (options: RotationOptions): Promise<RotationSummary> {
  const started = Date.now()
  const { store, keyring } = options
  const documents = new DocumentService({ documents: store.documents, catalogue: new Catalogue({ catalogue: store.catalogue }), pepper: options.pepper, keyring })
  const blobs = new FileBlobStore(options.blobDir, keyring)
  const summary: RotationSummary = {
    activeKeyId: keyring.activeId,
    documents: { reencrypted: 0, current: 0, missing: 0, changed: 0 },
    files: { reencrypted: 0, current: 0, missing: 0 },
    seconds: 0
  }

  const documentBar = progressBar('documents', options.progress)
  documentBar?.start(await countDocuments(store), 0, { reencrypted: 0 })
  let done = 0
  for await (const page of store.documents.documentIdPages(PAGE)) {
    await inWindows(page, async (id) => {
      let outcome = await documents.reencrypt(id)
      // changed between read and write (another rotation running): read it again, a few times
      for (let attempt = 0; outcome === 'changed' && attempt < 3; attempt++) outcome = await documents.reencrypt(id)
      summary.documents[outcome]++
      documentBar?.update(++done, { reencrypted: summary.documents.reencrypted })
    })
  }
  documentBar?.stop()

  const fileBar = progressBar('files    ', options.progress)
  fileBar?.start(await blobs.count(), 0, { reencrypted: 0 })
  done = 0
  for await (const page of blobs.addresses()) {
    await inWindows(page, async (sha256) => {
      summary.files[await blobs.reencrypt(sha256)]++
      fileBar?.update(++done, { reencrypted: summary.files.reencrypted })
    })
  }
  fileBar?.stop()
  summary.seconds = Math.round((Date.now() - started) / 100) / 10
  return summary
}

export interface EncryptionStatus {
  /** per key id ("clear" for what is not encrypted): how many document versions and files it protects */
  documentVersions: Record<string, number>
  files: Record<string, number>
}

/** What each key protects: once an old key protects nothing, it can be removed from the configuration. */
export async function encryptionStatus (store: Stores, blobDir: string): Promise<EncryptionStatus> {
  const status: EncryptionStatus = { documentVersions: {}, files: {} }
  const add = (counts: Record<string, number>, key: string | undefined): void => { counts[key ?? 'clear'] = (counts[key ?? 'clear'] ?? 0) + 1 }
  for await (const page of store.documents.documentIdPages(PAGE)) {
    await inWindows(page, async (id) => {
      for (const version of (await store.documents.getDocument(id))?.document.versions ?? []) add(status.documentVersions, dataKeyId(version))
    })
  }
  const blobs = new FileBlobStore(blobDir)
  for await (const page of blobs.addresses()) {
    await inWindows(page, async (sha256) => { add(status.files, await blobs.keyIdOf(sha256)) })
  }
  return status
}

export function encryptionCommands (program: Command, loadConfig: () => Config, withStore: (work: (store: Stores) => Promise<void>) => Promise<void>): void {
  const encryption = program.command('encryption').description('encryption at rest of document data and files (ENCRYPTION_KEYS / ENCRYPTION_KEYS_FILE)')

  encryption.command('generate-key')
    .description('print a new random AES-256 key: as an ENCRYPTION_KEYS item (id:base64) and as a JWK for ENCRYPTION_KEYS_FILE')
    .option('--id <id>', 'key id (default: from the date)')
    .action((options: { id?: string }) => {
      const key = generateKey()
      if (options.id) key.id = options.id
      process.stdout.write(`${key.id}:${key.key.toString('base64')}\n${JSON.stringify(keyJwk(key))}\n`)
    })

  encryption.command('rotate')
    .description('re-encrypt every document\'s data and every file (BLOB_DIR) with the first configured key, on the store at REDIS_URL / REDIS_CLUSTER_NODES; what is under it already is skipped, so it can be stopped and run again')
    .option('--quiet', 'no progress bars')
    .action(async (options: { quiet?: boolean }) => {
      const config = loadConfig()
      const keyring = config.encryption
      if (!keyring) throw new StatedError('no encryption key: set ENCRYPTION_KEYS or ENCRYPTION_KEYS_FILE as the gateways have it, the new key first')
      await withStore(async (store) => {
        const summary = await rotateEncryption({ store, keyring, blobDir: resolve(config.blobDir), pepper: config.subjectPepper, progress: !options.quiet })
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
        if (summary.documents.changed > 0) {
          process.stderr.write(`${summary.documents.changed} documents changed while they were re-encrypted: run the command again\n`)
          process.exitCode = 2
        }
      })
    })

  encryption.command('status')
    .description('how many document versions and files each key protects ("clear": not encrypted); a key that protects nothing can be removed')
    .action(async () => {
      const config = loadConfig()
      await withStore(async (store) => {
        process.stdout.write(JSON.stringify({ activeKeyId: config.encryption?.activeId ?? null, ...await encryptionStatus(store, resolve(config.blobDir)) }, null, 2) + '\n')
      })
    })
}
