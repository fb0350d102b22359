import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AuditReads } from '../services/audit-reads.js'
import { HealthService } from '../services/health.js'
import { PortalService } from '../services/portal.js'

declare module 'fastify' {
  interface FastifyInstance {
    auditReads: AuditReads
    health: HealthService
    portal: PortalService
  }
}

/**
 * The services that read what others wrote: the auditors' reads of the audit trail, the
 * portal's views of a citizen, and liveness and readiness.
 */
async function readsPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('auditReads', new AuditReads({
    audit: app.audit,
    pepper: app.config.subjectPepper,
    jwks: () => app.signingKeys.jwks(),
    issuer: app.config.gatewayIssuer
  }))
  app.decorate('portal', new PortalService({
    agencies: app.stores.agencies,
    documents: app.stores.documents,
    index: app.documents,
    audit: app.audit,
    secret: app.config.subjectPepper
  }))
  app.decorate('health', new HealthService({ stores: app.stores, lifecycle: app.lifecycle }))
}

export default fp(readsPlugin, { name: 'reads', dependencies: ['lifecycle', 'store', 'auth', 'audit', 'documents'] })
