import closeWithGrace from 'close-with-grace'
import { ConfigError, listeningUrl, loadConfig } from './config.js'
import { StatedError } from './lib/error-description.js'
import type { Config } from './config.js'
import type { Tracing } from './tracing.js'

/** The process entry: configuration → app → listen, and a graceful, bounded shutdown. */

/**
 * What the operator must fix (a bad variable, an unreadable key file, a store refused by its
 * settings) is said in one line on standard error, and the process exits 1; anything else is a
 * defect, thrown with its stack.
 */
function refuseToStart (err: unknown): never {
  if (err instanceof StatedError) {
    process.stderr.write(`reuse-gateway: ${err.message}\n`)
    process.exit(1)
  }
  throw err
}

let config: Config
try {
  config = loadConfig()
} catch (err) {
  refuseToStart(err)
}

// Traces, when the OTEL_* variables ask for them, start before the app's modules are loaded
// (its instrumentations patch ioredis and http as they are imported): hence the dynamic imports
const tracing: Tracing | undefined = config.tracing ? await (await import('./tracing.js')).startTracing() : undefined
const { buildApp } = await import('./app.js')
const { NO_AGENCY_NOTICE, demoAllowed, demoAuditLogFile, demoStoreState, otherAgenciesNotice, peekDemoStoreState, setUpDemo } = await import('./demo.js')

// A demo start writes the audit log to the demo folder, so that the start banner does not
// scroll away under the demo's own events (production never has a demo)
if (demoAllowed(config) && config.auditLogFile === undefined) {
  const state = await peekDemoStoreState(config)
  if (state === 'empty' || state === 'demo') config = { ...config, auditLogFile: demoAuditLogFile(config) }
}

let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp(config)
} catch (err) {
  refuseToStart(err)
}

if (app.stores.kind === 'memory') {
  process.stderr.write([
    '',
    '  ┌────────────────────────────────────────────────────────────────────┐',
    '  │ reuse-gateway is running on the EMBEDDED IN-MEMORY STORE.          │',
    '  │ Everything is lost when this process stops. For real use set      │',
    '  │ REDIS_URL (see docs/production.md).                                │',
    '  └────────────────────────────────────────────────────────────────────┘',
    '', ''
  ].join('\n'))
}

// On SIGTERM/SIGINT: fail readiness, wait for load balancers to notice, stop accepting, finish
// in-flight requests, close the store; past SHUTDOWN_TIMEOUT_MS close-with-grace exits 1.
closeWithGrace({ delay: config.timeouts.shutdownMs }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after an unexpected error')
  else app.log.info({ signal }, 'shutting down')
  app.lifecycle.draining = true
  if (config.timeouts.shutdownDrainDelayMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, config.timeouts.shutdownDrainDelayMs))
  }
  await app.close()
  // the last spans are exported before the process ends
  await tracing?.shutdown().catch((err: unknown) => { app.log.warn({ err }, 'the last traces could not be exported') })
  app.log.info('shut down cleanly')
})

let address: string
try {
  address = await app.listen({ port: config.port, host: config.host })
} catch (err) {
  // a start refused for the store's settings, or a port that cannot be had, says why on
  // standard error in one line, as a bad variable does
  const where = `port ${config.port} on ${config.host}`
  const refusal = ({
    EADDRINUSE: `${where} is in use — set PORT (or HOST) to another`,
    EACCES: `${where} needs privileges this process does not have — set PORT to 1024 or above`,
    EADDRNOTAVAIL: `${config.host} is not an address of this machine — set HOST to one that is (e.g. 127.0.0.1 or 0.0.0.0)`
  } as Record<string, string | undefined>)[(err as NodeJS.ErrnoException).code ?? '']
  if (refusal !== undefined) {
    process.stderr.write(`reuse-gateway: ${refusal}\n`)
    app.log.fatal({ code: (err as NodeJS.ErrnoException).code }, `could not start: ${refusal}`)
  } else {
    if (err instanceof ConfigError) process.stderr.write(`reuse-gateway: ${err.message}\n`)
    app.log.fatal({ err }, 'could not start')
  }
  process.exit(1)
}

// the URL the default issuer names, so that discovery from the printed URL passes an issuer check
const base = config.port === 0 ? address : listeningUrl(config.host, config.port)
try {
  if (demoAllowed(config)) {
    const state = await demoStoreState(app.stores, config.demoDir)
    process.stderr.write((state === 'other' ? otherAgenciesNotice(config.demoDir) : await setUpDemo(app, base, state)) + '\n')
  } else if (config.admin === undefined && (await app.stores.agencies.listAgencies()).length === 0) {
    process.stderr.write(NO_AGENCY_NOTICE + '\n')
  }
} catch (err) {
  // the gateway serves without it; the demo is set up at the next start the store answers
  app.log.warn({ err }, 'the demo could not be set up')
}
