import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { VERSION } from '../lib/version.js'
import { declareCommonHeaders, declareCommonResponses } from '../lib/openapi.js'
import { WEBHOOKS, WEBHOOK_PARAMETERS } from '../lib/openapi-webhooks.js'

/** Raw bytes as a body (a route that `consumes` media types without a JSON `body` schema). */
function binaryBody (consumes: string[]): { content: Record<string, unknown> } {
  return { content: Object.fromEntries(consumes.map((type) => [type, { schema: { type: 'string', format: 'binary', description: 'the bytes themselves' } }])) }
}

/**
 * The published contract. It is generated from the routes' own schemas, so it describes what
 * the server does; `openapi.yaml` at the repository root is this document, committed, and a
 * test fails when the two differ.
 */
async function openapiPlugin (app: FastifyInstance): Promise<void> {
  // every route registered from here on declares the statuses any route may answer
  app.addHook('onRoute', declareCommonResponses)
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
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        contact: { name: 'The operator of this gateway (see its README for the deployment\'s contacts)' }
      },
      // the gateway serving this document: paths are relative to where it was fetched from
      servers: [{ url: '/', description: 'this gateway (its GATEWAY_ISSUER)' }],
      // every operation needs an access token unless it says `security: []`
      security: [{ accessToken: [] }],
      tags: [
        { name: 'health', description: 'Liveness and readiness for orchestrators and load balancers' },
        { name: 'tokens', description: 'Access tokens for agencies, and the gateway\'s public keys' },
        { name: 'agencies', description: 'The registry of agencies, their roles and keys (admin)' },
        { name: 'audit', description: 'The tamper-evident audit trail (auditors)' },
        { name: 'document types', description: 'The catalogue of result types and their schemas' },
        { name: 'documents', description: 'The index of digitized results (issuing agencies)' },
        { name: 'agreements', description: 'Data-sharing agreements (admin)' },
        { name: 'reuse', description: 'Reuse queries, attestations and downloads (requesting agencies)' },
        { name: 'stats', description: 'Reuse statistics: the reuse rate per procedure, agency and document type (auditors)' },
        { name: 'portal', description: 'The national public service portal: a citizen\'s own results and who used them' },
        { name: 'webhooks', description: 'Signed announcements to the portal and reuse-aware notices to agencies (the `webhooks` section of this document describes each delivery): what was sent, and replay from a cursor. Each delivery is a POST of JSON `{id, cursor, type, occurredAt, recipient, document, subject | reuses}` with headers Reuse-Event-Id, Reuse-Event-Cursor, Reuse-Delivery-Attempt and Reuse-Signature (a JWS, typ reuse-webhook+jws, over the body with the payload detached: put the base64url of the body between its two dots and verify with /.well-known/jwks.json). At least once; receivers de-duplicate on `id`.' }
      ],
      webhooks: WEBHOOKS,
      components: {
        parameters: WEBHOOK_PARAMETERS,
        securitySchemes: {
          accessToken: {
            type: 'oauth2',
            description: 'A gateway access token (JWT, typ at+jwt) sent as `Authorization: Bearer …`. Get it from the token endpoint with the client-credentials grant, authenticating with a JWT signed by one of the agency\'s registered keys (private_key_jwt, RFC 7523).',
            flows: {
              clientCredentials: {
                tokenUrl: '/v1/oauth/token',
                scopes: {
                  'documents:write': 'issuer: index, amend, revoke its own results and upload their files',
                  'documents:reuse': 'requester: run reuse queries and download granted files',
                  portal: 'the national portal: a citizen\'s results and access history, consent withdrawal, its announcements',
                  'audit:read': 'auditor: read, export and verify the audit trail, read statistics',
                  admin: 'admin: agencies, keys, document types and agreements'
                }
              }
            }
          }
        }
      }
    },
    // a body of raw bytes (an uploaded file) has no JSON schema for Fastify to validate: the
    // published contract still says which media types it takes
    transform ({ schema, url }) {
      const own = schema as { consumes?: string[], body?: unknown } | undefined
      if (!own?.consumes || own.body !== undefined) return { schema, url }
      return { schema: { ...schema, body: binaryBody(own.consumes) } as typeof schema, url }
    },
    // the response headers every operation shares, referenced from components.headers
    transformObject: (document) => declareCommonHeaders((document as { openapiObject: Parameters<typeof declareCommonHeaders>[0] }).openapiObject) as never,
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
