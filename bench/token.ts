import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { importJWK, SignJWT } from 'jose'
import { load, pinnedScript } from './lib.js'
import type { BenchGateway, LoadFigures } from './lib.js'
import { gatewayIssuer } from '../src/cli/agency-keys.js'
import type { AgencyPrivateKey } from '../src/cli/agency-keys.js'

/** `count` token request bodies for `agency`, each with a client assertion of its own (a replayed jti is refused), one a line of `file`. */
export async function writeAssertionBodies (g: BenchGateway, privateKey: AgencyPrivateKey, agency: string, count: number, file: string): Promise<void> {
  const audience = await gatewayIssuer(g.gateway.url)
  const key = await importJWK(privateKey, privateKey.alg)
  const now = Math.floor(Date.now() / 1000)
  const lines: string[] = []
  for (let i = 0; i < count; i++) {
    const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: privateKey.alg, kid: privateKey.kid, typ: 'JWT' })
      .setIssuer(agency).setSubject(agency).setAudience(audience).setIssuedAt(now).setExpirationTime(now + 280).sign(key)
    lines.push(new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }).toString())
  }
  writeFileSync(file, lines.join('\n'))
}

/**
 * The token endpoint (client assertion verified, jti claimed once, access token signed,
 * issuance audited), each request with a fresh assertion made beforehand, versus jose's own
 * verify + sign loop on the same CPU (bench/jose-loop.ts): what one core can do at best.
 */
export async function benchToken (g: BenchGateway, seconds: number, connections: number): Promise<{ endpoint: LoadFigures, jose: { opsPerSecond: number } }> {
  const agency = await g.agency('000.00.21.H41', 'Sở Kế hoạch và Đầu tư', ['requester'])
  const file = join(mkdtempSync(join(tmpdir(), 'rg-bench-token-')), 'bodies.txt')
  // enough for 8,000 tokens a second
  await writeAssertionBodies(g, agency.privateKey, '000.00.21.H41', 8000 * (seconds + 3), file)
  const jose = await pinnedScript<{ opsPerSecond: number }>('bench/jose-loop.ts', ['3'])
  const endpoint = await load({ url: `${g.gateway.url}/v1/oauth/token`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, bodiesFile: file, seconds, connections, ...(g.pid ? { server: g.pid } : {}) })
  return { endpoint, jose }
}
