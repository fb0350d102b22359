import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AuditReads } from '../services/audit-reads.js'

declare module 'fastify' {
  interface FastifyInstance {
    auditReads: AuditReads
  }
}

/** The auditors' reads of the audit trail (services/audit-reads.ts). */
async function auditReadsPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('auditReads', new AuditReads({
    audit: app.audit,
    pepper: app.config.subjectPepper,
    jwks: () => app.signingKeys.jwks(),
    issuer: app.config.gatewayIssuer
  }))
}

export default fp(auditReadsPlugin, { name: 'audit-reads', dependencies: ['auth', 'audit'] })
