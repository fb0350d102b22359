import type { Persistence, Store } from './store.js'

/**
 * The embedded store: everything in this process's memory, gone when it stops. It exists so
 * that `npm start` works with nothing installed; the server refuses it in production.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const

  async ping (): Promise<void> {}

  async persistence (): Promise<Persistence> {
    return { aof: false, rdb: false }
  }

  async close (): Promise<void> {}
}
