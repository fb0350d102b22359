import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { compactVerify, createLocalJWKSet } from 'jose'
import { parse } from 'yaml'
import { bearer, buildWorld, reuseQuery } from './lib/world.js'

/**
 * A status-mode reuse query answers what docs/reuse.md and the published contract say it does:
 * each valid result's id, version, status, issuer and validity, and nothing else — no data, no
 * file, no attestation — with a Reuse-Receipt signed over that answer.
 */
const contract = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')) as {
  components: { schemas: Record<string, { properties: Record<string, { description?: string }> }> }
}
const guide = readFileSync(new URL('../docs/reuse.md', import.meta.url), 'utf8')

t.test('the members of a status answer are the ones the guide and the contract name, without attestation', async (t) => {
  const w = await buildWorld(t)
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w, ['giay-khai-sinh'], { mode: 'status' }) })
  t.equal(res.statusCode, 200)
  const documents = res.json().results[0].documents as Array<Record<string, unknown>>
  t.ok(documents.length > 0, 'a valid result is found')
  const members = [...new Set(documents.flatMap((d) => Object.keys(d)))].sort()
  // validUntil is there when the result has one (a birth certificate does not expire)
  const expected = (names: string[]): string[] => names.filter((name) => name !== 'validUntil' || members.includes('validUntil')).sort()

  const paragraph = /\*\*Status mode\*\*[^]*?\n\n/.exec(guide)?.[0] ?? ''
  const named = [...(/answers, for each valid result, only ([^:]+):/.exec(paragraph)?.[1] ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1] as string)
  t.ok(named.includes('validUntil'))
  t.same(members, expected(named), 'docs/reuse.md names exactly the members the answer has')
  t.match(paragraph, /no\s+attestation/, 'and says there is no attestation')

  const mode = contract.components.schemas.ReuseQuery?.properties.mode?.description ?? ''
  const listed = (/\(([^)]*)\)/.exec(mode)?.[1] ?? '').split(/,\s*/)
  t.ok(listed.includes('validUntil'))
  t.same(members, expected(listed), 'the contract\'s description of mode names the same members')
  t.match(mode, /no attestation/)
  t.notOk(members.includes('attestation'))
  t.notOk(members.includes('data'))
  t.notOk(members.includes('download'))

  const receipt = String(res.headers['reuse-receipt'])
  const { payload } = await compactVerify(receipt, createLocalJWKSet(w.app.signingKeys.jwks()))
  t.equal(JSON.parse(Buffer.from(payload).toString('utf8')).response_sha256, createHash('sha256').update(res.rawPayload).digest('hex'), 'the receipt is signed over the status answer as sent')
})
