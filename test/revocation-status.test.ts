import t from 'tap'
import { bearer, buildWorld, reuseQuery } from './lib/world.js'

/**
 * A relying party that kept an attestation of version 1 checks for `revoked`: once the document
 * is revoked, an earlier amendment must not hide it behind `superseded`.
 */
t.test('a document amended and then revoked: every version reports revoked, wherever it is read', async (t) => {
  const w = await buildWorld(t)
  const { app } = w
  const id = w.docs.birth

  const released = await app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  t.equal(released.statusCode, 200)
  const attestation = (released.json().results[0].documents as Array<{ id: string, attestation: string }>).find((d) => d.id === id)?.attestation
  t.type(attestation, 'string', 'an attestation of version 1')

  const amended = await app.inject({
    method: 'POST', url: `/v1/documents/${id}/amend`, headers: bearer(w.tokens.issuer),
    payload: { procedureCode: w.samples.birth.procedureCode, dossierCode: '000.00.12.H41-260301-0009', data: w.samples.birth.data, reason: 'Cải chính hộ tịch' }
  })
  t.equal(amended.statusCode, 201)
  const verify = async (): Promise<Record<string, unknown>> =>
    (await app.inject({ method: 'POST', url: '/v1/attestations/verify', headers: bearer(w.tokens.otherRequester), payload: { attestation } })).json()
  t.equal((await verify()).statusNow, 'superseded', 'amended only: version 1 is superseded')

  const revoked = await app.inject({ method: 'POST', url: `/v1/documents/${id}/revoke`, headers: bearer(w.tokens.issuer), payload: { reason: 'Cấp sai thẩm quyền' } })
  t.equal(revoked.statusCode, 200)
  const revokedAt = revoked.json().revokedAt as string

  const checked = await verify()
  t.equal(checked.valid, true)
  t.equal(checked.statusNow, 'revoked', 'revocation wins over the amendment')
  t.equal(checked.revokedAt, revokedAt)
  t.equal(checked.latestVersion, 2)

  for (const version of [1, 2]) {
    const read = (await app.inject({ method: 'GET', url: `/v1/documents/${id}?version=${version}`, headers: bearer(w.tokens.issuer) })).json()
    t.match(read, { version, latestVersion: 2, status: 'revoked', revokedAt, revocationReason: 'Cấp sai thẩm quyền' }, `the issuer reads version ${version} as revoked`)
  }
  const portal = (await app.inject({ method: 'POST', url: '/v1/portal/citizen-documents', headers: bearer(w.tokens.portal), payload: { subject: { kind: 'citizen', id: w.citizen }, documentTypes: ['giay-khai-sinh'] } })).json()
  t.match((portal.documents as Array<{ id: string }>).find((d) => d.id === id), { version: 2, status: 'revoked', revokedAt }, 'the citizen sees it revoked too')
})
