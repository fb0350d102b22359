import type { Socket } from 'node:net'
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ProblemError, problemType, statusTitle } from '../lib/problem.js'
import type { ProblemBody } from '../lib/problem.js'
import { validationErrors } from '../lib/problem.js'
import type { AjvLikeError } from '../lib/problem.js'
import { ArchiveUnavailableError, StoreUnavailableError } from '../store/errors.js'
import { SECURITY_HEADERS } from './security.js'

/** Fastify's own error codes, mapped to the gateway's stable problem codes. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
  FST_ERR_BAD_URL: 'bad_url',
  FST_ERR_MAX_PARAM_LENGTH: 'path_parameter_too_long',
  FST_ERR_ASYNC_CONSTRAINT: 'bad_request',
  FST_ERR_NOT_FOUND: 'route_not_found'
}

/** Refusals some plugins raise as plain errors with a status: the same stable codes as ours. */
const STATUS_CODES_BY_STATUS: Record<number, string> = {
  413: 'body_too_large',
  429: 'rate_limited'
}

/** What a route takes as its body: the media types its schema `consumes`, else JSON if it has a body schema. */
function accepted (request: FastifyRequest): string {
  const schema = request.routeOptions.schema as { consumes?: string[], body?: unknown } | undefined
  if (schema?.consumes?.length === 1) return `send Content-Type: ${schema.consumes[0] as string}`
  if (schema?.consumes) return `send one of Content-Type: ${schema.consumes.join(', ')}`
  return schema?.body === undefined ? 'this route takes no body: send none' : 'send Content-Type: application/json'
}

/** The limit a body went over, and the variable that sets it when it is the configured one. */
function tooLarge (request: FastifyRequest): string {
  const limit = request.routeOptions.bodyLimit
  const variable = limit === request.server.config.limits.bodyBytes ? ' (BODY_LIMIT_BYTES)' : ''
  return `the request body is larger than ${limit} bytes${variable}, the most this route accepts`
}

function toProblem (error: FastifyError | Error, request: FastifyRequest): { problem: ProblemError, internal: boolean } {
  // a 503 the gateway chose (overloaded, shutting down, store not durable) is a refusal, not a defect
  if (error instanceof ProblemError) return { problem: error, internal: error.status >= 500 && error.status !== 503 }
  if (error instanceof StoreUnavailableError) {
    return {
      problem: new ProblemError(503, 'store_unavailable', 'the gateway cannot reach its store right now; retry shortly', {
        headers: { 'retry-after': '1' }
      }),
      internal: false
    }
  }
  if (error instanceof ArchiveUnavailableError) {
    return {
      problem: new ProblemError(503, 'archive_unavailable', 'this read needs archived audit events and the audit archive cannot be reached right now; the recent days stay searchable, retry the rest shortly', {
        headers: { 'retry-after': '30' }
      }),
      internal: false
    }
  }
  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    const part = fastifyError.validationContext ?? 'body'
    const errors = validationErrors(fastifyError.validation as AjvLikeError[], part)
    const first = errors[0]
    const detail = first ? `${part}${first.pointer} ${first.detail}` : `the ${part} is invalid`
    return { problem: new ProblemError(400, 'validation_failed', detail, { errors }), internal: false }
  }
  const status = fastifyError.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = FASTIFY_CODES[fastifyError.code] ?? STATUS_CODES_BY_STATUS[status] ?? 'bad_request'
    let detail = fastifyError.message
    if (code === 'unsupported_media_type') {
      detail = `content type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted by ${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}; ${accepted(request)}`
    } else if (code === 'body_too_large') {
      detail = tooLarge(request)
    }
    return { problem: new ProblemError(status, code, detail), internal: false }
  }
  // Anything else is a defect or an outage we did not foresee: say nothing about its insides.
  return {
    problem: new ProblemError(500, 'internal_error', 'the gateway could not complete the request; it has been logged with the request id'),
    internal: true
  }
}

export function sendProblem (reply: FastifyReply, problem: ProblemError): FastifyReply {
  for (const [name, value] of Object.entries(problem.headers)) reply.header(name, value)
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .send(problem.toBody(reply.request.id))
}

/** a request line: a method token, a space (a header field has a colon before any space) */
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ /

/**
 * Whether the request the parser failed on is a HEAD: its request line is the last one before
 * the point of failure in the packet, which may begin with earlier requests on a kept-alive
 * connection.
 */
function failedOnHead (err: Error & { rawPacket?: unknown, bytesParsed?: number }): boolean {
  if (!Buffer.isBuffer(err.rawPacket)) return false
  const upTo = typeof err.bytesParsed === 'number' ? err.bytesParsed + 1 : err.rawPacket.length
  const lines = err.rawPacket.subarray(0, upTo).toString('latin1').split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string
    if (REQUEST_LINE.test(line) && !/^[^ :]+:/.test(line)) return line.startsWith('HEAD ')
  }
  return false
}

/**
 * Fastify answers a connection-level error (a header section over the limit, a broken request
 * line, a request that took too long to arrive) before any route runs; answer it as problem+json
 * too, with a request id of its own (there is no request to take one from), and close the
 * connection since its state is unknown.
 */
export function clientErrorHandler (err: Error & { code?: string, rawPacket?: unknown, bytesParsed?: number }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  let status = 400
  let code = 'bad_request'
  let detail = 'the request could not be parsed as HTTP'
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431; code = 'headers_too_large'; detail = 'the request header section is larger than the gateway accepts'
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408; code = 'request_timeout'; detail = 'the request did not arrive in time'
  }
  const requestId = randomUUID()
  const body: ProblemBody = { type: problemType(code), title: statusTitle(status), status, detail, code, requestId }
  const payload = JSON.stringify(body)
  if (socket.writable) {
    const headers = Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')
    // a HEAD answer has no body (RFC 9110 §9.3.2), broken or not: the headers say what a GET would get
    const head = failedOnHead(err)
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nX-Request-Id: ${requestId}\r\n${headers}Connection: close\r\n\r\n${head ? '' : payload}`)
  } else {
    socket.destroy(err)
  }
}

/**
 * Fastify answers a URL it cannot route (a broken percent-encoding, a path parameter longer than
 * maxParamLength) before any hook runs, in a JSON shape of its own; answer it as a problem too,
 * without echoing the path (it is the caller's input), with what the hooks would have set.
 */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  const code = FASTIFY_CODES[error.code] ?? 'bad_request'
  const detail = code === 'path_parameter_too_long' ? 'a path parameter is longer than any this API accepts' : 'the request URL is not valid (check its percent-encoding)'
  reply.headers(SECURITY_HEADERS).header('x-request-id', request.id)
  request.log.info({ code, status }, 'request refused')
  void sendProblem(reply, new ProblemError(status, code, detail))
}

/** The one root error handler and the 404 handler: every failure leaves as RFC 9457 problem+json. */
async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler(function (error: FastifyError, request, reply) {
    const { problem, internal } = toProblem(error, request)
    // the logger describes the error without its message or a Redis command's arguments
    if (internal) {
      request.log.error({ err: error }, 'request failed')
    } else if (error instanceof ProblemError && problem.status >= 500) {
      // said on purpose, where it is raised: its stack tells an operator nothing
      request.log.warn({ code: problem.code, status: problem.status }, problem.message)
    } else if (problem.status >= 500) {
      request.log.warn({ code: problem.code, err: error }, problem.message)
    } else {
      request.log.info({ code: problem.code, status: problem.status }, 'request refused')
    }
    return sendProblem(reply, problem)
  })

  app.setNotFoundHandler(function (request, reply) {
    const path = request.url.split('?')[0]
    return sendProblem(reply, new ProblemError(404, 'route_not_found', `no route ${request.method} ${path}`))
  })
}

export default fp(errorsPlugin, { name: 'errors' })
