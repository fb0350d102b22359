import type { LoggerOptions } from 'pino'

/**
 * What a log line (or the command line) says about an error: its class, its code, the Redis
 * command it came from and where it was thrown — never the command's arguments, a body, or a
 * message that could hold them. ioredis hangs `command.args` on its errors (a document version
 * JSON, a subject's partition key), Node's JSON.parse quotes the text it failed on, a reply from
 * a Lua script may echo its input: so a message is kept only when it is known to carry no data.
 */
export interface ErrorDescription {
  type: string
  code?: string
  /** the Redis command (its name only) */
  command?: string
  message?: string
  /** the stack frames, without the header line (which repeats the message) */
  stack?: string
  cause?: ErrorDescription
  errors?: ErrorDescription[]
}

/**
 * An error whose message is written by this code base and holds no data (no identifier, no
 * body, no input): it may be logged and shown as it is.
 */
export class StatedError extends Error {}

/** Redis replies whose text is the server's own, fixed for the code (nothing of the command in it). */
const FIXED_TEXT_REPLIES = new Set(['OOM', 'LOADING', 'BUSY', 'MISCONF', 'READONLY', 'MASTERDOWN', 'NOREPLICAS', 'CLUSTERDOWN', 'TRYAGAIN', 'NOSCRIPT', 'WRONGTYPE', 'EXECABORT', 'NOAUTH', 'WRONGPASS'])

/** Messages of ioredis, undici and Node that are fixed text. */
const FIXED_MESSAGES = new Set([
  'Connection is closed.',
  'Command timed out',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Command aborted due to connection close',
  'Failed to refresh slots cache.',
  'None of startup nodes is available',
  'fetch failed',
  'This operation was aborted',
  'The operation was aborted due to timeout'
])

const IDENTIFIER = /^[A-Za-z_$][\w$.-]{0,63}$/
const MAX_DEPTH = 5
const MAX_FRAMES = 20
const MAX_ERRORS = 10

function messageIsDataFree (err: Error & { code?: unknown, syscall?: unknown, errno?: unknown }, replyCode: string | undefined): boolean {
  if (err instanceof StatedError) return true
  if (replyCode !== undefined) return FIXED_TEXT_REPLIES.has(replyCode)
  // a system error (ECONNREFUSED, ENOENT…) names an address or a path of the configuration
  if (typeof err.syscall === 'string' && typeof err.errno === 'number') return true
  return FIXED_MESSAGES.has(err.message)
}

/** the stack's frames, only when its header line is exactly the error's current name and message */
function frames (err: Error): string | undefined {
  const stack = typeof err.stack === 'string' ? err.stack : undefined
  if (!stack) return undefined
  const headerEnd = stack.indexOf('\n    at ')
  if (headerEnd === -1) return undefined
  const header = stack.slice(0, headerEnd)
  const name = /^[A-Za-z_$][\w$.]*/.exec(header)?.[0]
  // a message spread over lines could forge frames: anything else than "Name: message" is dropped
  if (name === undefined || (header !== name && header !== `${name}: ${err.message}`)) return undefined
  return stack.slice(headerEnd + 1).split('\n').filter((line) => line.startsWith('    at ')).slice(0, MAX_FRAMES).join('\n')
}

function describe (err: unknown, depth: number, seen: Set<unknown>): ErrorDescription {
  if (!(err instanceof Error)) return { type: err === null ? 'null' : typeof err }
  seen.add(err)
  const e = err as Error & { code?: unknown, command?: { name?: unknown }, cause?: unknown, errors?: unknown }
  const type = IDENTIFIER.test(e.name) ? e.name : (IDENTIFIER.test(e.constructor?.name ?? '') ? e.constructor.name : 'Error')
  const description: ErrorDescription = { type }
  // a Redis reply error's code is the first word of its text (OOM, ERR, WRONGTYPE…)
  const replyCode = type === 'ReplyError' ? /^[A-Z]{2,20}(?=\s|$)/.exec(e.message)?.[0] : undefined
  const code = typeof e.code === 'string' && IDENTIFIER.test(e.code) ? e.code : replyCode
  if (code !== undefined) description.code = code
  if (typeof e.command?.name === 'string' && IDENTIFIER.test(e.command.name)) description.command = e.command.name
  if (e.message !== '' && messageIsDataFree(e, replyCode)) description.message = e.message
  const stack = frames(e)
  if (stack) description.stack = stack
  if (depth < MAX_DEPTH && e.cause !== undefined && !seen.has(e.cause)) description.cause = describe(e.cause, depth + 1, seen)
  if (depth < MAX_DEPTH && Array.isArray(e.errors)) {
    description.errors = e.errors.slice(0, MAX_ERRORS).filter((inner) => !seen.has(inner)).map((inner) => describe(inner, depth + 1, seen))
  }
  return description
}

export function describeError (err: unknown): ErrorDescription {
  return describe(err, 0, new Set())
}

/**
 * One line for a terminal: a refusal of this code base's own reads as its sentence, anything
 * else as its description, e.g. `the store is unavailable (cause: ReplyError OOM on evalsha:
 * OOM command not allowed…)`.
 */
export function errorText (err: unknown): string {
  const line = (d: ErrorDescription): string => {
    let text = d.type
    if (d.code) text += ` ${d.code}`
    if (d.command) text += ` on ${d.command}`
    if (d.message) text += `: ${d.message}`
    return d.cause ? `${text} (cause: ${line(d.cause)})` : text
  }
  const description = describeError(err)
  if (!(err instanceof StatedError)) return line(description)
  return description.cause ? `${err.message} (cause: ${line(description.cause)})` : err.message
}

/** A description made here, so that a serializer given one again leaves it as it is. */
class DescribedError implements ErrorDescription {
  type!: string
  message?: string
  constructor (description: ErrorDescription) { Object.assign(this, description) }
}

const serializeError = (value: unknown): unknown =>
  value instanceof DescribedError ? value : new DescribedError(describeError(value))

/**
 * The pino options every logger of the gateway takes (the app's, the audit log's, the store's,
 * the command line's): an error at the top of a log call — `log.error(err)`, `{ err }`,
 * `{ error }`, under any key — is replaced by its description before pino sees it, and a line's
 * text that repeats an error's message (Fastify's default error log does) by the description's
 * own. Under `err`, `error` and `cause` only a description is ever written, whatever was put
 * there (a plain `{ message }` included).
 */
export function errorLogging (): Pick<LoggerOptions, 'serializers' | 'hooks'> {
  return {
    serializers: { err: serializeError, error: serializeError, cause: serializeError },
    hooks: {
      logMethod (args, method) {
        const [first, ...rest] = args as unknown[]
        const bindings: Record<string, unknown> = first instanceof Error ? { err: first } : (first !== null && typeof first === 'object' ? first as Record<string, unknown> : {})
        let described: Record<string, unknown> | undefined
        const messages = new Set<string>()
        let said: string | undefined
        for (const [key, value] of Object.entries(bindings)) {
          if (!(value instanceof Error)) continue
          described ??= { ...bindings }
          const description = new DescribedError(describeError(value))
          described[key] = description
          messages.add(value.message)
          said ??= description.message ?? description.type
        }
        if (!described) {
          method.apply(this, args as Parameters<typeof method>)
          return
        }
        // pino would take the error's message as the line's text when none is given
        const text = typeof rest[0] === 'string' ? rest : [said, ...rest]
        if (messages.has(text[0] as string)) text[0] = said
        method.apply(this, [described, ...text] as Parameters<typeof method>)
      }
    }
  }
}
