import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command, Option } from 'commander'
import { loadConfig } from '../config.js'
import { createStore } from '../store/index.js'
import { generateGatewayKey, parseKeyFile, rotateKeys, rotateStoredKeys, writeKeyFile } from '../services/signing-keys.js'
import type { GatewayAlg } from '../services/signing-keys.js'
import { fetchAccessToken, generateAgencyKeyPair, signClientAssertion } from './agency-keys.js'
import type { AgencyAlg, AgencyPrivateKey } from './agency-keys.js'
import { VERSION } from '../lib/version.js'

/** `reuse-gateway`: the command-line tool for agencies, operators and auditors. */

async function readPrivateKey (path: string): Promise<AgencyPrivateKey> {
  const key = JSON.parse(await readFile(path, 'utf8')) as AgencyPrivateKey
  if (typeof key.kid !== 'string' || typeof key.alg !== 'string' || typeof key.d !== 'string') {
    throw new Error(`${path} is not a private JWK with kid and alg (create one with: reuse-gateway keys generate)`)
  }
  return key
}

function agencyOf (key: AgencyPrivateKey, given: string | undefined): string {
  const agency = given ?? key.agency
  if (!agency) throw new Error('which agency? pass --agency CODE')
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
    .addOption(new Option('--alg <alg>', 'signing algorithm').choices(['ES256', 'EdDSA', 'RS256', 'PS256']).default('ES256'))
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
    .description('rotate: a new key signs from now on, the old one stays published for SIGNING_KEY_RETENTION_DAYS. With --file, rotates that key file (gateways re-read it within 10 s); without, the keys kept in the store at REDIS_URL / REDIS_CLUSTER_NODES')
    .option('--file <file>', 'the SIGNING_KEYS_FILE to rotate')
    .addOption(new Option('--alg <alg>', 'algorithm of the new key').choices(['EdDSA', 'ES256']))
    .action(async (options: { file?: string, alg?: GatewayAlg }) => {
      const config = loadConfig()
      const alg = options.alg ?? config.signing.alg
      let active: string
      if (options.file) {
        const next = await rotateKeys(parseKeyFile(await readFile(options.file, 'utf8'), options.file), alg, config.signing.retentionMs)
        await writeKeyFile(options.file, next)
        active = next[0]?.kid as string
      } else {
        if (config.redis.mode === 'memory') throw new Error('no store to rotate in: set REDIS_URL (or REDIS_CLUSTER_NODES) as the gateway has it, or pass --file')
        const store = await createStore(config)
        try {
          active = (await rotateStoredKeys(store, alg, config.signing.retentionMs))[0]?.kid as string
        } finally {
          await store.close()
        }
      }
      process.stdout.write(`new active signing key: ${active}\n`)
    })

  return program
}

export async function runCli (argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv)
  } catch (err) {
    process.stderr.write(`reuse-gateway: ${(err as Error).message}\n`)
    process.exitCode = 1
  }
}
