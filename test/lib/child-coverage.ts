import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let rawCoverage: string | undefined

/**
 * What a child process running src/*.ts through tsx needs in its environment for tap to measure
 * it. tap's process-info hook follows every child by itself (it adds itself to NODE_OPTIONS and
 * passes its _TAPJS_PROCESSINFO_* variables on), but tsx leaves the TypeScript text out of its
 * source maps unless NODE_V8_COVERAGE is set, and without that text each file of a child counts
 * as one covered line. Node writes its own raw coverage into that folder too, which nothing
 * reads: one folder per test process, removed when it exits. Nothing when tap is not measuring.
 */
export function coverageEnv (): Record<string, string> {
  if (process.env.TAP !== '1' || process.env._TAPJS_PROCESSINFO_COVERAGE_ === '0') return {}
  if (!rawCoverage) {
    const folder = mkdtempSync(join(tmpdir(), 'rg-v8-coverage-'))
    process.once('exit', () => rmSync(folder, { recursive: true, force: true }))
    rawCoverage = folder
  }
  return { NODE_V8_COVERAGE: rawCoverage }
}
