import { randomUUID } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { importJWK, SignJWT } from 'jose'
import { MemoryStores } from '../../src/store/index.js'
import type { Stores } from '../../src/store/index.js'
import { generateDocuments } from '../../src/sample-data/generate.js'
import type { SampleDocument } from '../../src/sample-data/generate.js'
import { build } from '../helper.js'
import type { LogCapture } from '../helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './agencies.js'
import type { TestAgency } from './agencies.js'

/**
 * A small province for authorization tests: an agency of every role, two issuers and two
 * requesters (so that "another agency's" always exists), an agreement for one requester, a
 * citizen with results from both issuers (one with its file), and a token for each agency.
 */
export const CODES = {
  admin: ADMIN_CODE,
  issuer: '000.00.12.H41',
  otherIssuer: '000.00.13.H41',
  requester: '000.20.41.H41',
  otherRequester: '000.00.03.H41',
  portal: '000.00.00.G22',
  auditor: '000.00.00.K01'
} as const

/** what each issuer is competent for: what it indexes below, nothing more */
export const ISSUABLE: Record<'issuer' | 'otherIssuer', string[]> = {
  issuer: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat'],
  otherIssuer: ['giay-khai-sinh']
}

export type WorldAgency = keyof typeof CODES
/** the callers of a role matrix: one agency per role, and nobody */
export const ROLE_CALLERS = ['anonymous', 'admin', 'issuer', 'requester', 'portal', 'auditor'] as const
export type RoleCaller = typeof ROLE_CALLERS[number]

export const PROCEDURE = '1.001193'
export const DOSSIER = '000.20.41.H41-260301-0001'
export const AGREEMENT_ID = 'ward-quang-trung-2026'
export const PDF = Buffer.from('%PDF-1.7 giấy khai sinh bản điện tử')
/** the requester's agreement (AGREEMENT_ID): birth, land-use and criminal-record results for PROCEDURE, some fields, files */
export const AGREEMENT = {
  requester: CODES.requester,
  documentTypes: ['giay-khai-sinh', 'giay-chung-nhan-quyen-su-dung-dat', 'phieu-ly-lich-tu-phap'],
  procedureCodes: [PROCEDURE],
  fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth'], 'giay-chung-nhan-quyen-su-dung-dat': ['parcelNumber'], 'phieu-ly-lich-tu-phap': ['*'] },
  fileDownload: true,
  validFrom: '2026-01-01'
}

const samples = [...generateDocuments(200, { seed: 11 })]

export interface World {
  app: FastifyInstance
  store: Stores
  agencies: Record<WorldAgency, TestAgency>
  tokens: Record<WorldAgency, string>
  /** the citizen every indexed result is about */
  citizen: string
  /** a citizen with one result of their own, from the issuer */
  otherCitizen: string
  /** the issuer's birth certificate of the citizen (with a PDF), its land-use certificate, and the other citizen's */
  docs: { birth: string, land: string, otherCitizenBirth: string, otherIssuers: string }
  samples: { birth: SampleDocument, land: SampleDocument, otherCitizenBirth: SampleDocument, otherIssuers: SampleDocument }
}

export interface WorldOptions {
  store?: Stores
  env?: Record<string, string>
  logs?: LogCapture
}

export function sample (type: string, pick: (d: SampleDocument) => boolean = () => true): SampleDocument {
  const found = samples.find((d) => d.type === type && pick(d))
  if (!found) throw new Error(`no sample ${type}`)
  return structuredClone(found)
}

export function bearer (token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` }
}

export async function buildWorld (t: Test, options: WorldOptions = {}): Promise<World> {
  const store = options.store ?? new MemoryStores()
  const agencies = {} as Record<WorldAgency, TestAgency>
  for (const [name, code] of Object.entries(CODES)) agencies[name as WorldAgency] = await makeAgency(code)
  // no outbox deliveries (nothing to deliver to) and no load shedding: a busy test machine's
  // event-loop delay is not what these tests are about
  const env = { OUTBOX_WORKER: 'false', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', ...adminEnv(agencies.admin), ...options.env }
  const app = await build(t, { store, env, ...(options.logs ? { logs: options.logs } : {}) })
  const tokens = { admin: await tokenFor(app, agencies.admin) } as Record<WorldAgency, string>
  const roles: Record<Exclude<WorldAgency, 'admin'>, Array<'issuer' | 'requester' | 'portal' | 'auditor'>> = {
    issuer: ['issuer'], otherIssuer: ['issuer'], requester: ['requester'], otherRequester: ['requester'], portal: ['portal'], auditor: ['auditor']
  }
  for (const [name, held] of Object.entries(roles)) {
    await register(app, tokens.admin, agencies[name as WorldAgency], held, name in ISSUABLE ? { issuableTypes: ISSUABLE[name as keyof typeof ISSUABLE] } : {})
    tokens[name as WorldAgency] = await tokenFor(app, agencies[name as WorldAgency])
  }

  const birth = sample('giay-khai-sinh')
  const citizen = birth.subject.id
  const land = sample('giay-chung-nhan-quyen-su-dung-dat', (d) => d.subject.kind === 'citizen')
  land.subject = birth.subject
  const otherCitizenBirth = sample('giay-khai-sinh', (d) => d.subject.id !== citizen)
  const otherIssuers = sample('giay-khai-sinh', (d) => d.subject.id !== citizen && d.subject.id !== otherCitizenBirth.subject.id)
  otherIssuers.subject = birth.subject
  const index = async (token: string, doc: SampleDocument): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/v1/documents', headers: bearer(token), payload: doc })
    if (res.statusCode !== 201) throw new Error(`indexing failed: ${res.body}`)
    return res.json().id as string
  }
  const docs = {
    birth: await index(tokens.issuer, birth),
    land: await index(tokens.issuer, land),
    otherCitizenBirth: await index(tokens.issuer, otherCitizenBirth),
    otherIssuers: await index(tokens.otherIssuer, otherIssuers)
  }
  const upload = await app.inject({ method: 'PUT', url: `/v1/documents/${docs.birth}/file`, headers: { ...bearer(tokens.issuer), 'content-type': 'application/pdf' }, payload: PDF })
  if (upload.statusCode !== 200) throw new Error(`upload failed: ${upload.body}`)
  const agreement = await app.inject({
    method: 'PUT',
    url: `/v1/agreements/${AGREEMENT_ID}`,
    headers: bearer(tokens.admin),
    payload: AGREEMENT
  })
  if (agreement.statusCode !== 201) throw new Error(`agreement failed: ${agreement.body}`)
  return { app, store, agencies, tokens, citizen, otherCitizen: otherCitizenBirth.subject.id, docs, samples: { birth, land, otherCitizenBirth, otherIssuers } }
}

/** the token a role caller sends (none for anonymous) */
export function tokenOf (w: World, caller: RoleCaller): string | undefined {
  return caller === 'anonymous' ? undefined : w.tokens[caller]
}

/** A reuse query body for the world's citizen, for `types`. */
export function reuseQuery (w: World, types: string[] = ['giay-khai-sinh'], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { subject: { kind: 'citizen', id: w.citizen }, documentTypes: types, purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER }, ...extra }
}

/** A consent token by the world's portal for the world's requester (claims may be overridden). */
export async function consentToken (w: World, claims: Record<string, unknown> = {}): Promise<string> {
  const signer = w.agencies.portal.privateKey
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ sub: w.citizen, azp: CODES.requester, document_types: ['phieu-ly-lich-tu-phap'], procedure_code: PROCEDURE, dossier_code: DOSSIER, jti: randomUUID(), iat: now, exp: now + 3600, ...claims })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid })
    .setIssuer(CODES.portal)
    .sign(await importJWK(signer, signer.alg))
}

/** Runs a reuse query as the requester and returns the download link of the birth certificate. */
export async function downloadLink (w: World): Promise<string> {
  const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
  const link = (res.json().results?.[0]?.documents as Array<{ download?: string }> | undefined)?.find((d) => d.download)?.download
  if (typeof link !== 'string') throw new Error(`no download link: ${res.body}`)
  return link
}

export interface ServedRoute {
  method: string
  /** the route as registered, e.g. /v1/documents/:id */
  url: string
}

/**
 * Every route the app serves, read from Fastify's own route tree (printRoutes), so a route added
 * later is covered without touching the tests. HEAD routes Fastify adds for each GET are left
 * out; a HEAD registered on its own would be listed.
 */
export function servedRoutes (app: FastifyInstance): ServedRoute[] {
  const tree = app.printRoutes({ commonPrefix: false })
  const stack: string[] = []
  const out: ServedRoute[] = []
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!match) continue
    const depth = (match[1] as string).length / 4
    stack.length = depth
    stack.push(match[2] as string)
    if (!match[3]) continue
    const url = stack.join('')
    const methods = (match[3]).split(',').map((m) => m.trim())
    for (const method of methods) {
      if (method === 'HEAD' && methods.includes('GET')) continue
      out.push({ method, url })
    }
  }
  return out.sort((a, b) => `${a.url} ${a.method}`.localeCompare(`${b.url} ${b.method}`))
}

/** A URL for a route, its parameters filled in. */
export function fillRoute (url: string, params: Record<string, string> = {}): string {
  // a lone surrogate has no UTF-8 form: it is sent as the bytes of one (ED A0 80), which are not UTF-8 either
  const encode = (value: string): string => value.isWellFormed() ? encodeURIComponent(value) : `%ED%A0%80${encodeURIComponent(value.toWellFormed())}`
  return url.replace(/:([A-Za-z]+)/g, (_m, name: string) => encode(params[name] ?? 'x')).replace(/\*$/, () => encode(params['*'] ?? 'x'))
}

/** The shape every refusal has: RFC 9457 problem+json with a stable code (the token endpoint answers RFC 6749 JSON with the same members). */
export function problemOf (res: LightMyRequestResponse, url = ''): { ok: boolean, code?: string, why?: string } {
  const type = String(res.headers['content-type'] ?? '')
  const oauth = url.startsWith('/v1/oauth/token') && type.startsWith('application/json')
  if (!type.startsWith('application/problem+json') && !oauth) return { ok: false, why: `content type ${type}` }
  let body: unknown
  try { body = JSON.parse(res.body) } catch { return { ok: false, why: 'body is not JSON' } }
  const code = (body as { code?: unknown }).code
  const status = (body as { status?: unknown }).status
  if (typeof code !== 'string' || !/^[a-z0-9_]+$/.test(code)) return { ok: false, why: 'no code' }
  if (status !== res.statusCode) return { ok: false, why: `status member ${String(status)} is not ${res.statusCode}` }
  return { ok: true, code }
}

/** app.inject, bounded: a request that does not complete in `ms` fails the test instead of hanging it. */
export async function injectBounded (app: FastifyInstance, options: InjectOptions, ms = 10_000): Promise<LightMyRequestResponse> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      app.inject(options),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${options.method ?? 'GET'} ${String(options.url)} did not complete within ${ms} ms`)), ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}
