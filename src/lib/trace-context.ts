import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, isSpanContextValid, propagation, trace } from '@opentelemetry/api'
import type { Attributes, Span } from '@opentelemetry/api'

/**
 * The gateway's own spans and trace ids, through @opentelemetry/api only: the SDK is loaded by
 * src/tracing.ts when the OTEL_* environment turns tracing on, and calls `enableSpans`. Until
 * then every function here returns at its first line, so that a gateway without tracing does
 * no tracing work at all.
 */
let enabled = false
const tracer = trace.getTracer('reuse-gateway')

/** called once the SDK has started (src/tracing.ts) */
export function enableSpans (): void {
  enabled = true
}

/** whether spans are recorded at all: a hot path asks before it builds a span's name and attributes */
export function spansEnabled (): boolean {
  return enabled
}

/** the trace and span of what is being done now, when it is traced */
export function activeTrace (): { traceId: string, spanId: string } | undefined {
  if (!enabled) return undefined
  const span = trace.getActiveSpan()
  if (span === undefined) return undefined
  const ids = span.spanContext()
  return isSpanContextValid(ids) ? { traceId: ids.traceId, spanId: ids.spanId } : undefined
}

/** pino's `mixin` (app.ts, tracing on): every log line written inside a span names its trace and span */
export function traceLogFields (): Record<string, string> {
  const ids = activeTrace()
  return ids === undefined ? {} : { trace_id: ids.traceId, span_id: ids.spanId }
}

/** a W3C traceparent of a trace and span recorded with an event, flagged sampled: what continues it is recorded */
export function traceparentOf (ids: { traceId: string, spanId: string }): string {
  return `00-${ids.traceId}-${ids.spanId}-01`
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** ends a span when `work` settles, with an error status when it fails */
function endWith<T> (span: Span, work: () => T): T {
  const failed = (err: unknown): never => {
    span.recordException(err as Error)
    span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
    throw err
  }
  let result: T
  try {
    result = work()
  } catch (err) {
    return failed(err)
  }
  if (result instanceof Promise) {
    return result.then((value: unknown) => { span.end(); return value }, failed) as T
  }
  span.end()
  return result
}

/**
 * `work` in a span of its own, child of the active one (and the active span while it runs). With
 * `onlyInTrace`, nothing is recorded outside a trace: background polls stay out of the traces.
 */
export function inSpan<T> (name: string, attributes: Attributes, work: () => T, options: { onlyInTrace?: boolean, kind?: SpanKind } = {}): T {
  if (!enabled || (options.onlyInTrace === true && trace.getActiveSpan() === undefined)) return work()
  return tracer.startActiveSpan(name, { attributes, kind: options.kind ?? SpanKind.INTERNAL }, (span) => endWith(span, work))
}

/**
 * An outbox delivery: a span in the trace recorded with the change it announces (its
 * traceparent), else a trace of its own; `work` is given the headers that carry the span to the
 * receiver (`traceparent`, by the configured propagators).
 */
export async function inDeliverySpan<T> (traceparent: string | undefined, attributes: Attributes, work: (headers: Record<string, string>) => Promise<T>): Promise<T> {
  if (!enabled) return await work({})
  const m = traceparent === undefined ? null : TRACEPARENT.exec(traceparent)
  const parent = m
    ? trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1] as string, spanId: m[2] as string, traceFlags: parseInt(m[3] as string, 16) & TraceFlags.SAMPLED, isRemote: true })
    : ROOT_CONTEXT
  return await tracer.startActiveSpan('outbox delivery', { attributes, kind: SpanKind.PRODUCER }, parent, async (span) => await endWith(span, async () => {
    const headers: Record<string, string> = {}
    propagation.inject(context.active(), headers)
    return await work(headers)
  }))
}
