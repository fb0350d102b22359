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

/**
 * Writes out what the audit log destination holds (it writes asynchronously) and fsyncs it.
 * SonicBoom's flushSync while an asynchronous write is in flight would write the rest before
 * the bytes in flight: wait for that write to finish (`drain`) first, and for the file to be open.
 */
export async function flushDestination (destination: ReturnType<typeof pino.destination>): Promise<void> {
  // fd, destroyed and _writing are SonicBoom's own state, not in its types
  const state = destination as unknown as { fd: number, destroyed: boolean, _writing: boolean }
  if (state.destroyed) return
  if (state.fd < 0) await once(destination, 'ready')
  // under a steady load the writes follow one another and `drain` may wait: bounded, and the
  // writes in flight are then what reaches the file soonest anyway
  if (state._writing && !await drained(destination, 2000)) return
  if (!state.destroyed) destination.flushSync()
}

async function drained (destination: ReturnType<typeof pino.destination>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([once(destination, 'drain').then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
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
    flushLog: async () => { await flushDestination(destination) },
    signer: app.signingKeys,
    issuer: config.gatewayIssuer,
    cursorKey: createHmac('sha256', config.subjectPepper).update('audit-cursor').digest('hex'),
    // with an archive: checkpoints list the store's chains, and a chain starts past seq 1 only after a retention checkpoint
    ...(config.audit.archive ? { signedRetention: true, liveChains: async () => await app.stores.audit.auditChains() } : {}),
    onAppend: app.metrics?.auditAppended
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
    // skipped when nothing moved since the last one; the log is flushed either way
    await audit.checkpoint().catch(onError)
    await flushDestination(destination).catch(onError)
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
