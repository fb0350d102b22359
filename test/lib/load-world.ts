import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { Stores } from '../../src/store/index.js'
import { generateDocuments } from '../../src/sample-data/generate.js'
import type { SampleDocument } from '../../src/sample-data/generate.js'
import { build } from '../helper.js'
import { ADMIN_CODE, adminEnv, makeAgency, register, tokenFor } from './agencies.js'

/**
 * A gateway on a given store with what fault tests drive through it: an issuer indexing birth
 * certificates (no expiry, no consent: every one is released by a reuse query), a requester with
 * an agreement for them, an auditor to verify the trail, and a token for each.
 */
export const ISSUER = '000.00.12.H41'
export const REQUESTER = '000.20.41.H41'
export const AUDITOR = '000.00.00.K01'
export const PROCEDURE = '1.001193'
export const DOSSIER = '000.20.41.H41-260301-0001'
export const TYPE = 'giay-khai-sinh'

export interface LoadWorld {
  app: FastifyInstance
  issuerToken: string
  requesterToken: string
  auditorToken: string
}

export async function loadWorld (t: Test, store: Stores, env: Record<string, string> = {}): Promise<LoadWorld> {
  const admin = await makeAgency(ADMIN_CODE)
  const app = await build(t, { store, env: { ...adminEnv(admin), ...env } })
  const adminToken = await tokenFor(app, admin)
  const issuer = await makeAgency(ISSUER)
  const requester = await makeAgency(REQUESTER)
  const auditor = await makeAgency(AUDITOR)
  await register(app, adminToken, issuer, ['issuer'], { issuableTypes: [TYPE] })
  await register(app, adminToken, requester, ['requester'])
  await register(app, adminToken, auditor, ['auditor'])
  const agreement = await app.inject({
    method: 'PUT',
    url: '/v1/agreements/ward-quang-trung-2026',
    headers: { authorization: `Bearer ${adminToken}` },
    payload: { requester: REQUESTER, documentTypes: [TYPE], procedureCodes: [PROCEDURE], fields: { [TYPE]: ['fullName', 'dateOfBirth'] }, validFrom: '2026-01-01' }
  })
  if (agreement.statusCode !== 201) throw new Error(agreement.body)
  return { app, issuerToken: await tokenFor(app, issuer), requesterToken: await tokenFor(app, requester), auditorToken: await tokenFor(app, auditor) }
}

/** birth certificates, each with a number of its own (the generator's numbers repeat across seeds) */
export function births (count: number, seed: number): SampleDocument[] {
  return [...generateDocuments(count, { seed, types: [TYPE] })].map((doc, i) => ({ ...doc, documentNumber: `${doc.documentNumber}-${seed}-${i}` }))
}

export async function indexOne (w: LoadWorld, doc: SampleDocument): Promise<LightMyRequestResponse> {
  return await w.app.inject({ method: 'POST', url: '/v1/documents', headers: { authorization: `Bearer ${w.issuerToken}` }, payload: doc })
}

export async function reuseQuery (w: LoadWorld, citizen: string): Promise<LightMyRequestResponse> {
  return await w.app.inject({
    method: 'POST',
    url: '/v1/reuse-queries',
    headers: { authorization: `Bearer ${w.requesterToken}` },
    payload: { subject: { kind: 'citizen', id: citizen }, documentTypes: [TYPE], purpose: { procedureCode: PROCEDURE, dossierCode: DOSSIER } }
  })
}

/** the ids of what a 2xx reuse query released, with its audit event id (the queryId) */
export function released (res: LightMyRequestResponse): { queryId: string, documents: Array<{ id: string, version: number }> } {
  const body = res.json() as { queryId: string, results: Array<{ documents: Array<{ id: string, version: number }> }> }
  return { queryId: body.queryId, documents: body.results.flatMap((r) => r.documents.map((d) => ({ id: d.id, version: d.version }))) }
}

/** GET /v1/audit/verify as the auditor */
export async function verifyAudit (w: LoadWorld): Promise<{ ok: boolean, checked: number, reason?: string }> {
  const res = await w.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: { authorization: `Bearer ${w.auditorToken}` } })
  if (res.statusCode !== 200) throw new Error(`audit verify answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** polls readiness until the store answers again (bounded) */
export async function waitUntilReady (app: FastifyInstance, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while ((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode !== 200) {
    if (Date.now() > deadline) throw new Error('the gateway did not recover after Redis came back')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
