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

/** The catalogue (seeded from schemas/document-types at start), the index, and the file store. */
async function documentsPlugin (app: FastifyInstance): Promise<void> {
  const catalogue = new Catalogue(app.store)
  app.decorate('catalogue', catalogue)
  app.decorate('documents', new DocumentService(app.store, catalogue, app.config.subjectPepper))
  app.decorate('blobs', new FileBlobStore(resolve(app.config.blobDir)))
  app.addHook('onReady', async () => {
    try {
      await catalogue.seed()
    } catch (err) {
      // Redis may not be there yet at start; the next start (or an admin PUT) seeds it
      app.log.warn({ err: { message: (err as Error).message } }, 'could not seed the document-type catalogue')
    }
  })
}

export default fp(documentsPlugin, { name: 'documents', dependencies: ['store'] })
