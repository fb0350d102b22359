import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { PortalService } from '../services/portal.js'

declare module 'fastify' {
  interface FastifyInstance {
    portal: PortalService
  }
}

/** The national portal's views of a citizen's results and of who used them (services/portal.ts). */
async function portalPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('portal', new PortalService({
    agencies: app.store,
    documents: app.store,
    index: app.documents,
    audit: app.audit,
    secret: app.config.subjectPepper
  }))
}

export default fp(portalPlugin, { name: 'portal', dependencies: ['store', 'audit', 'documents'] })
