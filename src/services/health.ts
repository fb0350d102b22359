import { VERSION } from '../lib/version.js'
import type { Stores, StoreKind } from '../store/index.js'

/**
 * Liveness and readiness, as an orchestrator or a load balancer asks for them: alive while the
 * process runs; ready while its store answers and it is neither holding nor shutting down.
 */

/** how long readiness waits for the store before calling it unavailable */
const READY_PING_TIMEOUT_MS = 800

export interface Health {
  status: 'ok' | 'ready' | 'unavailable' | 'draining'
  store: StoreKind
  version: string
}

/** Where the process is in its life (plugins/lifecycle.ts). */
export interface ProcessState {
  readonly draining: boolean
  readonly closing: boolean
  /** set while the process may not serve yet */
  readonly holding: unknown
}

export class HealthService {
  constructor (private readonly deps: { stores: Pick<Stores, 'kind' | 'ping'>, lifecycle: ProcessState }) {}

  live (): Health {
    return { status: 'ok', store: this.deps.stores.kind, version: VERSION }
  }

  /** `ready`, or why not: anything else is answered as a 503. */
  async ready (): Promise<Health> {
    const { stores, lifecycle } = this.deps
    const answer = (status: Health['status']): Health => ({ status, store: stores.kind, version: VERSION })
    if (lifecycle.draining || lifecycle.closing) return answer('draining')
    // held until the store's persistence is checked (plugins/store.ts): not ready, whatever a ping says
    if (lifecycle.holding) return answer('unavailable')
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        stores.ping(),
        new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('ping timed out')), READY_PING_TIMEOUT_MS) })
      ])
      return answer('ready')
    } catch {
      return answer('unavailable')
    } finally {
      clearTimeout(timer)
    }
  }
}
