import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import openapiTS, { astToString } from 'openapi-typescript'
import { build } from './helper.js'
import { ADMIN_CODE, adminEnv, makeAgency } from './lib/agencies.js'

/**
 * What an agency builds from the published contract alone: TypeScript types generated from the
 * committed openapi.yaml with openapi-typescript, an openapi-fetch client on them, and the whole
 * flow — tokens, registration, agreement, indexing, file upload, reuse query, download, the
 * portal's access history, an audit search — type-checked with tsc and run against a gateway
 * listening on loopback. The program knows nothing of the gateway's code.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url))
// git-ignored, and left out of the project's own type check (a dot folder)
const dir = join(ROOT, 'test', '.generated', `client-${process.pid}`)
mkdirSync(dir, { recursive: true })
t.teardown(() => { if (t.passing()) rmSync(dir, { recursive: true, force: true }) })

const PDF = Buffer.from('%PDF-1.7\n% giấy khai sinh bản điện tử\n%%EOF\n')

/** The integrator's program. No backtick or dollar-brace in it: it lives in a template literal. */
const FLOW = String.raw`
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import createClient from 'openapi-fetch'
import { importJWK, SignJWT } from 'jose'
import type { JWK } from 'jose'
import type { components, paths } from './schema.js'

interface AgencyKeys { code: string, privateKey: JWK & { kid: string, alg: string }, jwks: NonNullable<components['schemas']['AgencyPut']['jwks']> }
type Role = 'admin' | 'issuer' | 'requester' | 'portal' | 'auditor'
const keys = JSON.parse(readFileSync(process.env.FLOW_KEYS as string, 'utf8')) as Record<Role, AgencyKeys>
const pdf = readFileSync(process.env.FLOW_FILE as string)
const baseUrl = process.env.GATEWAY_URL as string
const anonymous = createClient<paths>({ baseUrl })

const metadata = await anonymous.GET('/.well-known/oauth-authorization-server')
assert.equal(metadata.response.status, 200)
const issuer = metadata.data?.issuer
assert.ok(issuer, 'the metadata names the issuer')

/** client credentials with private_key_jwt (RFC 7523), through the typed client */
async function clientFor (role: Role) {
  const agency = keys[role]
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: agency.privateKey.alg, kid: agency.privateKey.kid, typ: 'JWT' })
    .setIssuer(agency.code).setSubject(agency.code).setAudience(issuer as string)
    .setIssuedAt().setExpirationTime('60s').setJti(randomUUID())
    .sign(await importJWK(agency.privateKey, agency.privateKey.alg))
  const form: components['schemas']['TokenRequest'] = {
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion
  }
  const token = await anonymous.POST('/v1/oauth/token', {
    body: form,
    bodySerializer: (body) => new URLSearchParams(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string')).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  assert.equal(token.response.status, 200, JSON.stringify(token.error))
  assert.ok(token.data)
  return createClient<paths>({ baseUrl, headers: { authorization: 'Bearer ' + token.data.access_token } })
}

const admin = await clientFor('admin')
const registered: Record<string, number> = {}
const roles: Record<Exclude<Role, 'admin'>, components['schemas']['AgencyPut']> = {
  issuer: { name: 'Sở Tư pháp', roles: ['issuer'], issuableTypes: ['giay-khai-sinh'], jwks: keys.issuer.jwks },
  requester: { name: 'UBND phường Quang Trung', roles: ['requester'], jwks: keys.requester.jwks },
  portal: { name: 'Cổng Dịch vụ công quốc gia', roles: ['portal'], jwks: keys.portal.jwks },
  auditor: { name: 'Thanh tra tỉnh', roles: ['auditor'], jwks: keys.auditor.jwks }
}
for (const [role, body] of Object.entries(roles) as Array<[Exclude<Role, 'admin'>, components['schemas']['AgencyPut']]>) {
  const res = await admin.PUT('/v1/agencies/{code}', { params: { path: { code: keys[role].code } }, body })
  assert.ok(res.data, JSON.stringify(res.error))
  registered[role] = res.response.status
}

const PROCEDURE = '1.001193'
const DOSSIER = '000.20.41.H41-260301-0001'
const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
const agreement = await admin.PUT('/v1/agreements/{id}', {
  params: { path: { id: 'ward-quang-trung-birth' } },
  body: {
    requester: keys.requester.code,
    documentTypes: ['giay-khai-sinh'],
    procedureCodes: [PROCEDURE],
    fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth'] },
    fileDownload: true,
    validFrom: yesterday
  }
})
assert.ok(agreement.data, JSON.stringify(agreement.error))

const issuerClient = await clientFor('issuer')
const citizen: components['schemas']['Subject'] = { kind: 'citizen', id: '022167046944' }
const indexed = await issuerClient.POST('/v1/documents', {
  body: {
    type: 'giay-khai-sinh',
    subject: citizen,
    documentNumber: '4/1968/TP-KS',
    procedureCode: PROCEDURE,
    dossierCode: '000.00.17.H14-680131-1235',
    issuedAt: '1968-02-01',
    data: {
      fullName: 'Nguyễn Thị Trang',
      gender: 'Nữ',
      dateOfBirth: '1967-12-25',
      placeOfBirth: 'phường Cẩm Trung, thành phố Cẩm Phả, tỉnh Quảng Ninh',
      ethnicity: 'Kinh',
      nationality: 'Việt Nam',
      hometown: 'phường Hồng Gai, thành phố Hạ Long, tỉnh Quảng Ninh',
      father: { fullName: 'Nguyễn Quang Phúc', yearOfBirth: 1929, ethnicity: 'Kinh', nationality: 'Việt Nam', residence: 'phường Quang Trung, thành phố Uông Bí, tỉnh Quảng Ninh' },
      mother: { fullName: 'Lê Ngọc Hương', yearOfBirth: 1930, ethnicity: 'Kinh', nationality: 'Việt Nam', residence: 'phường Quang Trung, thành phố Uông Bí, tỉnh Quảng Ninh' },
      registrationPlace: 'Ủy ban nhân dân phường Quang Trung, thành phố Uông Bí, tỉnh Quảng Ninh',
      registrationDate: '1968-02-01',
      registrationBookNumber: '02/1968'
    }
  }
})
assert.ok(indexed.data, JSON.stringify(indexed.error))
const documentId = indexed.data.id

// The upload's body as the contract declares it. While openapi.yaml declares no requestBody for
// this operation, FileBody is never and the bytes need this cast to be sent at all; once it
// declares one, FileBody is its type and the same line type-checks without change.
type FileUpload = paths['/v1/documents/{id}/file']['put']
type FileBody = FileUpload extends { requestBody?: { content: infer C } } ? C[keyof C] : never
const uploaded = await issuerClient.PUT('/v1/documents/{id}/file', {
  params: { path: { id: documentId } },
  body: pdf as unknown as FileBody,
  bodySerializer: () => pdf,
  headers: { 'content-type': 'application/pdf', 'repr-digest': 'sha-256=:' + createHash('sha256').update(pdf).digest('base64') + ':' }
})
assert.ok(uploaded.data, JSON.stringify(uploaded.error))

const requester = await clientFor('requester')
const query = await requester.POST('/v1/reuse-queries', {
  body: { subject: citizen, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER }, reason: 'đăng ký thường trú' }
})
assert.ok(query.data, JSON.stringify(query.error))
const result = query.data.results[0]
const released = result?.documents[0]
assert.ok(released, 'a birth certificate is released')
const link = released.download
assert.ok(link, 'with a download link')

const download = await requester.GET('/v1/files/{token}', { params: { path: { token: link.split('/').pop() as string } }, parseAs: 'arrayBuffer' })
assert.equal(download.response.status, 200, JSON.stringify(download.error))
const file = Buffer.from(download.data as unknown as ArrayBuffer)

const portal = await clientFor('portal')
const history = await portal.POST('/v1/portal/access-history', { body: { subject: citizen } })
assert.ok(history.data, JSON.stringify(history.error))

const auditor = await clientFor('auditor')
const audit = await auditor.POST('/v1/audit/search', { body: { action: 'reuse.queried', agency: keys.requester.code } })
assert.ok(audit.data, JSON.stringify(audit.error))

console.log(JSON.stringify({
  registered,
  agreement: agreement.response.status,
  indexed: indexed.response.status,
  uploaded: uploaded.response.status,
  documentId,
  query: {
    status: query.response.status,
    receipt: query.response.headers.get('reuse-receipt') !== null,
    found: result?.found,
    fields: Object.keys(released.data ?? {}).sort(),
    fileSha256: released.file?.sha256,
    attestation: typeof released.attestation === 'string'
  },
  download: { status: download.response.status, type: download.response.headers.get('content-type'), sha256: createHash('sha256').update(file).digest('hex') },
  history: history.data.items.map((item) => ({ agency: item.agency.code, dossierCode: item.dossierCode, documents: item.documents.map((d) => d.id) })),
  audit: audit.data.events.map((event) => ({ action: event.action, outcome: event.outcome, actor: event.actor }))
}))
`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2023'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    types: ['node'],
    noEmit: true
  },
  files: ['flow.ts', 'schema.d.ts']
}

interface Run { code: number | null, stdout: string, stderr: string }

/** a child process, killed if it outlives `ms` */
async function run (command: string, args: string[], env: Record<string, string> = {}, ms = 120_000): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

t.test('types generated from openapi.yaml drive the whole flow', async (t) => {
  // defaults do not make a property required: request bodies share components/schemas with
  // responses, and openapi-typescript's default would make ReuseQuery.mode, AuditSearch.limit… required
  const ast = await openapiTS(new URL('../openapi.yaml', import.meta.url), { defaultNonNullable: false })
  writeFileSync(join(dir, 'schema.d.ts'), astToString(ast))
  writeFileSync(join(dir, 'flow.ts'), FLOW)
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))

  const typecheck = await run(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')])
  t.equal(typecheck.code, 0, `the program type-checks against the generated types:\n${typecheck.stdout}${typecheck.stderr}`)

  const agencies = {
    admin: await makeAgency(ADMIN_CODE),
    issuer: await makeAgency('000.00.12.H41'),
    requester: await makeAgency('000.20.41.H41', 'EdDSA'),
    portal: await makeAgency('000.00.00.G22'),
    auditor: await makeAgency('000.00.00.K01', 'RS256')
  }
  writeFileSync(join(dir, 'keys.json'), JSON.stringify(agencies))
  writeFileSync(join(dir, 'file.pdf'), PDF)
  const app = await build(t, { env: { ...adminEnv(agencies.admin), OUTBOX_WORKER: 'false', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on a port')

  const flow = await run(process.execPath, ['--import', 'tsx', join(dir, 'flow.ts')], {
    GATEWAY_URL: `http://127.0.0.1:${address.port}`,
    FLOW_KEYS: join(dir, 'keys.json'),
    FLOW_FILE: join(dir, 'file.pdf')
  })
  t.equal(flow.code, 0, `the flow runs to its end:\n${flow.stderr}`)
  const outcome = JSON.parse(flow.stdout.trim().split('\n').pop() ?? '{}')
  const pdfSha256 = createHash('sha256').update(PDF).digest('hex')
  t.same(outcome.registered, { issuer: 201, requester: 201, portal: 201, auditor: 201 }, 'the admin registers the four agencies')
  t.equal(outcome.agreement, 201, 'and records the agreement')
  t.equal(outcome.indexed, 201, 'the issuer indexes the birth certificate')
  t.equal(outcome.uploaded, 200, 'and uploads its file')
  t.same(outcome.query, { status: 200, receipt: true, found: true, fields: ['dateOfBirth', 'fullName'], fileSha256: pdfSha256, attestation: true },
    'the requester gets the granted fields only, the file\'s digest, an attestation and a receipt')
  t.same(outcome.download, { status: 200, type: 'application/pdf', sha256: pdfSha256 }, 'and downloads the very file')
  t.same(outcome.history, [{ agency: '000.20.41.H41', dossierCode: '000.20.41.H41-260301-0001', documents: [outcome.documentId] }], 'the portal sees who used it, for which dossier')
  t.match(outcome.audit, [{ action: 'reuse.queried', outcome: 'granted', actor: '000.20.41.H41' }], 'the auditor finds the query')
})
