import t from 'tap'
import type { Test } from 'tap'
import { pino } from 'pino'
import { loggerOptions } from '../src/app.js'
import { StatedError, describeError, errorText } from '../src/lib/error-description.js'
import { StoreUnavailableError } from '../src/store/errors.js'
import { build, captureLogs, testConfig } from './helper.js'

/**
 * What is said about an error — in a log line, on the command line — is its class, its code, the
 * Redis command's name and its stack frames: never the command's arguments, and a message only
 * when it is known to carry no data.
 */
const CITIZEN = '001099012345'
const PARTITION = `rg:{s:${'ab12'.repeat(16)}}:docs`
const VERSION_JSON = JSON.stringify({ id: '01J0', subject: { kind: 'citizen', id: CITIZEN }, data: { fullName: 'Lê Thị Bí Mật' } })
const SECRETS = [CITIZEN, PARTITION, 'Lê Thị Bí Mật', 'ab12ab12']

/** an error as ioredis rejects a command with: a ReplyError carrying the command, arguments included */
function replyError (message: string): Error {
  class ReplyError extends Error {}
  const err = new ReplyError(message)
  err.name = 'ReplyError'
  return Object.assign(err, { command: { name: 'evalsha', args: ['93c067ed', '1', PARTITION, '01J0', 'giay-khai-sinh', VERSION_JSON] } })
}

function parseError (): Error {
  try {
    JSON.parse(VERSION_JSON.slice(0, -3) + 'x')
  } catch (err) {
    return err as Error
  }
  throw new Error('unreachable')
}

function assertNoSecret (t: Test, where: string, text: string): void {
  for (const secret of SECRETS) t.notOk(text.includes(secret), `${where} does not hold ${secret}`)
}

t.test('an ioredis reply error, wrapped: class, code, command name, frames; no arguments', async (t) => {
  const oom = replyError("OOM command not allowed when used memory > 'maxmemory'.")
  const wrapped = new StoreUnavailableError('the store is unavailable', { cause: oom })
  const described = describeError(wrapped)
  t.match(described, {
    type: 'StoreUnavailableError',
    message: 'the store is unavailable',
    cause: { type: 'ReplyError', code: 'OOM', command: 'evalsha', message: "OOM command not allowed when used memory > 'maxmemory'." }
  })
  t.match(described.stack, /^ {4}at /, 'the stack is frames only')
  t.notMatch(described.stack, /StoreUnavailableError|the store is unavailable/, 'its header line (the message) is not repeated')
  assertNoSecret(t, 'the description', JSON.stringify(described))
})

t.test('a message that may hold data is left out: a reply that echoes arguments, JSON.parse quoting its text', async (t) => {
  const unknown = replyError(`ERR unknown command 'HSETX', with args beginning with: '${PARTITION}' '${CITIZEN}'`)
  t.same(Object.keys(describeError(unknown)).sort(), ['code', 'command', 'stack', 'type'])
  t.equal(describeError(unknown).code, 'ERR')
  const parse = parseError()
  t.equal(describeError(parse).type, 'SyntaxError')
  t.equal(describeError(parse).message, undefined)
  // a cause chain, an aggregate, a loop and a message forging stack frames
  const forged = new Error(`first line\n    at ${CITIZEN} (${PARTITION}:1:1)`)
  const aggregate = new AggregateError([unknown, parse, forged], 'several')
  const outer = new Error('outer', { cause: aggregate })
  ;(aggregate as { cause?: unknown }).cause = outer
  const described = describeError(outer)
  t.equal(described.cause?.type, 'AggregateError')
  t.same(described.cause?.errors?.map((e) => e.type), ['ReplyError', 'SyntaxError', 'Error'])
  t.equal(described.cause?.errors?.[2]?.stack, undefined, 'a stack whose header is not "Name: message" is dropped')
  assertNoSecret(t, 'the description', JSON.stringify(described))
})

t.test('every way a logger is handed an error writes its description only', async (t) => {
  const logs = captureLogs()
  const log = pino(loggerOptions(testConfig({ LOG_LEVEL: 'trace' })), logs.stream)
  const err = replyError(`ERR Error running script: user_script:3: bad value ${CITIZEN}`)
  const wrapped = new StoreUnavailableError('the store is unavailable', { cause: err })
  log.error(err)
  log.error(err, 'with a message')
  log.error({ err })
  log.error({ err }, err.message)
  log.error({ req: { method: 'GET', url: '/x' }, res: { statusCode: 500 }, err }, err.message)
  log.warn({ error: err }, 'under error')
  log.warn({ cause: err }, 'under cause')
  log.warn({ code: 'store_unavailable', err: wrapped }, 'wrapped')
  log.warn({ anything: err, detail: 1 }, 'under any key')
  log.warn({ err: { message: VERSION_JSON, command: { args: [PARTITION] } } }, 'a plain object where an error goes')
  log.child({ err }).info('in a child\'s bindings')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(logs.lines.length, 11)
  assertNoSecret(t, 'the log', logs.text())
  for (const line of logs.lines) {
    const described = (line.err ?? line.error ?? line.cause ?? line.anything) as { type?: string }
    t.ok(typeof described?.type === 'string', `"${line.msg}" names the error's class`)
  }
  t.match(logs.lines[7], { err: { type: 'StoreUnavailableError', cause: { type: 'ReplyError', code: 'ERR', command: 'evalsha' } } })
})

t.test('the gateway\'s request loggers do the same, and a line\'s text never repeats an error\'s message', async (t) => {
  const logs = captureLogs()
  const err = replyError(`ERR Error running script: bad value ${CITIZEN}`)
  const app = await build(t, {
    logs,
    extra: (app) => {
      app.get('/test/logs-an-error', async (request) => {
        request.log.error({ err }, err.message)
        request.log.warn(err)
        throw err
      })
    }
  })
  const res = await app.inject({ method: 'GET', url: '/test/logs-an-error' })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'internal_error')
  assertNoSecret(t, 'the answer', res.body)
  assertNoSecret(t, 'the log', logs.text())
  const lines = logs.lines.filter((line) => line.err !== undefined)
  t.equal(lines.length, 3)
  for (const line of lines) {
    t.match(line, { requestId: String, err: { type: 'ReplyError', code: 'ERR', command: 'evalsha' } })
    t.not(line.msg, err.message)
  }
})

t.test('the command line prints its own refusals as written, anything else by its description', async (t) => {
  t.equal(errorText(new StatedError('which agency? pass --agency CODE')), 'which agency? pass --agency CODE')
  const oom = replyError("OOM command not allowed when used memory > 'maxmemory'.")
  t.equal(errorText(new StoreUnavailableError('the store is unavailable', { cause: oom })),
    "the store is unavailable (cause: ReplyError OOM on evalsha: OOM command not allowed when used memory > 'maxmemory'.)")
  t.equal(errorText(replyError(`ERR unknown command, with args beginning with: '${CITIZEN}'`)), 'ReplyError ERR on evalsha')
  t.equal(errorText(parseError()), 'SyntaxError')
  const refused = Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:6390`), { code: 'ECONNREFUSED', syscall: 'connect', errno: -111 })
  t.equal(errorText(refused), 'Error ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:6390', 'a system error names its address')
})
