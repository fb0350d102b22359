import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { HealthService } from '../services/health.js'

declare module 'fastify' {
  interface FastifyInstance {
    health: HealthService
  }
}

/** Liveness and readiness (services/health.ts), from the store and the process's lifecycle. */
async function healthPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('health', new HealthService({ stores: app.store, lifecycle: app.lifecycle }))
}

export default fp(healthPlugin, { name: 'health', dependencies: ['store', 'lifecycle'] })
