import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { generateAgencyKeyPair } from './cli/agency-keys.js'
import type { AgencyPrivateKey } from './cli/agency-keys.js'
import type { AgencyRole } from './services/agencies.js'
import { generateDocuments } from './sample-data/generate.js'

/**
 * First run: on the embedded store with no admin configured, register a demo set of agencies
 * whose key pairs are kept in a git-ignored folder (reused on the next start, so the printed
 * commands keep working), and print how to get a token and make a first call.
 */
export const DEMO_AGENCIES: Array<{ code: string, name: string, roles: AgencyRole[], issuableTypes?: string[] }> = [
  { code: '000.00.00.A01', name: 'Trung tâm dữ liệu tỉnh (gateway operator)', roles: ['admin'] },
  { code: '000.00.00.A02', name: 'Thanh tra tỉnh (provincial inspectorate)', roles: ['auditor'] },
  { code: '000.00.00.G22', name: 'Cổng Dịch vụ công quốc gia (national public service portal)', roles: ['portal'] },
  { code: '000.00.12.H41', name: 'Sở Tư pháp tỉnh (Department of Justice)', roles: ['issuer'], issuableTypes: ['giay-khai-sinh', 'xac-nhan-tinh-trang-hon-nhan', 'giay-chung-nhan-ket-hon', 'trich-luc-khai-tu', 'phieu-ly-lich-tu-phap'] },
  { code: '000.00.15.H41', name: 'Sở Tài nguyên và Môi trường tỉnh (Department of Natural Resources and Environment)', roles: ['issuer'], issuableTypes: ['giay-chung-nhan-quyen-su-dung-dat'] },
  { code: '000.20.41.H41', name: 'UBND phường Quang Trung (ward People\'s Committee)', roles: ['requester'] },
  { code: '000.00.03.H41', name: 'Sở Kế hoạch và Đầu tư tỉnh (Department of Planning and Investment)', roles: ['requester'] }
]

async function keyFor (dir: string, code: string): Promise<AgencyPrivateKey> {
  const path = join(dir, `${code}.private.jwk.json`)
  try {
    return JSON.parse(await readFile(path, 'utf8')) as AgencyPrivateKey
  } catch {
    const { privateKey, jwks } = await generateAgencyKeyPair('ES256', code)
    await writeFile(path, JSON.stringify(privateKey, null, 2) + '\n', { mode: 0o600 })
    await writeFile(join(dir, `${code}.jwks.json`), JSON.stringify(jwks, null, 2) + '\n')
    return privateKey
  }
}

/**
 * Sample results, each indexed by the demo issuer competent for its type: civil status and
 * criminal records by Justice, land by Natural Resources. Like any indexing, each is announced
 * to the portal through the outbox by the audit event that records it.
 */
async function indexSampleDocuments (app: FastifyInstance): Promise<number> {
  const issuers = DEMO_AGENCIES.flatMap(({ code, issuableTypes }) => issuableTypes ? [{ code, issuableTypes }] : [])
  let indexed = 0
  for (const document of generateDocuments(40, { seed: 2026, types: issuers.flatMap((issuer) => issuer.issuableTypes) })) {
    const issuer = issuers.find((candidate) => candidate.issuableTypes.includes(document.type)) as typeof issuers[number]
    const prepared = await app.documents.prepareRegistration(issuer, document)
    const event = await app.audit.record({ actor: issuer.code, action: 'document.indexed', outcome: 'granted', subject: prepared.keys.subjectHash, documents: [{ id: prepared.first.id, version: 1 }], purpose: { procedureCode: document.procedureCode, dossierCode: document.dossierCode }, detail: { type: document.type, demo: true } }, { announce: true })
    if ((await app.documents.register(prepared)).outcome === 'created') indexed++
    // nothing new was written (the same sample twice): nothing to announce
    else await app.outbox.discard(event.id)
  }
  return indexed
}

export async function setUpDemo (app: FastifyInstance, base: string): Promise<string> {
  const dir = resolve(app.config.demoDir)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, '.gitignore'), '*\n')
  for (const agency of DEMO_AGENCIES) {
    const key = await keyFor(dir, agency.code)
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, agency: _agency, ...publicKey } = key
    await app.agencies.put(agency.code, { name: agency.name, roles: agency.roles, ...(agency.issuableTypes ? { issuableTypes: agency.issuableTypes } : {}), jwks: { keys: [{ ...publicKey, use: 'sig' }] } })
  }
  const indexed = await indexSampleDocuments(app)
  const admin = DEMO_AGENCIES[0]?.code as string
  const rel = app.config.demoDir
  return [
    '',
    `  First run: demo agencies registered, their private keys in ${rel}/ (git-ignored):`,
    ...DEMO_AGENCIES.map((agency) => `    ${agency.code}  ${agency.roles.join(',').padEnd(9)}  ${agency.name}`),
    `  ${indexed} sample results indexed by the two issuers (scripts/sample-data.ts).`,
    '',
    '  Get a token as the admin and make a first call:',
    `    TOKEN=$(npx reuse-gateway token --key ${rel}/${admin}.private.jwk.json --gateway ${base})`,
    `    curl -s -H "Authorization: Bearer $TOKEN" ${base}/v1/agencies`,
    '',
    `  API reference: ${base}/docs`,
    ''
  ].join('\n')
}
