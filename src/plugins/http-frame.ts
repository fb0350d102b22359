import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { parseJsonBody } from './validation.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the JSON body as it arrived, before parsing */
    rawBody: Buffer | null
  }
}

/**
 * What every response shares: the request id echoed back, no caching of API answers (they carry
 * personal data), no MIME sniffing; and the one JSON body parser.
 */
async function httpFramePlugin (app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers()
  app.decorateRequest('rawBody', null)
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // kept: the reuse receipt signs a hash of the bytes exactly as sent
    request.rawBody = body as Buffer
    try {
      done(null, parseJsonBody(body as Buffer))
    } catch (err) {
      done(err as Error, undefined)
    }
  })

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('cache-control', 'no-store')
  })

  // one access-log line per request, once it is answered (Fastify's own request logging,
  // turned off in app.ts, writes two)
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'request completed')
  })
}

export default fp(httpFramePlugin, { name: 'http-frame' })
