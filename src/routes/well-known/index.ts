import type { FastifyInstance } from 'fastify'
import { PUBLIC } from '../../lib/openapi.js'

export default async function wellKnownRoutes (app: FastifyInstance): Promise<void> {
  app.get('/.well-known/jwks.json', {
    schema: {
      operationId: 'getJwks',
      tags: ['tokens'],
      summary: "The gateway's public signing keys",
      description: 'Every key the gateway signs with now, and every replaced key still inside its retention (SIGNING_KEY_RETENTION_DAYS), so that access tokens, attestations, receipts and audit checkpoints it signed stay verifiable with any standard JOSE library.',
      security: PUBLIC,
      response: { 200: { $ref: 'Jwks#' } }
    }
  }, async (_request, reply) => {
    // public and cacheable for a short while: a rotation shows within a minute
    reply.header('cache-control', 'public, max-age=60')
    return app.signingKeys.jwks()
  })

  app.get('/.well-known/oauth-authorization-server', {
    schema: {
      operationId: 'getAuthorizationServerMetadata',
      tags: ['tokens'],
      summary: 'OAuth 2.0 authorization server metadata (RFC 8414)',
      description: 'Where to get tokens and what to put in a client assertion: its `aud` is `issuer` (or `token_endpoint`).',
      security: PUBLIC,
      response: { 200: { $ref: 'AuthorizationServerMetadata#' } }
    }
  }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return app.tokens.metadata()
  })
}
