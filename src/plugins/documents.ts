import { resolve } from 'node:path'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Catalogue } from '../services/catalogue.js'
import { DocumentService } from '../services/documents.js'
import { FileBlobStore } from '../store/blob-store.js'
import type { BlobStore } from '../store/blob-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    catalogue: Catalogue
    documents: DocumentService
    blobs: BlobStore
  }
}

/** The catalogue (seeded from schemas/document-types at start), the index, and the file store, encrypted at rest when keys are configured. */
async function documentsPlugin (app: FastifyInstance): Promise<void> {
  const catalogue = new Catalogue({ catalogue: app.stores.catalogue })
  app.decorate('catalogue', catalogue)
  const keyring = app.config.encryption
  const blobs = new FileBlobStore(resolve(app.config.blobDir), keyring)
  app.decorate('blobs', blobs)
  app.decorate('documents', new DocumentService({
    documents: app.stores.documents,
    catalogue,
    pepper: app.config.subjectPepper,
    keyring,
    // the outbox plugin comes after this one: looked up when an announcement is withdrawn
    announcements: { discard: async (auditEventId) => { await app.outbox.discard(auditEventId) } },
    files: { blobs, maxBytes: app.config.limits.fileBytes }
  }))
  // said at every start, so an operator can tell from the log how the data is kept (key ids only)
  if (keyring) {
    app.log.info({ encryptionAtRest: keyring }, `encryption at rest on: document data and files are encrypted with key ${keyring.activeId}`)
  } else {
    const level = app.config.nodeEnv === 'production' ? 'warn' : 'info'
    app.log[level]({ encryptionAtRest: false }, 'encryption at rest off: document data and files are stored in clear (set ENCRYPTION_KEYS or ENCRYPTION_KEYS_FILE to encrypt them)')
  }
  // Redis may not be there yet at start: seed once it answers, trying again every second
  let timer: NodeJS.Timeout | undefined
  let warned = false
  const seed = async (): Promise<void> => {
    try {
      await catalogue.seed()
      if (warned) app.log.info('document-type catalogue seeded')
    } catch (err) {
      if (!warned) app.log.warn({ err }, 'could not seed the document-type catalogue yet; trying again every second')
      warned = true
      timer = setTimeout(() => { void seed() }, 1000)
      timer.unref()
    }
  }
  app.addHook('onReady', seed)
  app.addHook('onClose', async () => clearTimeout(timer))
}

export default fp(documentsPlugin, { name: 'documents', dependencies: ['store'] })
