import t from 'tap'
import { RedisStores } from '../src/store/index.js'
import type { AgencyRecord, AgreementRecord } from '../src/store/index.js'
import { AgencyRegistry, AgreementRegistry } from '../src/services/registry-cache.js'
import { startTestRedis } from './lib/redis-server.js'

/**
 * Agencies and agreements are kept in each process between requests: a change made through
 * another process (its own connection, its own copy) holds from the next read on, and the
 * records a process keeps cannot be changed by whoever reads them.
 */
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

/** two processes' stores on one Redis, under one key prefix */
async function twoProcesses (prefix: string): Promise<[RedisStores, RedisStores]> {
  const open = async (): Promise<RedisStores> => {
    const stores = new RedisStores({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000, quitTimeoutMs: 500 })
    await stores.connect()
    t.teardown(async () => await stores.close())
    return stores
  }
  return [await open(), await open()]
}

const agency: AgencyRecord = { code: '000.20.41.H41', name: 'UBND phường Quang Trung', roles: ['requester'], jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'k1' }] }, status: 'active', createdAt: 'x', updatedAt: 'x' }
const agreement: AgreementRecord = { id: 'a1', requester: agency.code, documentTypes: ['giay-khai-sinh'], procedureCodes: ['1.001193'], fields: { 'giay-khai-sinh': ['fullName'] }, fileDownload: false, hiddenAllowed: false, validFrom: '2026-01-01', status: 'active', createdAt: 'x', updatedAt: 'x' }

t.test('an agency changed through another process is read as changed at the next request', async (t) => {
  const [a, b] = await twoProcesses('rc1:')
  const registry = new AgencyRegistry(b.agencies)
  t.equal(await registry.getAgency(agency.code), undefined, 'not registered yet')
  await a.agencies.putAgency(agency)
  t.equal((await registry.getAgency(agency.code))?.status, 'active', 'an unknown code is not kept: registered elsewhere, it is found')
  t.equal(await registry.getAgency(agency.code), await registry.getAgency(agency.code), 'kept between requests')
  await a.agencies.putAgency({ ...agency, status: 'suspended' })
  t.equal((await registry.getAgency(agency.code))?.status, 'suspended')
})

t.test('an agreement changed through another process is read as changed at the next query', async (t) => {
  const [a, b] = await twoProcesses('rc2:')
  const registry = new AgreementRegistry(b.agreements)
  t.same(await registry.listAgreements(), [])
  await a.agreements.putAgreement(agreement)
  t.same((await registry.listAgreements()).map((x) => x.status), ['active'])
  await a.agreements.putAgreement({ ...agreement, status: 'suspended' })
  await a.agreements.putAgreement({ ...agreement, id: 'a0' })
  t.same((await registry.listAgreements()).map((x) => `${x.id} ${x.status}`), ['a0 active', 'a1 suspended'])
})

t.test('the records kept cannot be changed by a reader', async (t) => {
  const [a] = await twoProcesses('rc3:')
  await a.agencies.putAgency(agency)
  await a.agreements.putAgreement(agreement)
  const agencies = new AgencyRegistry(a.agencies)
  const agreements = new AgreementRegistry(a.agreements)
  const read = await agencies.getAgency(agency.code) as AgencyRecord
  t.throws(() => { read.roles.push('admin') })
  t.throws(() => { (read.jwks?.keys[0] as Record<string, unknown>).kid = 'k2' })
  const list = await agreements.listAgreements()
  t.throws(() => { list[0]?.procedureCodes.push('x') })
  t.same((await agencies.getAgency(agency.code))?.roles, ['requester'])
  t.same(await a.agreements.getAgreement('a1'), agreement, 'the store is untouched')
})

t.test('a read that failed is not kept: the next one goes to the store again', async (t) => {
  let fail = true
  let reads = 0
  const registry = new AgencyRegistry({
    agenciesRevision: async () => 1,
    getAgency: async () => {
      reads++
      if (fail) throw new Error('store away')
      return agency
    }
  })
  await t.rejects(registry.getAgency(agency.code), /store away/)
  fail = false
  t.equal((await registry.getAgency(agency.code))?.code, agency.code)
  await registry.getAgency(agency.code)
  t.equal(reads, 2, 'read again after the failure, then kept')
})
