import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

/**
 * What a third party's tooling says about the published contract: Redocly (its recommended
 * rules, redocly.yaml) and Spectral (spectral:oas, .spectral.yaml) find no error and no warning in
 * openapi.yaml. `npm run lint:openapi` runs the same two.
 */
const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string): string => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url))

async function output (command: string, args: string[]): Promise<string> {
  try {
    // offline, like every test: no usage report, no update check
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }
    return (await run(command, args, { cwd: root, env, maxBuffer: 64 * 1024 * 1024 })).stdout
  } catch (err) {
    // both exit non-zero when they find something: what they found is still on standard output
    const stdout = (err as { stdout?: string }).stdout
    if (typeof stdout === 'string' && stdout.trim() !== '') return stdout
    throw err
  }
}

t.test('Redocly (recommended rules) finds no error and no warning', async (t) => {
  const report = JSON.parse(await output(bin('redocly'), ['lint', 'openapi.yaml', '--format=json', '--max-problems=1000'])) as { totals: { errors: number, warnings: number }, problems: Array<{ ruleId: string, message: string, location?: Array<{ pointer?: string }> }> }
  t.same(report.problems.map((p) => `${p.ruleId} ${p.location?.[0]?.pointer ?? ''}: ${p.message}`), [])
  t.equal(report.totals.errors, 0)
  t.equal(report.totals.warnings, 0)
})

t.test('Spectral (spectral:oas) finds no error and no warning', async (t) => {
  const found = JSON.parse(await output(bin('spectral'), ['lint', 'openapi.yaml', '--ruleset', '.spectral.yaml', '--format', 'json', '--quiet'])) as Array<{ code: string, message: string, severity: number, path: string[] }>
  t.same(found.filter((p) => p.severity <= 1).map((p) => `${p.code} ${p.path.join('.')}: ${p.message}`), [])
})
