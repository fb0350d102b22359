#!/usr/bin/env node
// Builds the web console (console/src) into dist/console/: one script and one stylesheet with
// content-hashed names, and manifest.json naming them for the gateway (src/routes/console).
// Run by `npm run build`; the browser tests run it too, so they test what a start serves.
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'console')

export async function buildConsole () {
  await mkdir(out, { recursive: true })
  const result = await build({
    entryPoints: { console: join(root, 'console', 'src', 'main.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    entryNames: '[name]-[hash]',
    outdir: out,
    metafile: true,
    logLevel: 'warning'
  })
  const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file))
  const script = outputs.find((file) => file.endsWith('.js'))
  const stylesheet = outputs.find((file) => file.endsWith('.css'))
  if (!script || !stylesheet) throw new Error(`the console build wrote ${outputs.join(', ')}: a script and a stylesheet were expected`)
  // the manifest is swapped in whole (a gateway reading it meanwhile sees the old or the new one),
  // then the files of earlier builds go: the same content keeps its name, so a rebuild with no
  // change removes nothing in use
  const temporary = join(out, `manifest.json.${process.pid}`)
  await writeFile(temporary, JSON.stringify({ script, stylesheet }, null, 2) + '\n')
  await rename(temporary, join(out, 'manifest.json'))
  for (const file of await readdir(out)) {
    if (file !== 'manifest.json' && file !== script && file !== stylesheet && !file.startsWith('manifest.json.')) await rm(join(out, file), { force: true })
  }
  return { dir: out, script, stylesheet }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { script, stylesheet } = await buildConsole()
  process.stdout.write(`console built: dist/console/${script}, dist/console/${stylesheet}\n`)
}
