import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { parseJsonBody } from './validation.js'

/**
 * What every response shares: the request id echoed back, no caching of API answers (they carry
 * personal data), no MIME sniffing; and the one JSON body parser.
 */
async function httpFramePlugin (app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
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
}

export default fp(httpFramePlugin, { name: 'http-frame' })
