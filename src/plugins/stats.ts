import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ReuseStats } from '../services/stats.js'

declare module 'fastify' {
  interface FastifyInstance {
    reuseStats: ReuseStats
  }
}

/** The reuse counters: written by the reuse routes as things happen, read by GET /v1/stats/reuse. */
async function statsPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('reuseStats', new ReuseStats({ reuseRecords: app.stores.reuseRecords, documents: app.stores.documents, agencies: app.stores.agencies }))
}

export default fp(statsPlugin, { name: 'stats', dependencies: ['store'] })
