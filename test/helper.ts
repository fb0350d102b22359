import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import type { Config } from '../src/config.js'
import type { Stores } from '../src/store/index.js'

/** A configuration as the gateway would read it from this environment (plus test defaults). */
export function testConfig (env: Record<string, string> = {}): Config {
  // audit lines go to a file of the test's own, not into the test output
  const auditLogFile = join(mkdtempSync(join(tmpdir(), 'rg-audit-')), 'audit.log')
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', AUDIT_LOG_FILE: auditLogFile, BLOB_DIR: join(mkdtempSync(join(tmpdir(), 'rg-blobs-')), 'blobs'), ...env })
}

export interface LogCapture {
  lines: Array<Record<string, unknown> & { level: number, msg?: string }>
  stream: Writable
  text(): string
}

/** Collects the JSON log lines the app writes, to assert what is (and is not) logged. */
export function captureLogs (): LogCapture {
  const lines: LogCapture['lines'] = []
  const raw: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue
        raw.push(line)
        lines.push(JSON.parse(line))
      }
      callback()
    }
  })
  return { lines, stream, text: () => raw.join('\n') }
}

export interface BuildTestOptions {
  env?: Record<string, string>
  store?: Stores
  logs?: LogCapture
  /** registered after the gateway's own routes, before ready (routes that exist only for a test) */
  extra?: (app: FastifyInstance) => void | Promise<void>
}

/** Builds the gateway for `inject`, closed when the test ends. */
export async function build (t: Test, options: BuildTestOptions = {}): Promise<FastifyInstance> {
  const env = { ...(options.logs ? { LOG_LEVEL: 'info' } : {}), ...options.env }
  const app = await buildApp(testConfig(env), {
    ...(options.store ? { store: options.store } : {}),
    ...(options.logs ? { logStream: options.logs.stream } : {})
  })
  t.teardown(async () => await app.close())
  if (options.extra) await options.extra(app)
  await app.ready()
  return app
}
