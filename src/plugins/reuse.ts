import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AgreementService } from '../services/agreements.js'
import { AttestationService } from '../services/attestations.js'
import { DownloadService } from '../services/downloads.js'
import { ReuseService } from '../services/reuse.js'
import { AgreementRegistry } from '../services/registry-cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    reuse: ReuseService
    agreements: AgreementService
    downloads: DownloadService
    attestations: AttestationService
  }
}

/** The reuse use cases: queries and consent withdrawals, agreements and discovery, downloads, attestation checks. */
async function reusePlugin (app: FastifyInstance): Promise<void> {
  const store = app.stores
  const issuer = app.config.gatewayIssuer
  app.decorate('reuse', new ReuseService({
    // read on every query: kept between queries, read again once one changes anywhere
    agencies: app.agencyRegistry,
    agreements: new AgreementRegistry(store.agreements),
    reuseRecords: store.reuseRecords,
    catalogue: app.catalogue,
    index: app.documents,
    agencyKeys: app.agencyKeys,
    signer: app.signingKeys,
    stats: app.reuseStats,
    issuer,
    onQueried: app.metrics?.reuseQueried
  }))
  app.decorate('agreements', new AgreementService({ agencies: store.agencies, agreements: store.agreements, catalogue: app.catalogue }))
  app.decorate('downloads', new DownloadService({ reuseRecords: store.reuseRecords, blobs: app.blobs, stats: app.reuseStats }))
  app.decorate('attestations', new AttestationService({ documents: store.documents, signer: app.signingKeys, issuer }))
}

export default fp(reusePlugin, { name: 'reuse', dependencies: ['store', 'auth', 'documents', 'stats'] })
