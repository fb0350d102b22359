import { createHash } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { compactVerify, createLocalJWKSet } from 'jose'
import { CODES, bearer, buildWorld, reuseQuery } from './lib/world.js'
import type { World } from './lib/world.js'

/**
 * "Every answer carries Reuse-Receipt": a requester that was refused proves it, and why, the
 * way it proves an answer with results — the request bytes it sent, the problem bytes it got,
 * signed by the gateway.
 */
const sha256 = (bytes: string | Buffer): string => createHash('sha256').update(bytes).digest('hex')

async function receiptOf (t: Test, w: World, res: LightMyRequestResponse, sent: string): Promise<Record<string, unknown>> {
  const header = res.headers['reuse-receipt']
  t.type(header, 'string', `a ${res.statusCode} carries Reuse-Receipt`)
  const jwks = createLocalJWKSet((await w.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
  const { payload, protectedHeader } = await compactVerify(String(header), jwks)
  t.equal(protectedHeader.typ, 'reuse-receipt+jwt')
  const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>
  t.equal(claims.response_sha256, sha256(res.rawPayload), 'over the problem body exactly as sent')
  t.equal(claims.request_sha256, sha256(sent), 'and the request body exactly as sent')
  t.equal(claims.aud, CODES.requester)
  t.equal(claims.iss, w.app.config.gatewayIssuer)
  return claims
}

t.test('a refused reuse query carries a receipt over its problem body', async (t) => {
  const w = await buildWorld(t)
  const ask = async (body: Record<string, unknown>, token = w.tokens.requester): Promise<{ res: LightMyRequestResponse, sent: string }> => {
    // sent as text with a space the server would not write: the hash is of these bytes
    const sent = JSON.stringify(body, null, 1)
    const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: sent })
    return { res, sent }
  }

  const noAgreement = await ask(reuseQuery(w, ['giay-chung-nhan-ket-hon']))
  t.equal(noAgreement.res.statusCode, 403)
  t.equal(noAgreement.res.json().code, 'no_agreement')
  const claims = await receiptOf(t, w, noAgreement.res, noAgreement.sent)
  const denied = (await w.app.audit.search({ action: 'reuse.queried', limit: 10 })).events.find((e) => e.outcome === 'denied')
  t.equal(claims.jti, denied?.id, 'its jti is the audit event of the refusal, as a granted query\'s is its queryId')

  const noConsent = await ask(reuseQuery(w, ['phieu-ly-lich-tu-phap']))
  t.equal(noConsent.res.json().code, 'consent_required')
  await receiptOf(t, w, noConsent.res, noConsent.sent)

  const invalid = await ask({ ...reuseQuery(w), documentTypes: [] })
  t.equal(invalid.res.statusCode, 400)
  t.equal(invalid.res.json().code, 'validation_failed')
  const unaudited = await receiptOf(t, w, invalid.res, invalid.sent)
  t.type(unaudited.jti, 'string', 'a refusal before any audit has an id of its own')
  t.not(unaudited.jti, claims.jti)

  const granted = await ask(reuseQuery(w))
  t.equal(granted.res.statusCode, 200)
  t.equal((await receiptOf(t, w, granted.res, granted.sent)).jti, granted.res.json().queryId, 'results as before')

  const anonymous = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', payload: reuseQuery(w) })
  t.equal(anonymous.statusCode, 401)
  t.notOk(anonymous.headers['reuse-receipt'], 'nothing is signed for a caller the gateway does not know')
})
