import { createHmac } from 'node:crypto'
import { once } from 'node:events'
import fp from 'fastify-plugin'
import { pino } from 'pino'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errorLogging } from '../lib/error-description.js'
import { AuditService } from '../services/audit.js'
import type { AuditEvent, AuditOutcome } from '../services/audit.js'
import type { Subject } from '../services/identifiers.js'
import type { Call, RecordAudit } from '../services/call.js'

export type { AuditEvent }

export interface AuditSearchInput {
  agency?: string
  subject?: Subject
  action?: string
  outcome?: AuditOutcome
  documentId?: string
  from?: string
  to?: string
  limit?: number
  cursor?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditService
  }
  interface FastifyRequest {
    /** records an audit event with this request's actor, id and client address; rejects if it cannot */
    audit: RecordAudit
  }
}

/**
 * The audit trail: a service every route writes through, its own JSON-lines log (AUDIT_LOG_FILE
 * or standard output, whatever LOG_LEVEL says), signed checkpoints at an interval and a final
 * one at shutdown, and store-side retention.
 */
/** The call a route hands to a use case: the authenticated caller, its audit trail and its log. */
export function callOf (request: FastifyRequest): Call {
  if (!request.caller) throw new Error('callOf needs an authenticated route')
  return { caller: request.caller, audit: async (event, options) => await request.audit(event, options), log: request.log }
}

async function auditPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const destination = config.auditLogFile
    ? pino.destination({ dest: config.auditLogFile, mkdir: true, sync: false })
    : pino.destination({ fd: 1, sync: false })
  const log = pino({ level: 'info', base: { stream: 'audit' }, ...errorLogging() }, destination)
  const audit = new AuditService({
    audit: app.auditTrail,
    log,
    signer: app.signingKeys,
    issuer: config.gatewayIssuer,
    cursorKey: createHmac('sha256', config.subjectPepper).update('audit-cursor').digest('hex')
  })
  app.decorate('audit', audit)
  app.decorateRequest('audit', async function (this: FastifyRequest, event, options) {
    return await audit.record({
      actor: this.caller?.code ?? null,
      requestId: this.id,
      clientAddress: this.ip,
      ...event
    }, options)
  })

  const onError = (err: unknown): void => { app.log.warn({ err }, 'audit checkpoint failed; retrying at the next interval') }
  app.addHook('onReady', async () => {
    audit.startCheckpoints(config.audit.checkpointIntervalMs, onError)
    // with an archive, retention is the archiver's (it drops whole months of the archive)
    if (config.audit.retentionDays > 0 && !config.audit.archive) {
      const timer = setInterval(() => {
        audit.prune(new Date(Date.now() - config.audit.retentionDays * 86_400_000)).catch(onError)
      }, 3_600_000)
      timer.unref()
      app.addHook('onClose', async () => clearInterval(timer))
    }
  })
  // runs before the store closes (hooks run in reverse registration order)
  app.addHook('onClose', async () => {
    await audit.stop()
    await audit.checkpoint().catch(onError)
    // the file is written asynchronously: wait until everything (the final checkpoint
    // included) is on disk and the file closed, bounded; standard output is flushed at exit
    if (config.auditLogFile) {
      const closed = once(destination, 'close')
      destination.end()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, 5000) })])
      clearTimeout(timer)
    }
  })
}

export default fp(auditPlugin, { name: 'audit', dependencies: ['store', 'auth', 'audit-archive'] })
