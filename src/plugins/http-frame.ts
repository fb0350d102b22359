import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ProblemError } from '../lib/problem.js'
import { parseJsonBody } from './validation.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the JSON body as it arrived, before parsing */
    rawBody: Buffer | null
  }
}

/** the expectation Node's server meets (its own test, node:_http_server): any other is a 417 */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i

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

  // Node answers an Expect it cannot meet with a bare 417 of its own (no body, no headers) unless
  // someone listens: hand the request to Fastify, whose hook below refuses it as a problem
  app.server.on('checkExpectation', (request, response) => app.server.emit('request', request, response))

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('cache-control', 'no-store')
    const expect = request.headers.expect
    if (expect !== undefined && !CONTINUE.test(expect)) {
      throw new ProblemError(417, 'expectation_failed', 'the only expectation the gateway meets is Expect: 100-continue')
    }
  })

  // one access-log line per request, once it is answered (Fastify's own request logging,
  // turned off in app.ts, writes two)
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'request completed')
  })
}

export default fp(httpFramePlugin, { name: 'http-frame' })
