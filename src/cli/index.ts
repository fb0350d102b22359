import { createWriteStream, existsSync } from 'node:fs'
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Presets, SingleBar } from 'cli-progress'
import { createLocalJWKSet } from 'jose'
import type { JSONWebKeySet } from 'jose'
import { parseCheckpoints, verifyAuditFile } from '../services/audit-verify.js'
import { join } from 'node:path'
import { Command, Option } from 'commander'
import { loadConfig } from '../config.js'
import { RedisStores, createStores } from '../store/index.js'
import type { Stores } from '../store/index.js'
import { AGENCY_CODE, AgencyService } from '../services/agencies.js'
import { PORTAL, agencyDestination, replayOutbox } from '../services/outbox.js'
import { generateGatewayKey, parseKeyFile, rotateKeys, rotateStoredKeys, writeKeyFile } from '../services/signing-keys.js'
import type { GatewayAlg, StoredKey } from '../services/signing-keys.js'
import { latestRetiredKeyExp } from '../services/tokens.js'
import { fetchAccessToken, generateAgencyKeyPair, signClientAssertion } from './agency-keys.js'
import { importDocuments } from './import.js'
import { fetchFrom } from './gateway-fetch.js'
import { encryptionCommands } from './encryption.js'
import { auditArchiveCommands } from './audit-archive.js'
import type { AgencyAlg, AgencyPrivateKey } from './agency-keys.js'
import { VERSION } from '../lib/version.js'
import { demoGuide, demoKeysPresent } from '../demo.js'
import { StatedError, errorText } from '../lib/error-description.js'

/** `reuse-gateway`: the command-line tool for agencies, operators and auditors. */

async function readPrivateKey (path: string): Promise<AgencyPrivateKey> {
  let key: AgencyPrivateKey
  try {
    key = JSON.parse(await readFile(path, 'utf8')) as AgencyPrivateKey
  } catch (err) {
    // JSON.parse's message quotes the text: here, a private key
    throw new StatedError(`${path} is not a readable JSON file (create one with: reuse-gateway keys generate)`, { cause: err })
  }
  if (typeof key.kid !== 'string' || typeof key.alg !== 'string' || typeof key.d !== 'string') {
    throw new StatedError(`${path} is not a private JWK with kid and alg (create one with: reuse-gateway keys generate)`)
  }
  return key
}

function agencyOf (key: AgencyPrivateKey, given: string | undefined): string {
  const agency = given ?? key.agency
  if (!agency) throw new StatedError('which agency? pass --agency CODE')
  return agency
}

export function buildCli (): Command {
  const program = new Command('reuse-gateway')
    .description('Command-line tool of the reuse gateway')
    .version(VERSION)
    .showHelpAfterError()

  const keys = program.command('keys').description("an agency's key pair and what it signs")

  keys.command('generate')
    .description('generate an agency key pair: <out>/<agency>.private.jwk.json (keep it secret) and <out>/<agency>.jwks.json (register it)')
    .requiredOption('--agency <code>', 'agency code, e.g. 000.00.00.H41')
    .addOption(new Option('--alg <alg>', 'signing algorithm (Ed25519 is RFC 9864\'s name for an Ed25519 EdDSA key; EdDSA the older name, for clients that know only it)').choices(['ES256', 'Ed25519', 'EdDSA', 'RS256', 'PS256']).default('ES256'))
    .option('--out <dir>', 'folder to write to', '.')
    .action(async (options: { agency: string, alg: AgencyAlg, out: string }) => {
      const { privateKey, jwks } = await generateAgencyKeyPair(options.alg, options.agency)
      await mkdir(options.out, { recursive: true })
      const privatePath = join(options.out, `${options.agency}.private.jwk.json`)
      const publicPath = join(options.out, `${options.agency}.jwks.json`)
      await writeFile(privatePath, JSON.stringify(privateKey, null, 2) + '\n', { mode: 0o600 })
      await writeFile(publicPath, JSON.stringify(jwks, null, 2) + '\n')
      process.stdout.write(`${privatePath}\n${publicPath}\n`)
    })

  keys.command('assertion')
    .description('print a client assertion (RFC 7523) signed with a private key, for the token endpoint')
    .requiredOption('--key <file>', 'private JWK file')
    .option('--agency <code>', 'agency code (default: the one in the key file)')
    .requiredOption('--audience <url>', "the gateway's issuer id or token endpoint URL")
    .action(async (options: { key: string, agency?: string, audience: string }) => {
      const privateKey = await readPrivateKey(options.key)
      process.stdout.write(await signClientAssertion({ privateKey, agency: agencyOf(privateKey, options.agency), audience: options.audience }) + '\n')
    })

  program.command('token')
    .description('get an access token from a running gateway and print it')
    .requiredOption('--key <file>', 'private JWK file')
    .option('--agency <code>', 'agency code (default: the one in the key file)')
    .option('--gateway <url>', 'gateway base URL', 'http://127.0.0.1:3000')
    .option('--audience <id>', 'assertion audience (default: the token endpoint URL)')
    .option('--scope <scopes>', 'space-separated scopes (default: all the agency holds)')
    .option('--json', 'print the whole token response')
    .action(async (options: { key: string, agency?: string, gateway: string, audience?: string, scope?: string, json?: boolean }) => {
      const privateKey = await readPrivateKey(options.key)
      const response = await fetchAccessToken({
        gateway: options.gateway,
        privateKey,
        agency: agencyOf(privateKey, options.agency),
        ...(options.scope ? { scope: options.scope } : {}),
        ...(options.audience ? { audience: options.audience } : {})
      })
      process.stdout.write((options.json ? JSON.stringify(response, null, 2) : response.access_token) + '\n')
    })

  program.command('demo')
    .description("print the demo citizens and, for each role, commands to paste into bash, as the gateway's start banner does (from the keys in the demo folder)")
    .option('--gateway <url>', 'gateway base URL', 'http://127.0.0.1:3000')
    .option('--dir <folder>', 'the demo folder (DEMO_DIR)', process.env.DEMO_DIR || '.demo')
    .action((options: { gateway: string, dir: string }) => {
      if (!demoKeysPresent(options.dir)) throw new StatedError(`no demo keys in ${options.dir}/: start the gateway once (npm start) with no admin configured, on the embedded store or, in development, on an empty Redis`)
      const auditLog = join(options.dir, 'audit.log')
      process.stdout.write(demoGuide({ dir: options.dir, gateway: options.gateway, auditLog: existsSync(auditLog) ? auditLog : undefined }) + '\n')
    })

  const signing = program.command('signing-keys').description("the gateway's own signing keys")

  signing.command('generate')
    .description('create a JWKS file with one private signing key, for SIGNING_KEYS_FILE')
    .requiredOption('--out <file>', 'file to create')
    .addOption(new Option('--alg <alg>', 'algorithm').choices(['EdDSA', 'ES256']).default('EdDSA'))
    .action(async (options: { out: string, alg: GatewayAlg }) => {
      await writeKeyFile(options.out, [await generateGatewayKey(options.alg)])
      process.stdout.write(`${options.out}\n`)
    })

  signing.command('rotate')
    .description('rotate: a new key signs from now on; access tokens signed by the old one stay good until they expire (ACCESS_TOKEN_TTL_SECONDS), after which it only verifies attestations, receipts and checkpoints, published for SIGNING_KEY_RETENTION_DAYS. With --file, rotates that key file (gateways re-read it within 10 s); without, the keys kept in the store at REDIS_URL / REDIS_CLUSTER_NODES')
    .option('--file <file>', 'the SIGNING_KEYS_FILE to rotate')
    .addOption(new Option('--alg <alg>', 'algorithm of the new key').choices(['EdDSA', 'ES256']))
    .action(async (options: { file?: string, alg?: GatewayAlg }) => {
      const config = loadConfig()
      const alg = options.alg ?? config.signing.alg
      let next: StoredKey[]
      if (options.file) {
        next = await rotateKeys(parseKeyFile(await readFile(options.file, 'utf8'), options.file), alg, config.signing.retentionMs)
        await writeKeyFile(options.file, next)
      } else {
        if (config.redis.mode === 'memory') throw new StatedError('no store to rotate in: set REDIS_URL (or REDIS_CLUSTER_NODES) as the gateway has it, or pass --file')
        const store = await createStores(config)
        try {
          next = await rotateStoredKeys(store.signingKeys, alg, config.signing.retentionMs)
        } finally {
          await store.close()
        }
      }
      const active = next[0]
      // the key this rotation retired: it and the new one share the rotation's time
      const retired = next.slice(1).find((key) => key.retired_at === active?.created_at)
      process.stdout.write(`new active signing key: ${active?.kid as string}\n`)
      if (retired?.retired_at) {
        // the same bounds the gateways apply (tokens.ts): an operator rotating away a leaked key knows how long it still counts
        const at = Date.parse(retired.retired_at)
        const tokensUntil = new Date((latestRetiredKeyExp(at, config.accessTokenTtlSeconds, config.accessTokenClockSkewSeconds) + config.accessTokenClockSkewSeconds) * 1000).toISOString()
        const publishedUntil = new Date(at + config.signing.retentionMs).toISOString()
        process.stdout.write(`retired key ${retired.kid}: access tokens it signed are accepted until ${tokensUntil}; it verifies attestations, receipts and checkpoints until ${publishedUntil}\n`)
      }
    })

  const documents = program.command('documents').description('the index of digitized results')

  documents.command('import')
    .description('index an NDJSON file of results (one DocumentInput a line) through the batch endpoint, with progress; resumable, and rejected lines are written with their reasons to <file>.rejected.ndjson')
    .argument('<file>', 'NDJSON file')
    .requiredOption('--key <file>', "the issuing agency's private JWK file")
    .option('--agency <code>', 'agency code (default: the one in the key file)')
    .option('--gateway <url>', 'gateway base URL', 'http://127.0.0.1:3000')
    .option('--chunk <n>', 'lines per batch request', '1000')
    .option('--parallel <n>', 'batch requests in flight at once', '4')
    .option('--restart', 'start from the first line instead of resuming')
    .option('--quiet', 'no progress bar')
    .action(async (file: string, options: { key: string, agency?: string, gateway: string, chunk: string, parallel: string, restart?: boolean, quiet?: boolean }) => {
      const privateKey = await readPrivateKey(options.key)
      const summary = await importDocuments({
        file,
        gateway: options.gateway,
        privateKey,
        agency: agencyOf(privateKey, options.agency),
        chunk: Number(options.chunk),
        parallel: Number(options.parallel),
        ...(options.restart ? { restart: true } : {}),
        progress: !options.quiet
      })
      process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
      if (summary.rejected + summary.conflict > 0) process.stderr.write(`${summary.rejected + summary.conflict} lines not indexed: see ${summary.rejectedFile}\n`)
    })

  const audit = program.command('audit').description('the audit trail')
  auditArchiveCommands(audit, loadConfig, withStore)

  audit.command('verify')
    .description("verify the audit trail offline — an audit log file, an export from GET /v1/audit/export or from `audit export` — hash chains and signed checkpoints, against the gateway's public keys; exits 2 when it does not verify or holds nothing to verify (docs/audit-format.md)")
    .argument('<file>', 'audit log file (AUDIT_LOG_FILE: JSON lines) or NDJSON export')
    .requiredOption('--jwks <file-or-url>', "the gateway's JWKS: a file, or its /.well-known/jwks.json URL")
    .option('--checkpoint <file>', 'checkpoints kept apart from the file: the JSON answer of GET /v1/audit/checkpoints, or compact JWS one a line; they also detect events cut off after the file\'s last checkpoint')
    .option('--from <time>', 'the file is an export of a range starting at this time (GET /v1/audit/export?from=, audit export --from): its chains may start mid-way, each vouched for by a checkpoint made after its events')
    .option('--issuer <id>', "the gateway's issuer id, to check the checkpoints' iss")
    .option('--all-chains', 'the file holds every gateway process\'s events (logs concatenated, or an export): a chain named by a checkpoint but absent is an error')
    .action(async (file: string, options: { jwks: string, checkpoint?: string, from?: string, issuer?: string, allChains?: boolean }) => {
      if (options.from !== undefined && Number.isNaN(Date.parse(options.from))) throw new StatedError('--from must be an ISO 8601 time')
      const jwks = /^https?:\/\//.test(options.jwks)
        ? await (await fetchFrom(options.jwks, undefined, '--jwks')).json() as JSONWebKeySet
        : JSON.parse(await readFile(options.jwks, 'utf8')) as JSONWebKeySet
      const checkpoints = options.checkpoint ? parseCheckpoints(await readFile(options.checkpoint, 'utf8'), options.checkpoint) : []
      const result = await verifyAuditFile(file, createLocalJWKSet(jwks), {
        checkpoints,
        ...(options.issuer ? { issuer: options.issuer } : {}),
        ...(options.from ? { from: options.from } : {}),
        requireAllChains: options.allChains === true
      })
      process.stdout.write(JSON.stringify(result, null, 2) + '\n')
      if (!result.ok) {
        process.stderr.write(`reuse-gateway: the audit trail does not verify: ${result.reason ?? 'see above'}\n`)
        process.exitCode = 2
      } else if (result.checkpoints === 0) {
        process.stderr.write('reuse-gateway: no signed checkpoint was checked: the links hold, but a file re-hashed throughout or cut at its end would verify too (pass --checkpoint)\n')
      }
    })

  audit.command('export')
    .description('export the audit trail from a running gateway to an NDJSON file, with progress: the events (GET /v1/audit/export, page after page as its Link headers lead), then the signed checkpoints made in the same range (GET /v1/audit/checkpoints) as {"checkpoint": …} lines, so that `audit verify` checks the file on its own')
    .requiredOption('--key <file>', "an auditor agency's private JWK file")
    .option('--agency <code>', 'agency code (default: the one in the key file)')
    .option('--gateway <url>', 'gateway base URL', 'http://127.0.0.1:3000')
    .requiredOption('--out <file>', 'file to write')
    .option('--from <time>', 'ISO 8601 time, inclusive (verify the file with the same --from)')
    .option('--to <time>', 'ISO 8601 time, exclusive (default: now)')
    .option('--page-size <n>', 'events a request (default: as many as the gateway sends, 100000); the pages are followed to the end')
    .option('--quiet', 'no progress bar')
    .action(async (options: { key: string, agency?: string, gateway: string, out: string, from?: string, to?: string, pageSize?: string, quiet?: boolean }) => {
      if (options.pageSize !== undefined && !/^[1-9]\d*$/.test(options.pageSize)) throw new StatedError('--page-size must be a positive integer')
      const privateKey = await readPrivateKey(options.key)
      const gateway = options.gateway.replace(/\/+$/, '')
      const token = (await fetchAccessToken({ gateway, privateKey, agency: agencyOf(privateKey, options.agency), scope: 'audit:read' })).access_token
      // one end for the events and the checkpoints: a checkpoint made after the export began
      // would name events the export could not hold, and read as a cut tail
      const to = options.to ?? new Date().toISOString()
      const query = new URLSearchParams({ ...(options.from ? { from: options.from } : {}), to })
      const headers = { authorization: `Bearer ${token}` }
      const bar = options.quiet ? undefined : new SingleBar({ format: 'exporting audit events | {value} events | {bytes} | {duration}s', hideCursor: true, noTTYOutput: false }, Presets.shades_classic)
      bar?.start(0, 0, { bytes: '0 B' })
      let events = 0
      let bytes = 0
      const counter = (): Transform => new Transform({
        transform (chunk: Buffer, _encoding, callback) {
          bytes += chunk.length
          for (const byte of chunk) if (byte === 10) events++
          bar?.update(events, { bytes: `${(bytes / 1048576).toFixed(1)} MiB` })
          callback(null, chunk)
        }
      })
      // a page a request: each answer's Link header (rel="next") names the next, until none does
      const first = new URLSearchParams(query)
      if (options.pageSize) first.set('limit', options.pageSize)
      let next: string | undefined = `${gateway}/v1/audit/export?${first}`
      let flags = 'w'
      while (next) {
        const response = await fetchFrom(next, { headers })
        if (!response.ok || !response.body) throw new StatedError(`export refused (${response.status}): ${await response.text()}`)
        const link = nextLink(response.headers.get('link'))
        await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), counter(), createWriteStream(options.out, { flags }))
        flags = 'a'
        next = link ? new URL(link, next).toString() : undefined
      }
      bar?.stop()
      let checkpoints = 0
      let cursor: string | undefined
      do {
        const page = new URLSearchParams(query)
        if (cursor) page.set('cursor', cursor)
        const answer = await fetchFrom(`${gateway}/v1/audit/checkpoints?${page}`, { headers })
        if (!answer.ok) throw new StatedError(`the events are in ${options.out}, but the checkpoints were refused (${answer.status}): ${await answer.text()}`)
        const body = await answer.json() as { checkpoints: Array<{ time: string, jws: string, chains: unknown[] }>, nextCursor?: string }
        await appendFile(options.out, body.checkpoints.map((checkpoint) => JSON.stringify({ checkpoint }) + '\n').join(''))
        checkpoints += body.checkpoints.length
        cursor = body.nextCursor
      } while (cursor)
      process.stderr.write(`${events} events and ${checkpoints} checkpoints written to ${options.out}\n`)
    })

  const outbox = program.command('outbox').description('announcements and notices on their way to webhooks (on the store at REDIS_URL / REDIS_CLUSTER_NODES)')

  outbox.command('status')
    .description('per destination (portal, agency:<code>): deliveries queued, delivered and dead; with --destination, its deliveries one by one')
    .option('--destination <destination>', 'portal, agency:<code>, or an agency code')
    .option('--after <cursor>', 'with --destination: list from after this cursor', '0')
    .option('--limit <n>', 'with --destination: at most this many', '100')
    .option('--json', 'print JSON')
    .action(async (options: { destination?: string, after: string, limit: string, json?: boolean }) => {
      await withStore(async (store) => {
        if (options.destination) {
          const deliveries = await store.outbox.outboxDeliveries(destinationName(options.destination), cursorOption(options.after, '--after'), cursorOption(options.limit, '--limit'))
          if (options.json) { process.stdout.write(JSON.stringify(deliveries, null, 2) + '\n'); return }
          for (const d of deliveries) {
            process.stdout.write(`${String(d.cursor).padStart(8)}  ${d.state.padEnd(9)} ${String(d.attempts).padStart(3)} attempts  ${d.eventId}${d.lastError ? `  (${d.lastError})` : ''}\n`)
          }
          return
        }
        const status = await store.outbox.outboxStatus()
        if (options.json) { process.stdout.write(JSON.stringify(status, null, 2) + '\n'); return }
        process.stdout.write(`${'destination'.padEnd(24)} ${'queued'.padStart(9)} ${'delivered'.padStart(10)} ${'dead'.padStart(7)}\n`)
        for (const s of status) process.stdout.write(`${s.destination.padEnd(24)} ${String(s.queued).padStart(9)} ${String(s.delivered).padStart(10)} ${String(s.dead).padStart(7)}\n`)
      })
    })

  outbox.command('replay')
    .description('queue again every delivered or dead event to a destination after a cursor; the gateways send them in order, with their original event ids')
    .requiredOption('--destination <destination>', 'portal, agency:<code>, or an agency code')
    .option('--after <cursor>', 'the last cursor the receiver processed', '0')
    .action(async (options: { destination: string, after: string }) => {
      await withStore(async (store) => {
        const destination = destinationName(options.destination)
        const { requeued } = await replayOutbox(store.outbox, destination, cursorOption(options.after, '--after'))
        process.stdout.write(`${requeued} deliveries to ${destination} queued again\n`)
      })
    })

  const agencies = program.command('agencies').description('registered agencies (on the store at REDIS_URL / REDIS_CLUSTER_NODES)')

  agencies.command('refresh-keys')
    .description("make every gateway process fetch the agency's jwks_uri again at its next request (as POST /v1/agencies/{code}/keys/refresh does): a key the agency removed there is refused from then on")
    .argument('<code>', 'agency code, e.g. 000.00.00.H41')
    .action(async (code: string) => {
      if (!AGENCY_CODE.test(code)) throw new StatedError(`"${code}" is not an agency code (e.g. 000.00.00.H41)`)
      await withStore(async (store) => {
        const service = new AgencyService({ agencies: store.agencies, catalogue: store.catalogue })
        if (!await service.get(code)) throw new StatedError(`no agency ${code} is registered`)
        const { keysGeneration } = await service.refreshKeys(code)
        process.stdout.write(`agency ${code}: keys generation ${keysGeneration}; every gateway re-reads its keys at its next request\n`)
      })
    })

  const storeCommand = program.command('store').description('the store the gateways share (REDIS_URL / REDIS_CLUSTER_NODES)')

  storeCommand.command('migrate')
    .description('rewrite documents stored by the earlier layout (a key per registration record and per id pointer, versions as JSON) into the compact one; gateways read both meanwhile, so it runs while they serve, and can be stopped and run again')
    .option('--quiet', 'no progress')
    .action(async (options: { quiet?: boolean }) => {
      await withStore(async (store) => {
        if (!(store instanceof RedisStores)) throw new StatedError('only a Redis store has a layout to migrate')
        const bar = options.quiet ? undefined : new SingleBar({ format: 'migrating | {registrations} registration records, {pointers} id pointers, {versions} versions moved', hideCursor: true }, Presets.shades_classic)
        bar?.start(0, 0, { registrations: 0, pointers: 0, versions: 0 })
        const moved = await store.documents.migrateLayout((counts) => bar?.update(0, counts))
        bar?.stop()
        process.stdout.write(JSON.stringify(moved, null, 2) + '\n')
      })
    })

  encryptionCommands(program, loadConfig, withStore)

  return program
}

/** the store the gateways share, from the same environment they read */
async function withStore (work: (store: Stores) => Promise<void>): Promise<void> {
  const config = loadConfig()
  if (config.redis.mode === 'memory') throw new StatedError('no store: set REDIS_URL (or REDIS_CLUSTER_NODES) as the gateway has it')
  const store = await createStores(config)
  try {
    await store.ping()
    await work(store)
  } finally {
    await store.close()
  }
}

function destinationName (value: string): string {
  if (value === PORTAL || value.startsWith('agency:')) return value
  if (/^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$/.test(value)) return agencyDestination(value)
  throw new StatedError(`unknown destination ${JSON.stringify(value)}: portal, agency:<code> or an agency code`)
}

function cursorOption (value: string, name: string): number {
  if (!/^[0-9]{1,15}$/.test(value)) throw new StatedError(`${name} must be a whole number`)
  return Number(value)
}

/** the target of a `Link` header's rel="next" (RFC 8288), if it has one */
export function nextLink (header: string | null): string | undefined {
  for (const part of (header ?? '').split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part)
    if (match && /;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(match[2] as string)) return match[1]
  }
  return undefined
}

export async function runCli (argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv)
  } catch (err) {
    // the command line's own refusals as written; anything else (a store error, a parse error)
    // by its class and code, as the gateway logs it: never a command's arguments or quoted data
    process.stderr.write(`reuse-gateway: ${errorText(err)}\n`)
    process.exitCode = 1
  }
}
