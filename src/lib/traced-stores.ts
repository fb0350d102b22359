import type { Stores } from '../store/index.js'
import { inSpan } from './trace-context.js'

/** the aggregates of Stores whose calls get a span (every one) */
const AGGREGATES = new Set(['agencies', 'signingKeys', 'audit', 'documents', 'catalogue', 'agreements', 'reuseRecords', 'outbox', 'leases'])

/**
 * The stores as the services see them when tracing is on: each call of an aggregate's method
 * inside a trace is a span, `store <aggregate>.<method>`, the parent of the Redis commands it
 * sends (on the embedded store, the only sign of the store in a trace). Calls outside a trace
 * (the outbox's and the checkpoints' polls) are not traced. Nothing is wrapped when tracing is off.
 */
export function tracedStores (stores: Stores): Stores {
  const views = new Map<string, object>()
  return new Proxy(stores, {
    get (target, name) {
      const value: unknown = Reflect.get(target, name, target)
      if (typeof name !== 'string') return value
      if (AGGREGATES.has(name) && typeof value === 'object' && value !== null) {
        let view = views.get(name)
        if (view === undefined) views.set(name, view = tracedAggregate(value, name, stores.kind))
        return view
      }
      // a method of the stores themselves runs on them, not on this view
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

function tracedAggregate (store: object, aggregate: string, kind: string): object {
  const methods = new Map<string, unknown>()
  return new Proxy(store, {
    get (target, name) {
      const value: unknown = Reflect.get(target, name, target)
      if (typeof name !== 'string' || typeof value !== 'function') return value
      let traced = methods.get(name)
      if (traced === undefined) {
        const attributes = { 'db.system.name': kind === 'redis' ? 'redis' : 'memory', 'reuse_gateway.store.call': `${aggregate}.${name}` }
        traced = (...args: unknown[]): unknown => inSpan(`store ${aggregate}.${name}`, attributes, () => Reflect.apply(value, target, args), { onlyInTrace: true })
        methods.set(name, traced)
      }
      return traced
    }
  })
}
