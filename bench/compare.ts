import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { root } from './lib.js'

/**
 * Two commits' bench rows, measured in turn on the same machine: `npm run bench:compare -- <commit>`
 * runs `npm run bench` (BENCH_ONLY, by default the reuse and token rows) alternately in a
 * worktree of <commit> and in this checkout, `--rounds` times each, and prints, per row, the
 * sums of each side's requests a second and of its baselines, the ratio of the sums, the
 * server's CPU time a request and the p99s. Alternating and summing is what makes a difference
 * of a few percent readable on a machine whose bare route swings by a third from run to run: a
 * single pair of runs proves nothing either way.
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '4' }, only: { type: 'string', default: 'reuse,token' }, seconds: { type: 'string', default: process.env.BENCH_SECONDS ?? '10' } }
})
const base = positionals[0]
if (base === undefined) {
  process.stderr.write('usage: npm run bench:compare -- <commit> [--rounds 4] [--only reuse,token] [--seconds 10]\n')
  process.exit(2)
}
const rounds = Number(values.rounds)
const commit = execFileSync('git', ['rev-parse', '--short', `${base}^{commit}`], { cwd: root, encoding: 'utf8' }).trim()
const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()

interface Row { figure: number, baseline: number, p99: number, cpuUs?: number }
const measured = new Map<string, Map<string, Row[]>>()

/** one table row of the bench: the row's name, its figure (req/s), p99, the server's CPU a request and the baseline's figure */
function parseRow (line: string): [string, Row] | undefined {
  const cells = line.split(' | ').map((cell) => cell.replace(/^\| ?| ?\|$/g, '').trim())
  const [name, figures, baseline] = cells
  const rate = /^(\d+) req\/s, p50 \d+ ms, p99 (\d+) ms/.exec(figures ?? '')
  const baselineRate = /: (\d+) (?:req\/s|\/s)/.exec(baseline ?? '')
  if (name === undefined || !rate || !baselineRate) return undefined
  const cpu = /server: (\d+) µs CPU/.exec(figures ?? '')
  return [name, { figure: Number(rate[1]), p99: Number(rate[2]), baseline: Number(baselineRate[1]), ...(cpu ? { cpuUs: Number(cpu[1]) } : {}) }]
}

async function bench (cwd: string, side: string): Promise<void> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'bench'], { cwd, env: { ...process.env, BENCH_ONLY: values.only, BENCH_SECONDS: values.seconds }, stdio: ['ignore', 'pipe', 'ignore'] })
    let text = ''
    child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString() })
    child.on('error', reject)
    child.on('exit', (code) => { code === 0 ? resolve(text) : reject(new Error(`npm run bench in ${cwd} exited ${code}`)) })
  })
  for (const line of out.split('\n')) {
    const row = parseRow(line)
    if (!row) continue
    const [name, figures] = row
    const sides = measured.get(name) ?? new Map<string, Row[]>()
    sides.set(side, [...(sides.get(side) ?? []), figures])
    measured.set(name, sides)
  }
}

const dir = mkdtempSync(join(tmpdir(), 'rg-bench-compare-'))
const worktree = join(dir, commit)
execFileSync('git', ['worktree', 'add', '--detach', worktree, commit], { cwd: root, stdio: 'ignore' })
try {
  symlinkSync(join(root, 'node_modules'), join(worktree, 'node_modules'))
  for (let round = 1; round <= rounds; round++) {
    process.stderr.write(`round ${round} of ${rounds}: ${commit}, then ${head}\n`)
    await bench(worktree, commit)
    await bench(root, head)
  }
} finally {
  execFileSync('git', ['worktree', 'remove', '--force', worktree], { cwd: root, stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
}

const sum = (rows: Row[], key: 'figure' | 'baseline'): number => rows.reduce((total, row) => total + row[key], 0)
console.log(`\n${commit} against ${head}: ${rounds} round${rounds === 1 ? '' : 's'}, alternating, ${values.seconds} s a load (BENCH_ONLY=${values.only})\n`)
console.log('| row | side | figure, summed | baseline, summed | ratio of the sums | server CPU a request | p99s (ms) |')
console.log('|---|---|---|---|---|---|---|')
for (const [name, sides] of measured) {
  for (const side of [commit, head]) {
    const rows = sides.get(side) ?? []
    const cpus = rows.flatMap((row) => row.cpuUs === undefined ? [] : [row.cpuUs])
    const cpu = cpus.length ? `${(cpus.reduce((a, b) => a + b, 0) / cpus.length).toFixed(0)} µs` : '—'
    console.log(`| ${name} | ${side} | ${sum(rows, 'figure')} | ${sum(rows, 'baseline')} | ${(sum(rows, 'figure') / Math.max(1, sum(rows, 'baseline'))).toFixed(4)} | ${cpu} | ${rows.map((row) => row.p99).join(', ')} |`)
  }
}
