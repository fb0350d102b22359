import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { TokenGrant } from '../services/tokens.js'
import type { ReuseObserver } from '../services/reuse.js'
import type { OutboxDestinationStatus } from '../store/index.js'

/**
 * The gateway's Prometheus metrics (docs/metrics.md): one registry per gateway, its families, and
 * what the plugins and services tell them (plugins/metrics.ts wires them). Labels are bounded by
 * construction: a route template, a method, a status class, a catalogue code, a problem code, an
 * outbox destination (the portal or a registered agency), a Redis command name. Never a subject,
 * a token, a document id or a dossier code, and never an agency code × procedure code product.
 */

export const PREFIX = 'reuse_gateway_'

/** what a request that matched no route is counted under: never the URL it asked for */
export const UNMATCHED_ROUTE = 'unmatched'

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

/** seconds: a request answered from memory (1 ms) to one that waits on a slow store (10 s) */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** seconds: a Redis round trip on loopback (0.1 ms) to the command timeout (1 s by default) */
const REDIS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const AUDIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export function statusClass (status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other'
}

export class GatewayMetrics {
  readonly registry = new Registry()
  /** where the metrics listener answers, once it listens (METRICS_PORT=0 picks a free port) */
  url: string | undefined
  private readonly httpRequests: Counter
  private readonly httpDuration: Histogram
  private readonly reuseQueries: Counter
  private readonly tokensIssued: Counter
  private readonly tokensRefused: Counter
  private readonly auditAppend: Histogram
  private readonly outboxDeliveries: Counter
  private readonly redisDuration: Histogram
  private readonly redisErrors: Counter
  private readonly loadShedRequests: Counter
  private readonly rateLimitedRequests: Counter

  constructor () {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.httpRequests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: 'HTTP requests answered on the API port, by route template, method and status class.',
      labelNames: ['route', 'method', 'status_class'],
      registers
    })
    this.httpDuration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'Time from a request\'s arrival to its answer, by route template, method and status class.',
      labelNames: ['route', 'method', 'status_class'],
      buckets: HTTP_BUCKETS,
      registers
    })
    this.reuseQueries = new Counter({
      name: `${PREFIX}reuse_queries_total`,
      help: 'Reuse queries by outcome (found, not_found, denied), mode (full, status) and document type; one per document type asked for.',
      labelNames: ['outcome', 'mode', 'document_type'],
      registers
    })
    this.tokensIssued = new Counter({
      name: `${PREFIX}tokens_issued_total`,
      help: 'Access tokens issued by the token endpoint.',
      registers
    })
    this.tokensRefused = new Counter({
      name: `${PREFIX}tokens_refused_total`,
      help: 'Token requests refused, by OAuth error and the gateway\'s refusal code.',
      labelNames: ['error', 'code'],
      registers
    })
    this.auditAppend = new Histogram({
      name: `${PREFIX}audit_append_duration_seconds`,
      help: 'Time to append a batch of audit events to the store (group commit), by result (ok, error).',
      labelNames: ['result'],
      buckets: AUDIT_BUCKETS,
      registers
    })
    this.outboxDeliveries = new Counter({
      name: `${PREFIX}outbox_deliveries_total`,
      help: 'Webhook delivery attempts settled by this process, by result (delivered, failed: to be retried, dead: given up).',
      labelNames: ['result'],
      registers
    })
    this.redisDuration = new Histogram({
      name: `${PREFIX}redis_command_duration_seconds`,
      help: 'Time from sending a Redis command to its reply, by command (a script by its name).',
      labelNames: ['command'],
      buckets: REDIS_BUCKETS,
      registers
    })
    this.redisErrors = new Counter({
      name: `${PREFIX}redis_command_errors_total`,
      help: 'Redis commands that failed (an error reply, a timeout, a lost connection), by command.',
      labelNames: ['command'],
      registers
    })
    this.loadShedRequests = new Counter({
      name: `${PREFIX}load_shed_requests_total`,
      help: 'Requests refused with 503 overloaded by load shedding, by the pressure that was over its limit.',
      labelNames: ['pressure'],
      registers
    })
    this.rateLimitedRequests = new Counter({
      name: `${PREFIX}rate_limited_requests_total`,
      help: 'Requests refused with 429 rate_limited, by limit (route: an agency\'s or address\'s requests on a route; refusals: an address\'s refused requests) and route group.',
      labelNames: ['limit', 'route_group'],
      registers
    })
    // every counter shows from the first scrape, at 0 where it can: a rate over a series that
    // appears only at its first increment misses that increment
    this.tokensIssued.inc(0)
    for (const result of ['delivered', 'failed', 'dead']) this.outboxDeliveries.inc({ result }, 0)
  }

  /** one answered request: `route` is the template it matched (undefined: none) */
  httpAnswered (route: string | undefined, method: string, status: number, seconds: number): void {
    const labels = { route: route ?? UNMATCHED_ROUTE, method: METHODS.has(method) ? method : 'other', status_class: statusClass(status) }
    this.httpRequests.inc(labels)
    this.httpDuration.observe(labels, seconds)
  }

  readonly reuseQueried: ReuseObserver = (mode, outcomes) => {
    for (const { documentType, outcome } of outcomes) this.reuseQueries.inc({ outcome, mode, document_type: documentType })
  }

  readonly tokenAnswered = (answer: TokenGrant): void => {
    if ('token' in answer) this.tokensIssued.inc()
    else this.tokensRefused.inc({ error: answer.refused.error, code: answer.refused.code })
  }

  readonly auditAppended = (seconds: number, ok: boolean): void => {
    this.auditAppend.observe({ result: ok ? 'ok' : 'error' }, seconds)
  }

  readonly outboxSettled = (result: 'delivered' | 'failed' | 'dead'): void => {
    this.outboxDeliveries.inc({ result })
  }

  readonly redisCommand = (command: string, seconds: number, failed: boolean): void => {
    this.redisDuration.observe({ command }, seconds)
    if (failed) this.redisErrors.inc({ command })
  }

  loadShed (pressure: string): void {
    this.loadShedRequests.inc({ pressure })
  }

  rateLimited (limit: 'route' | 'refusals', routeGroup: string): void {
    this.rateLimitedRequests.inc({ limit, route_group: routeGroup })
  }

  /**
   * The outbox gauges, read from the store when Prometheus scrapes: backlog, dead letters and
   * the longest wait per destination. `read` is called once a scrape for the three.
   */
  outboxGauges (read: () => Promise<OutboxDestinationStatus[]>): void {
    const status = oncePerScrape(read)
    const gauge = (name: string, help: string, value: (row: OutboxDestinationStatus, now: number) => number): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames: ['destination'],
        registers: [this.registry],
        async collect () {
          const rows = await status()
          const now = Date.now()
          this.reset()
          for (const row of rows) this.set({ destination: row.destination }, value(row, now))
        }
      })
    }
    gauge('outbox_queued_deliveries', 'Deliveries queued (the backlog), per destination.', (row) => row.queued)
    gauge('outbox_dead_letters', 'Deliveries given up (dead letters, replayable), per destination.', (row) => row.dead)
    gauge('outbox_oldest_queued_age_seconds', 'How long the longest-waiting queued delivery has waited, per destination (0: none queued).',
      (row, now) => row.oldestQueuedAt ? Math.max(0, (now - Date.parse(row.oldestQueuedAt)) / 1000) : 0)
  }

  /**
   * The audit archive's lag, read when Prometheus scrapes: how old the oldest event still in the
   * store (not yet archived) is, beside the hot window it is meant to stay within.
   */
  auditArchiveGauges (hotDays: number, oldestUnarchived: () => Promise<number | undefined>): void {
    const registers = [this.registry]
    new Gauge({ name: `${PREFIX}audit_archive_hot_window_seconds`, help: 'AUDIT_HOT_DAYS in seconds: events older than this are due for the archive.', registers }).set(hotDays * 86_400)
    new Gauge({
      name: `${PREFIX}audit_oldest_unarchived_age_seconds`,
      help: 'Age of the oldest audit event not yet archived (still in the store); 0 when the store holds none.',
      registers,
      async collect () {
        const at = await oldestUnarchived()
        this.set(at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000))
      }
    })
  }

  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}

/** one read shared by the gauges of one scrape (they collect concurrently), fresh at the next */
function oncePerScrape<T> (read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined
  return async () => {
    if (!pending) {
      // the gauges of one scrape all ask before it settles; the next scrape reads again
      pending = read().finally(() => { pending = undefined })
    }
    return await pending
  }
}
