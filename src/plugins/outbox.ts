import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { OutboxService, WEBHOOK_TYP } from '../services/outbox.js'
import { VERSION } from '../lib/version.js'
import { outboundFetcher, outboundPolicy } from '../lib/outbound.js'

declare module 'fastify' {
  interface FastifyInstance {
    outbox: OutboxService
  }
}

/**
 * The outbox worker (services/outbox.ts): started once the server is ready, in every process
 * where OUTBOX_WORKER is on, and stopped before the store closes.
 */
async function outboxPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config.outbox
  const outbox = new OutboxService({ ...config, portalWebhookUrl: app.config.portalWebhookUrl }, {
    outbox: app.stores.outbox,
    leases: app.stores.leases,
    events: app.stores.audit,
    documents: app.stores.documents,
    reuseRecords: app.stores.reuseRecords,
    agencies: app.stores.agencies,
    sign: async (body) => await app.signingKeys.signDetached(body, WEBHOOK_TYP),
    audit: async (input) => await app.audit.record(input),
    log: app.log,
    userAgent: `reuse-gateway/${VERSION} (+${app.config.gatewayIssuer})`,
    fetch: outboundFetcher(outboundPolicy(app.config.outbound)),
    onSettled: app.metrics?.outboxSettled
  })
  app.decorate('outbox', outbox)
  if (config.worker) {
    app.addHook('onReady', async () => { outbox.start() })
    // hooks run in reverse order: this one before the audit trail and the store close
    app.addHook('onClose', async () => { await outbox.stop() })
  }
}

export default fp(outboxPlugin, { name: 'outbox', dependencies: ['store', 'auth', 'audit'] })
