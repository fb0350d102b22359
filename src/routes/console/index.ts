import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { ProblemError } from '../../lib/problem.js'

/**
 * The web console: one page, one script and one stylesheet, built by `npm run build`
 * (scripts/build-console.mjs) into dist/console/ with content-hashed names. The same folder is
 * found from dist/routes/console/ (a start) and from src/routes/console/ (tsx: the tests), three
 * levels up either way. Nothing comes from the internet; the page asks the API for everything.
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../dist/console/', import.meta.url))

/** the built files' names, as the build writes them in manifest.json */
export interface ConsoleManifest {
  script: string
  stylesheet: string
}

interface Bundle {
  manifest: ConsoleManifest
  page: string
  assets: Map<string, { body: Buffer, type: string }>
}

const IMMUTABLE = 'public, max-age=31536000, immutable'
const ASSET_NAME = /^[A-Za-z0-9._-]{1,100}$/

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The page: nothing but the shell; the script fills it in the language the user chose (Vietnamese first). */
function pageOf (manifest: ConsoleManifest): string {
  return [
    '<!doctype html>',
    '<html lang="vi">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    '<title>Bảng điều khiển tái sử dụng dữ liệu</title>',
    `<link rel="stylesheet" href="console/assets/${escapeHtml(manifest.stylesheet)}">`,
    `<script type="module" src="console/assets/${escapeHtml(manifest.script)}"></script>`,
    '</head>',
    '<body>',
    '<noscript>Bảng điều khiển cần JavaScript. The console needs JavaScript.</noscript>',
    '<div id="app"></div>',
    '</body>',
    '</html>',
    ''
  ].join('\n')
}

/** Reads the built console once it is there (a gateway started before the build finds it later). */
async function loadBundle (dir: string): Promise<Bundle | undefined> {
  let manifest: ConsoleManifest
  try {
    manifest = JSON.parse(await readFile(`${dir}manifest.json`, 'utf8')) as ConsoleManifest
  } catch {
    return undefined
  }
  const assets = new Map<string, { body: Buffer, type: string }>()
  assets.set(manifest.script, { body: await readFile(`${dir}${manifest.script}`), type: 'text/javascript; charset=utf-8' })
  assets.set(manifest.stylesheet, { body: await readFile(`${dir}${manifest.stylesheet}`), type: 'text/css; charset=utf-8' })
  return { manifest, page: pageOf(manifest), assets }
}

export default async function consoleRoutes (app: FastifyInstance, options: { dir?: string } = {}): Promise<void> {
  const dir = options.dir ?? CONSOLE_DIR
  let bundle: Promise<Bundle | undefined> | undefined
  const built = async (): Promise<Bundle> => {
    bundle ??= loadBundle(dir)
    const found = await bundle
    if (found === undefined) {
      bundle = undefined
      throw new ProblemError(404, 'console_not_built', 'the web console is not built: run `npm run build` (it writes dist/console/)')
    }
    return found
  }
  // the page may change with a new build: always asked again (cheaply), never stored as is
  const noCache = (reply: FastifyReply): FastifyReply => reply.header('cache-control', 'no-cache')

  app.get('/console', { schema: { hide: true } }, async (_request, reply) => {
    const { page } = await built()
    return await noCache(reply).type('text/html; charset=utf-8').send(page)
  })

  // the address typed with a slash: the page is /console (its relative links resolve from there)
  app.get('/console/', { schema: { hide: true } }, async (_request, reply) => await reply.redirect('../console', 308))

  // what the page needs to know of this gateway: the audience of client assertions, the target line
  app.get('/console/settings.json', { schema: { hide: true } }, async (_request, reply) => {
    return await noCache(reply).send({
      issuer: app.config.gatewayIssuer,
      tokenEndpoint: 'v1/oauth/token',
      reuseTargetPercent: app.config.console.reuseTargetPercent
    })
  })

  // content-hashed names: a new build has new names, so what a browser keeps is never stale
  app.get<{ Params: { file: string } }>('/console/assets/:file', { schema: { hide: true } }, async (request, reply) => {
    const { file } = request.params
    const asset = ASSET_NAME.test(file) ? (await built()).assets.get(file) : undefined
    if (asset === undefined) throw new ProblemError(404, 'route_not_found', `no console file ${ASSET_NAME.test(file) ? file : 'by that name'}`)
    return await reply.header('cache-control', IMMUTABLE).type(asset.type).send(asset.body)
  })
}
