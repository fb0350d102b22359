import { createHash, createHmac } from 'node:crypto'
import t from 'tap'
import { subjectHash } from '../src/services/identifiers.js'
import { MemoryStores } from '../src/store/index.js'
import { build } from './helper.js'
import { adminEnv, tokenFor } from './lib/agencies.js'
import { bearer, buildWorld, reuseQuery } from './lib/world.js'

/**
 * The keyed hash that stands for a person (SPEC §3: HMAC-SHA-256 under a secret pepper). Every
 * other suite computes its expected hashes with the code under test, so a hash that ignored the
 * pepper would pass them all: these check it against values computed outside the gateway, and
 * that the pepper the gateway is configured with is the key it uses.
 */
const PEPPER = 'known-value-pepper-for-the-subject-hash-test'
const OTHER_PEPPER = 'another-deployment-pepper-for-the-subject-hash-test'

/**
 * Computed once in a shell, over the input subjectHash hashes (`<kind>:<identifier>`, UTF-8,
 * no newline), with the pepper above as the HMAC key:
 *   printf '%s' 'citizen:079199000111' | openssl dgst -sha256 -hmac 'known-value-pepper-for-the-subject-hash-test'
 *   printf '%s' 'organization:0101234567-001' | openssl dgst -sha256 -hmac 'known-value-pepper-for-the-subject-hash-test'
 * and, for what a pepper-less hash would give:
 *   python3 -c "import hmac,hashlib; print(hmac.new(b'', b'citizen:079199000111', hashlib.sha256).hexdigest())"
 *   printf '%s' 'citizen:079199000111' | openssl dgst -sha256
 */
const KNOWN = {
  citizen: 'c8c7384963c8afdb62ce3591ceb03a492d0d699dabb8d5bcbd4db807df50dd01',
  organization: '9e7f1ce615b0cd7c0e9d940d21d62a626629d8b89b3115d3ace785ab852f3b02',
  citizenEmptyKey: 'e78b7f7e6e50f4cf2cce4b4f2a3043ec42639c5fef83d1b9f2de0c0b17520e55',
  citizenUnkeyed: 'fc0cdb5b495dc882030c1b56ec7775b6b8baa7f4863de8a1f31807cd38c13558'
}

t.test('the subject hash of a fixed identifier and pepper is the HMAC-SHA-256 computed by openssl', async (t) => {
  t.equal(subjectHash(PEPPER, { kind: 'citizen', id: '079199000111' }), KNOWN.citizen)
  t.equal(subjectHash(PEPPER, { kind: 'organization', id: '0101234567-001' }), KNOWN.organization)
})

t.test('the pepper keys the hash: another pepper, another hash; none is not a pepper', async (t) => {
  const citizen = { kind: 'citizen' as const, id: '079199000111' }
  const hash = subjectHash(PEPPER, citizen)
  t.not(subjectHash(OTHER_PEPPER, citizen), hash, 'two deployments do not share their hashes')
  t.not(hash, KNOWN.citizenEmptyKey, 'not the HMAC with an empty key')
  t.not(hash, KNOWN.citizenUnkeyed, 'not a plain SHA-256 anyone can recompute from an identifier')
})

t.test('the running gateway keys subjects with its configured pepper, and another pepper finds none of them', async (t) => {
  const store = new MemoryStores()
  const w = await buildWorld(t, { store, env: { SUBJECT_PEPPER: PEPPER } })
  const input = `citizen:${w.citizen}`
  const keyed = createHmac('sha256', PEPPER).update(input).digest('hex')

  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().results[0].found, true)
  const [event] = await store.audit.auditEvents([res.json().queryId])
  t.equal(event?.subject, keyed, 'the audit event carries the HMAC under SUBJECT_PEPPER')
  t.not(event?.subject, createHash('sha256').update(input).digest('hex'), 'not the unkeyed SHA-256')
  t.ok((await store.documents.documentsOfSubject(keyed)).some((d) => d.versions[0]?.id === w.docs.birth), 'results are stored under the keyed hash')
  t.equal((await store.reuseRecords.reusesOf(keyed, w.docs.birth)).length, 1, 'and so is the reuse')

  // a gateway with another pepper on the same store: the same citizen is another subject
  const other = await build(t, { store, env: { OUTBOX_WORKER: 'false', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', ...adminEnv(w.agencies.admin), SUBJECT_PEPPER: OTHER_PEPPER } })
  const there = await other.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(await tokenFor(other, w.agencies.requester)), payload: reuseQuery(w) })
  t.equal(there.statusCode, 200)
  t.same(there.json().results.map((r: { found: boolean, why?: string }) => [r.found, r.why]), [[false, 'none']], 'nothing found under its own pepper')
  const [otherEvent] = await store.audit.auditEvents([there.json().queryId])
  t.equal(otherEvent?.subject, createHmac('sha256', OTHER_PEPPER).update(input).digest('hex'))
})
