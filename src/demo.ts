import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
// the gateway's decorations (app.stores, app.audit, app.documents…) as the app declares them
import type {} from './app.js'
import { generateAgencyKeyPair } from './cli/agency-keys.js'
import type { AgencyPrivateKey } from './cli/agency-keys.js'
import type { Config } from './config.js'
import { registerAgency } from './services/agencies.js'
import type { AgencyRole } from './services/agencies.js'
import type { AgreementInput } from './services/agreements.js'
import { today } from './services/document-status.js'
import type { IssuerCall } from './services/documents.js'
import { generateDocuments } from './sample-data/generate.js'
import type { SampleDocument } from './sample-data/generate.js'
import { createStores } from './store/index.js'
import type { Stores } from './store/index.js'

/**
 * The demo: outside production, on a store with no agency yet (the embedded one at every start,
 * an empty Redis in development) and no admin configured, register a demo set of agencies whose
 * key pairs are kept in a git-ignored folder (reused on the next start, so the printed commands
 * keep working), sample results with files, and agreements for the two requesters; then print
 * who the demo citizens are and the commands for each role (`reuse-gateway demo` prints them
 * again).
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

const ADMIN = '000.00.00.A01'
const AUDITOR = '000.00.00.A02'
const PORTAL = '000.00.00.G22'
const WARD = '000.20.41.H41'
const PLANNING = '000.00.03.H41'

/** Marriage registration (Đăng ký kết hôn), the ward's procedure in the printed query. */
const MARRIAGE_REGISTRATION = '1.000894'

/**
 * The requesters' agreements: the ward reuses civil-status results, files included, to
 * register marriages; the Department of Planning reuses criminal-record extracts, which need the
 * citizen's consent, to register enterprises.
 */
export const DEMO_AGREEMENTS: Array<{ id: string } & AgreementInput> = [
  {
    id: 'demo-ward-civil-status',
    requester: WARD,
    documentTypes: ['giay-khai-sinh', 'xac-nhan-tinh-trang-hon-nhan', 'giay-chung-nhan-ket-hon'],
    procedureCodes: [MARRIAGE_REGISTRATION],
    fields: {
      'giay-khai-sinh': ['fullName', 'gender', 'dateOfBirth', 'placeOfBirth', 'nationality'],
      'xac-nhan-tinh-trang-hon-nhan': ['fullName', 'dateOfBirth', 'maritalStatus', 'confirmedPeriod', 'purpose'],
      'giay-chung-nhan-ket-hon': ['*']
    },
    fileDownload: true,
    validFrom: '2025-01-01',
    legalBasis: 'Demo agreement: Luật Hộ tịch 2014, Nghị định 45/2020/NĐ-CP'
  },
  {
    id: 'demo-planning-criminal-record',
    requester: PLANNING,
    documentTypes: ['phieu-ly-lich-tu-phap'],
    // Đăng ký thành lập doanh nghiệp
    procedureCodes: ['1.000956'],
    fields: { 'phieu-ly-lich-tu-phap': ['fullName', 'dateOfBirth', 'criminalRecord', 'banOnPositions'] },
    validFrom: '2025-01-01',
    legalBasis: 'Demo agreement: Luật Doanh nghiệp 2020, Art. 17 (persons barred from managing enterprises)'
  }
]

/** The sample results, the same at every start and in `reuse-gateway demo`. */
function sampleDocuments (): SampleDocument[] {
  const types = DEMO_AGENCIES.flatMap(({ issuableTypes }) => issuableTypes ?? [])
  return [...generateDocuments(40, { seed: 2026, types })]
}

export interface DemoCitizen {
  id: string
  /** results valid today, by type */
  valid: SampleDocument[]
  expired: SampleDocument[]
}

/** A few citizens holding a birth certificate (valid for good) and something else valid. */
export function demoCitizens (day = today()): DemoCitizen[] {
  const bySubject = new Map<string, SampleDocument[]>()
  for (const document of sampleDocuments()) {
    if (document.subject.kind === 'citizen') bySubject.set(document.subject.id, [...bySubject.get(document.subject.id) ?? [], document])
  }
  const citizens = [...bySubject].map(([id, documents]) => ({
    id,
    valid: documents.filter((d) => d.validUntil === undefined || d.validUntil >= day),
    expired: documents.filter((d) => d.validUntil !== undefined && d.validUntil < day)
  }))
  return citizens.filter((c) => c.valid.some((d) => d.type === 'giay-khai-sinh') && c.valid.length >= 2).slice(0, 3)
}

/** The demo is for a first look: never in production, never alongside a configured admin. */
export function demoAllowed (config: Config): boolean {
  return config.admin === undefined && (config.redis.mode === 'memory' || config.nodeEnv === 'development')
}

/** where a demo start writes the audit log (unless AUDIT_LOG_FILE says otherwise) */
export function demoAuditLogFile (config: Config): string {
  return join(config.demoDir, 'audit.log')
}

/**
 * `empty`: no agency registered; `demo`: the demo's, registered at an earlier start with the
 * keys in the demo folder; `other`: agencies the demo did not register.
 */
export type DemoStoreState = 'empty' | 'demo' | 'other'

export async function demoStoreState (store: Stores, dir: string): Promise<DemoStoreState> {
  const agencies = await store.agencies.listAgencies()
  if (agencies.length === 0) return 'empty'
  const admin = agencies.find((agency) => agency.code === ADMIN)
  const kid = await readKey(resolve(dir), ADMIN).then((key) => key?.kid)
  const registered = new Set(agencies.map((agency) => agency.code))
  const demo = kid !== undefined && admin?.jwks?.keys.some((key) => key.kid === kid) === true &&
    DEMO_AGENCIES.every((agency) => registered.has(agency.code))
  return demo ? 'demo' : 'other'
}

/**
 * The store's state before the gateway is built, on a connection of its own (the audit log's
 * destination depends on it); undefined when the store does not answer.
 */
export async function peekDemoStoreState (config: Config): Promise<DemoStoreState | undefined> {
  if (config.redis.mode === 'memory') return 'empty'
  const store = await createStores(config)
  try {
    return await demoStoreState(store, config.demoDir)
  } catch {
    return undefined
  } finally {
    await store.close().catch(() => {})
  }
}

function keyPath (dir: string, code: string): string {
  return join(dir, `${code}.private.jwk.json`)
}

async function readKey (dir: string, code: string): Promise<AgencyPrivateKey | undefined> {
  try {
    return JSON.parse(await readFile(keyPath(dir, code), 'utf8')) as AgencyPrivateKey
  } catch {
    return undefined
  }
}

/** The agency's key pair from the folder, or a new one written there. */
async function keyFor (dir: string, code: string): Promise<{ key: AgencyPrivateKey, generated: boolean }> {
  const kept = await readKey(dir, code)
  if (kept) return { key: kept, generated: false }
  const { privateKey, jwks } = await generateAgencyKeyPair('ES256', code)
  await writeFile(keyPath(dir, code), JSON.stringify(privateKey, null, 2) + '\n', { mode: 0o600 })
  await writeFile(join(dir, `${code}.jwks.json`), JSON.stringify(jwks, null, 2) + '\n')
  return { key: privateKey, generated: true }
}

/** A one-page PDF saying what it is: the demo's digitized file. */
export function demoPdf (lines: string[]): Buffer {
  const text = ['BT /F1 14 Tf 72 770 Td', ...lines.map((line, i) => `${i === 0 ? '' : '0 -22 Td '}(${line.replace(/[^ -~]/g, '?').replace(/[()\\]/g, '\\$&')}) Tj`), 'ET'].join('\n')
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Length ${text.length} >>\nstream\n${text}\nendstream`
  ]
  let pdf = '%PDF-1.4\n'
  const offsets: number[] = []
  objects.forEach((object, i) => {
    offsets.push(pdf.length)
    pdf += `${i + 1} 0 obj\n${object}\nendobj\n`
  })
  const xref = pdf.length
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('')}`
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return Buffer.from(pdf, 'latin1')
}

/**
 * Sample results, each indexed by the demo issuer competent for its type: civil status and
 * criminal records by Justice, land by Natural Resources. Like any indexing, each is announced
 * to the portal through the outbox by the audit event that records it. The demo citizens'
 * results get a file, stored and audited as PUT /v1/documents/{id}/file stores one.
 */
async function indexSampleDocuments (app: FastifyInstance): Promise<{ indexed: number, files: number }> {
  const issuers = DEMO_AGENCIES.flatMap(({ code, issuableTypes }) => issuableTypes ? [{ code, issuableTypes }] : [])
  const withFiles = new Set(demoCitizens().map((citizen) => citizen.id))
  let indexed = 0
  let files = 0
  for (const document of sampleDocuments()) {
    const issuer = issuers.find((candidate) => candidate.issuableTypes.includes(document.type)) as typeof issuers[number]
    // on record as the demo's, under the issuer's name
    const call: IssuerCall = {
      caller: issuer,
      audit: async (event, options) => await app.audit.record({ actor: issuer.code, ...event, detail: { ...event.detail, demo: true } }, options),
      log: app.log
    }
    const result = await app.documents.index(call, document)
    if (result.outcome === 'created') indexed++
    if (result.outcome === 'conflict' || !withFiles.has(document.subject.id) || result.document.file) continue
    const { id } = result.document
    const bytes = demoPdf([`DEMO - not a real document: ${document.type}`, `Number ${document.documentNumber}, issued ${document.issuedAt}`, `by ${issuer.code}, indexed at the reuse gateway as ${id}`])
    await app.documents.attachFile(call, id, { bytes: Readable.from([bytes]), mediaType: 'application/pdf', version: 1 })
    files++
  }
  return { indexed, files }
}

/** The requesters' agreements, checked, audited and stored as PUT /v1/agreements/{id} does. */
async function putAgreements (app: FastifyInstance): Promise<void> {
  for (const { id, ...body } of DEMO_AGREEMENTS) {
    await app.agreements.put({ audit: async (event) => await app.audit.record({ actor: null, ...event, detail: { ...event.detail, origin: 'demo' } }) }, id, body)
  }
}

/**
 * Waits (bounded) until the outbox has published what the demo announced and those log lines
 * are written, so that the banner comes after them instead of scrolling away under them.
 */
async function announcementsLogged (app: FastifyInstance): Promise<void> {
  if (!app.config.outbox.worker) return
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && (await app.stores.outbox.dueOutboxSources(Date.now(), 1)).length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const log = app.log as typeof app.log & { flush?: (callback: () => void) => void }
  await new Promise<void>((resolve) => { log.flush ? log.flush(() => resolve()) : resolve() })
}

/** A path or URL as bash reads it back: quoted when it holds anything but safe characters. */
function sh (value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, '\'\\\'\'')}'`
}

/**
 * The demo citizens and, for each role, commands to paste into bash in the gateway's folder:
 * what the start banner ends with and `reuse-gateway demo` prints.
 */
export function demoGuide (options: { dir: string, gateway: string, auditLog?: string | undefined }): string {
  const base = options.gateway.replace(/\/+$/, '')
  const url = (path: string): string => sh(`${base}${path}`)
  const token = (variable: string, code: string): string => `    ${variable}=$(npx reuse-gateway token --key ${sh(keyPath(options.dir, code))} --gateway ${sh(base)})`
  // an answer shown ends with a new line, so that the prompt after it starts on its own
  const show = (variable: string): string => `    curl -s -w '\\n' -H "Authorization: Bearer $${variable}"`
  const json = (body: unknown): string => `-H 'Content-Type: application/json' -d '${JSON.stringify(body)}'`
  const citizens = demoCitizens()
  const citizen = citizens[0] as DemoCitizen
  const subject = { kind: 'citizen', id: citizen.id }
  const query = json({ subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: MARRIAGE_REGISTRATION, dossierCode: `${WARD}-251201-0001` }, reason: 'Demo: marriage registration' })
  const file = sh(join(options.dir, 'giay-khai-sinh.pdf'))
  const types = (documents: SampleDocument[]): string => [...new Set(documents.map((d) => d.type))].join(', ')
  return [
    '  Demo citizens (personal identification numbers) and the results they hold:',
    ...citizens.map((c) => `    ${c.id}  ${types(c.valid)}${c.expired.length ? `; expired: ${types(c.expired)}` : ''}`),
    `  Agreements: ${WARD} (ward) reuses civil-status results with their files for marriage registration (${MARRIAGE_REGISTRATION});`,
    `  ${PLANNING} (Planning) criminal-record extracts, with the citizen's consent token (docs/consent-token.md).`,
    ...(options.auditLog ? [`  The audit log is written to ${options.auditLog} (tail -f ${sh(options.auditLog)}).`] : []),
    '',
    '  Paste into bash, in this folder (tokens last 5 minutes: run a token line again to renew):',
    '',
    '    # admin: the registered agencies',
    token('ADMIN', ADMIN),
    `${show('ADMIN')} ${url('/v1/agencies')}`,
    `    # requester (the ward): does citizen ${citizen.id} hold a birth certificate? ("found": true)`,
    token('REQUESTER', WARD),
    `${show('REQUESTER')} ${query} ${url('/v1/reuse-queries')}`,
    '    # requester: download the file the answer links (a link works once: this asks again and follows it)',
    `    LINK=$(curl -s -H "Authorization: Bearer $REQUESTER" ${query} ${url('/v1/reuse-queries')} | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).results[0].documents[0].download')`,
    `    curl -sf -H "Authorization: Bearer $REQUESTER" -o ${file} ${sh(base)}"$LINK" && echo "saved ${file}"`,
    '    # national portal: who used the citizen\'s papers',
    token('PORTAL', PORTAL),
    `${show('PORTAL')} ${json({ subject })} ${url('/v1/portal/access-history')}`,
    '    # auditor: the audit trail about the citizen, and the reuse statistics',
    token('AUDITOR', AUDITOR),
    `${show('AUDITOR')} ${json({ subject, limit: 10 })} ${url('/v1/audit/search')}`,
    `${show('AUDITOR')} ${url('/v1/stats/reuse')}`,
    '',
    `  Print this again: npx reuse-gateway demo --gateway ${sh(base)}${resolve(options.dir) === resolve('.demo') ? '' : ` --dir ${sh(options.dir)}`}`,
    `  API reference: ${base}/docs`
  ].join('\n')
}

/** What a start on a store with agencies the demo did not register says instead of a demo. */
export function otherAgenciesNotice (dir: string): string {
  return [
    '',
    `  No demo: this store already holds agencies, and not the demo's of ${dir}/. Use the key of an admin agency`,
    '  registered on it, or configure one: ADMIN_AGENCY_CODE and ADMIN_AGENCY_JWKS (README, "Agencies and keys").',
    ''
  ].join('\n')
}

/** What a start with no agency and no admin configured says where no demo is set up (production). */
export const NO_AGENCY_NOTICE = [
  '',
  '  No agency is registered on this store and no admin is configured, so no call can be authorized:',
  '  set ADMIN_AGENCY_CODE and ADMIN_AGENCY_JWKS (README, "Agencies and keys") and restart.',
  ''
].join('\n')

/**
 * Sets the demo up on a store with no agency (`empty`), or finds it set up at an earlier start
 * (`demo`: nothing is written), and returns the banner saying which.
 */
export async function setUpDemo (app: FastifyInstance, base: string, state: 'empty' | 'demo'): Promise<string> {
  const rel = app.config.demoDir
  const dir = resolve(rel)
  const storeName = app.stores.kind === 'memory' ? 'the in-memory store' : 'this Redis store'
  const auditLog = app.config.auditLogFile !== undefined && resolve(app.config.auditLogFile) === resolve(demoAuditLogFile(app.config)) ? app.config.auditLogFile : undefined
  const header: string[] = []
  if (state === 'demo') {
    header.push(`  Demo: the demo agencies are already on ${storeName}, registered at an earlier start; nothing was registered.`)
    header.push(`  Their private keys are in ${rel}/ (git-ignored).`)
  } else {
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, '.gitignore'), '*\n')
    let generated = 0
    for (const agency of DEMO_AGENCIES) {
      const { key, generated: isNew } = await keyFor(dir, agency.code)
      if (isNew) generated++
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, agency: _agency, ...publicKey } = key
      await registerAgency(app, agency.code, { name: agency.name, roles: agency.roles, ...(agency.issuableTypes ? { issuableTypes: agency.issuableTypes } : {}), jwks: { keys: [{ ...publicKey, use: 'sig' }] } }, 'demo')
    }
    await putAgreements(app)
    const { indexed, files } = await indexSampleDocuments(app)
    await announcementsLogged(app)
    const kept = DEMO_AGENCIES.length - generated
    const how = generated === DEMO_AGENCIES.length
      ? `registered, with new key pairs written to ${rel}/ (git-ignored)`
      : kept === DEMO_AGENCIES.length
        ? `re-registered from the keys in ${rel}/ (git-ignored)`
        : `registered: ${kept} from the keys in ${rel}/, ${generated} with new key pairs written there (git-ignored)`
    header.push(`  Demo: ${storeName} had no agency${app.stores.kind === 'memory' ? ' (it starts empty at every start)' : ''}; ${DEMO_AGENCIES.length} demo agencies ${how}:`)
    header.push(...DEMO_AGENCIES.map((agency) => `    ${agency.code}  ${agency.roles.join(',').padEnd(9)}  ${agency.name}`))
    header.push(`  ${indexed} sample results indexed by the two issuers (scripts/sample-data.ts), ${files} with a file; ${DEMO_AGREEMENTS.length} agreements: ${DEMO_AGREEMENTS.map((a) => a.id).join(', ')}.`)
  }
  return ['', ...header, demoGuide({ dir: rel, gateway: base, auditLog }), ''].join('\n')
}

/** the demo folder holds the keys the printed commands use */
export function demoKeysPresent (dir: string): boolean {
  return [ADMIN, AUDITOR, PORTAL, WARD].every((code) => existsSync(keyPath(dir, code)))
}
