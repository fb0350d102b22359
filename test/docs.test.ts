import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Command } from 'commander'
import { buildCli } from '../src/cli/index.js'
import { ENVIRONMENT_VARIABLES } from '../src/config.js'

/**
 * The documents stay true: README.md is what a newcomer reads to the end, docs/ is the
 * reference, every link lands, every variable the gateway reads is documented, and every
 * `reuse-gateway` command the pages show is one the tool has, with options it takes.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const DOCS = join(ROOT, 'docs')
const pages = ['README.md', ...readdirSync(DOCS).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))]
const read = (page: string): string => readFileSync(join(ROOT, page), 'utf8')

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
const anchorsOf = (text: string): Set<string> => new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] as string)))

/** markdown outside fenced code blocks */
const prose = (text: string): string => text.replace(/^```[^]*?^```/gm, '')

t.test('README.md is a newcomer\'s page: short, the two commands, links to every reference page', async (t) => {
  const readme = read('README.md')
  t.ok(Buffer.byteLength(readme) <= 10_000, `README.md is ${Buffer.byteLength(readme)} bytes (at most 10 kB: the reference lives in docs/)`)
  for (const section of ['## Run it', '## Test it', '## Documentation', '## How the code is laid out']) t.match(readme, `\n${section}\n`, section)
  t.match(readme, /```sh\nnpm install && npm start\n```/, 'the command to run it')
  t.match(readme, /```sh\nnpm test\n```/, 'the command to test it')
  for (const page of pages.filter((p) => p.startsWith('docs/'))) t.match(readme, `](${page})`, `README links to ${page}`)
})

t.test('README.md\'s layout names every folder of src/, and of src/store/', async (t) => {
  const layout = read('README.md').split('\n## How the code is laid out\n')[1]?.split('\n## ')[0] ?? ''
  const folders = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => `${dir}/${entry.name}/`)
  for (const folder of [...folders('src'), ...folders('src/store')]) t.match(layout, folder.replace(/^src\/store\//, 'store/'), `the layout says what ${folder} holds`)
})

t.test('every relative link in README.md and docs/ lands on a file, and on a heading where it names one', async (t) => {
  let links = 0
  for (const page of pages) {
    for (const [, target] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue
      links++
      const [path, anchor] = (target as string).split('#')
      const file = path ? resolve(ROOT, dirname(page), path) : join(ROOT, page)
      if (!existsSync(file)) { t.fail(`${page}: ${target} does not exist`); continue }
      if (anchor && file.endsWith('.md')) t.ok(anchorsOf(readFileSync(file, 'utf8')).has(anchor), `${page}: #${anchor} is a heading of ${path || page}`)
    }
  }
  t.ok(links >= 20, `${links} links checked`)
})

t.test('docs/configuration.md lists every environment variable the gateway reads, and no other', async (t) => {
  const documented = [...read('docs/configuration.md').matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1] as string)
  t.same(ENVIRONMENT_VARIABLES.filter((name) => !documented.includes(name)), [], 'read but not documented')
  t.same(documented.filter((name) => !ENVIRONMENT_VARIABLES.includes(name)), [], 'documented but not read')
})

/** every leaf command of the tool, by its path ("audit verify"), with its long options */
function leafCommands (command: Command, path: string[] = []): Map<string, string[]> {
  const out = new Map<string, string[]>()
  const subs = command.commands.filter((c) => c.name() !== 'help')
  if (!subs.length) out.set(path.join(' '), command.options.map((o) => o.long as string))
  for (const sub of subs) for (const [name, options] of leafCommands(sub, [...path, sub.name()])) out.set(name, options)
  return out
}

t.test('docs/cli.md documents every command of the tool and every option of each', async (t) => {
  const page = read('docs/cli.md')
  const sections = page.split(/^### /m).slice(1)
  for (const [name, options] of leafCommands(buildCli())) {
    const section = sections.find((s) => s.startsWith(`\`reuse-gateway ${name}\``) || s.startsWith(`\`reuse-gateway ${name} `))
    if (!section) { t.fail(`no section for reuse-gateway ${name}`); continue }
    for (const option of options.filter((o) => o !== '--help')) t.match(section, `\`${option}`, `reuse-gateway ${name}: ${option}`)
  }
})

t.test('every reuse-gateway command the pages show exists, with options it takes', async (t) => {
  const commands = leafCommands(buildCli())
  let shown = 0
  for (const page of pages) {
    for (const [, block] of read(page).matchAll(/^```(?:sh|bash)\n([^]*?)^```/gm)) {
      for (const line of (block as string).split('\n')) {
        const invocation = /(?:npx |^)reuse-gateway ((?:[a-z][a-z-]* ?)+)(.*)$/.exec(line.replace(/#.*$/, ''))
        if (!invocation) continue
        shown++
        const words = (invocation[1] as string).trim().split(' ')
        const name = [...commands.keys()].filter((c) => words.join(' ').startsWith(c)).sort((a, b) => b.length - a.length)[0]
        if (!name) { t.fail(`${page}: no command reuse-gateway ${words.join(' ')}`); continue }
        for (const [option] of line.matchAll(/--[a-z][a-z-]*/g)) t.ok(commands.get(name)?.includes(option), `${page}: reuse-gateway ${name} takes ${option}`)
      }
    }
  }
  t.ok(shown >= 10, `${shown} commands checked`)
})
