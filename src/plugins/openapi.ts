import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { VERSION } from '../lib/version.js'

/**
 * The published contract. It is generated from the routes' own schemas, so it describes what
 * the server does; `openapi.yaml` at the repository root is this document, committed, and a
 * test fails when the two differ.
 */
async function openapiPlugin (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Reuse gateway',
        version: VERSION,
        summary: 'Reuse of digitized administrative-procedure results between government agencies',
        description: [
          'Issuing agencies index the digitized results they produce; requesting agencies, while',
          'processing a dossier, ask whether the citizen already holds a valid result and receive it',
          'minimized, signed and audited. Errors are RFC 9457 problem details with a stable `code`.',
          'Personal identifiers travel only in request bodies, never in paths or query strings.'
        ].join(' '),
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' }
      },
      tags: [
        { name: 'health', description: 'Liveness and readiness for orchestrators and load balancers' }
      ]
    },
    // components are named by the schemas' own stable $id
    refResolver: {
      buildLocalReference (json, _baseUri, _fragment, i) {
        return typeof json.$id === 'string' ? json.$id : `def-${i}`
      }
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export default fp(openapiPlugin, { name: 'openapi' })
