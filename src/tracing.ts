import { register } from 'node:module'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { redactedPath } from './lib/request-path.js'
import { enableSpans } from './lib/trace-context.js'
import { VERSION } from './lib/version.js'

/**
 * OpenTelemetry traces, started by server.ts when the OTEL_* environment asks for them
 * (config.ts, tracingWanted) and before any module of the app is loaded: instrumentations patch
 * modules as they are imported. This module and the SDK are only ever loaded then (dynamic
 * imports); with tracing off the gateway loads neither.
 *
 * What is traced: the HTTP server (instrumentation-http: the incoming W3C `traceparent` is the
 * parent of the server span), Fastify's routes, hooks and handlers (@fastify/otel), Redis commands
 * inside a trace (instrumentation-ioredis), and the gateway's own spans (lib/trace-context.ts):
 * store calls, signatures and outbox deliveries. The SDK reads the standard variables itself
 * (exporter, endpoint, protocol, headers, sampler, propagators, resource); only traces are
 * exported (the gateway's metrics are Prometheus's, its logs pino's).
 *
 * ESM: the app's imports of ioredis and node:http are seen through import-in-the-middle's
 * loader hook, registered here for exactly the modules the instrumentations hook (not for every
 * module of the process).
 */
export interface Tracing {
  /** exports what is left and stops: at the end of a graceful shutdown */
  shutdown(): Promise<void>
}

export interface TracingOptions {
  /** where spans go instead of the exporter the environment names (a test's in-memory exporter) */
  spanProcessors?: SpanProcessor[]
}

export async function startTracing (options: TracingOptions = {}): Promise<Tracing> {
  const { createAddHookMessageChannel } = await import('import-in-the-middle')
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel()
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions)

  const [{ NodeSDK }, { HttpInstrumentation }, { IORedisInstrumentation }, { FastifyOtelInstrumentation }, { defaultResource, resourceFromAttributes }, { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@fastify/otel'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions')
  ])
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the SDK, override these
    resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'reuse-gateway', [ATTR_SERVICE_VERSION]: VERSION })),
    instrumentations: [
      new HttpInstrumentation({
        // load balancers' probes and Prometheus's scrapes would be most of the traces, and say nothing
        ignoreIncomingRequestHook: (request) => /^\/(health\/|metrics(\?|$))/.test(request.url ?? ''),
        // as in the access log: the path without its query string, a download link's token redacted
        startIncomingSpanHook: (request) => ({ 'url.path': redactedPath(request.url ?? '/'), 'url.query': undefined })
      }),
      new IORedisInstrumentation({
        // a command's name, never its arguments (keys, encrypted records, hashes)
        dbStatementSerializer: (command) => command,
        // the outbox's and the checkpoints' polls are not traces of their own
        requireParentSpan: true
      }),
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        requestHook: (span, request) => { span.setAttribute('url.path', redactedPath(request.url)) }
      })
    ],
    // traces only: no OTLP metrics or logs, whatever OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER say
    metricReaders: [],
    logRecordProcessors: [],
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {})
  })
  sdk.start()
  // the loader has the list of hooked modules before the app's are imported
  await waitForAllMessagesAcknowledged()
  enableSpans()
  return { shutdown: async () => await sdk.shutdown() }
}
