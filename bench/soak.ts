import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { benchGateway, benchRedis, CPUS, loadScript } from './lib.js'
import type { SoakStream, SoakStreamFigures } from './soak-worker.js'
import { writeAssertionBodies } from './token.js'
import { fetchAccessToken } from '../src/cli/agency-keys.js'
import type { AgencyPrivateKey } from '../src/cli/agency-keys.js'
import { SAMPLE_TYPES, generateDocuments } from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'

/**
 * Soak: one gateway process under a steady mixed load for SOAK_SECONDS (default 600): reuse
 * queries (full and status), documents indexed, the portal's view of citizens, audit searches,
 * token requests and malformed requests, each stream at a fixed rate, in stretches of 30 s.
 * Every 5 s it reads the gateway's resident memory (/proc) and Redis's used_memory.
 *
 * Printed: per minute, requests by status class and memory; then the gateway's memory over the
 * last minutes against the first minute after warm-up (the baseline of the same run), its
 * slope, and the count of 5xx, connection errors and error-level log lines. Nothing asserted.
 */
const seconds = Number(process.env.SOAK_SECONDS ?? 600)
const stretch = Math.min(30, seconds)
const stretches = Math.max(1, Math.round(seconds / stretch))
const rates = { full: 120, status: 60, index: 40, portal: 20, audit: 10, token: 5, malformed: 20 }
const started = Date.now()
const progress = (what: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${what}\n`) }
if (CPUS) execFileSync('taskset', ['-pc', CPUS.load, String(process.pid)], { stdio: 'ignore' })

const ISSUER = '000.00.12.H41'
const REQUESTER = '000.20.41.H41'
const PORTAL = '000.00.00.G22'
const AUDITOR = '000.00.01.T01'
const PROCEDURE = '1.001193'

interface Sample { at: number, rssMb: number, redisMb: number }

function residentMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

/** least-squares slope of y over x */
function slope (points: Array<[number, number]>): number {
  const n = points.length
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0)
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0)
  return den === 0 ? 0 : num / den
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

const dir = mkdtempSync(join(tmpdir(), 'rg-soak-'))
const redis = await benchRedis()
const samples: Sample[] = []
const minutes = new Map<number, { requests: number, s2xx: number, s4xx: number, s5xx: number, errors: number }>()
const streamTotals = new Map<string, SoakStreamFigures>()
let errorLines = 0
const firstErrors: string[] = []
try {
  const g = await benchGateway(redis, CPUS?.server, { ACCESS_TOKEN_TTL_SECONDS: '3600' })
  g.gateway.child.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (/"level":(50|60)/.test(line)) {
        errorLines++
        if (firstErrors.length < 5) firstErrors.push(line.slice(0, 300))
      }
    }
  })
  const redisClient = new Redis(redis.url)
  const pid = g.gateway.child.pid as number
  const sampler = setInterval(() => {
    void redisClient.info('memory').then((info) => {
      samples.push({ at: (Date.now() - started) / 1000, rssMb: residentMb(pid), redisMb: Number(/used_memory:(\d+)/.exec(info)?.[1]) / 2 ** 20 })
    }).catch(() => {})
  }, 5000)
  try {
    progress('setting up agencies, an agreement and 300 birth certificates')
    const issuer = await g.agency(ISSUER, 'Sở Tư pháp', ['issuer'], SAMPLE_TYPES)
    const requester = await g.agency(REQUESTER, 'UBND phường Quang Trung', ['requester'])
    const portal = await g.agency(PORTAL, 'Cổng Dịch vụ công quốc gia', ['portal'])
    const auditor = await g.agency(AUDITOR, 'Thanh tra', ['auditor'])
    await g.call(g.admin, 'PUT', '/v1/agreements/soak', { requester: REQUESTER, documentTypes: ['giay-khai-sinh'], procedureCodes: [PROCEDURE], fields: { 'giay-khai-sinh': ['fullName', 'dateOfBirth', 'gender'] }, validFrom: '2020-01-01' })

    const pool = [...generateDocuments(Math.ceil(rates.index * seconds * 1.1) + 3000, { seed: 17 })]
    const births = pool.filter((d) => d.type === 'giay-khai-sinh').slice(0, 300)
    for (const birth of births) await g.call(issuer.token, 'POST', '/v1/documents', birth)
    const toIndex = pool.filter((d) => !births.includes(d))
    const subjects = births.map((d) => d.subject)

    const lines = (make: (subject: SampleDocument['subject'], i: number) => unknown): string => subjects.map((s, i) => JSON.stringify(make(s, i))).join('\n')
    writeFileSync(join(dir, 'full.txt'), lines((subject, i) => ({ subject, documentTypes: ['giay-khai-sinh'], purpose: { procedureCode: PROCEDURE, dossierCode: `${REQUESTER}-261129-${String(i).padStart(4, '0')}` } })))
    writeFileSync(join(dir, 'status.txt'), lines((subject, i) => ({ subject, documentTypes: ['giay-khai-sinh'], mode: 'status', purpose: { procedureCode: PROCEDURE, dossierCode: `${REQUESTER}-261129-${String(i).padStart(4, '0')}` } })))
    writeFileSync(join(dir, 'portal.txt'), lines((subject) => ({ subject })))
    writeFileSync(join(dir, 'audit.txt'), lines((subject) => ({ subject, limit: 20 })))

    const json = { 'content-type': 'application/json' }
    for (let s = 0; s < stretches; s++) {
      // fresh tokens every stretch: the token endpoint is part of the load too
      const token = async (agency: string, privateKey: AgencyPrivateKey): Promise<string> => (await fetchAccessToken({ gateway: g.gateway.url, privateKey, agency })).access_token
      const [requesterToken, issuerToken, portalToken, auditorToken] = [await token(REQUESTER, requester.privateKey), await token(ISSUER, issuer.privateKey), await token(PORTAL, portal.privateKey), await token(AUDITOR, auditor.privateKey)]
      const indexFile = join(dir, `index-${s}.txt`)
      const perStretch = Math.ceil(rates.index * stretch * 1.05)
      writeFileSync(indexFile, toIndex.slice(s * perStretch, (s + 1) * perStretch).map((d) => JSON.stringify(d)).join('\n'))
      const tokenFile = join(dir, `token-${s}.txt`)
      await writeAssertionBodies(g, requester.privateKey, REQUESTER, Math.ceil(rates.token * stretch * 1.1), tokenFile)

      const as = (bearer: string): Record<string, string> => ({ ...json, authorization: `Bearer ${bearer}` })
      const streams: SoakStream[] = [
        { name: 'reuse query, full', url: `${g.gateway.url}/v1/reuse-queries`, method: 'POST', headers: as(requesterToken), bodiesFile: join(dir, 'full.txt'), rate: rates.full, connections: 8 },
        { name: 'reuse query, status', url: `${g.gateway.url}/v1/reuse-queries`, method: 'POST', headers: as(requesterToken), bodiesFile: join(dir, 'status.txt'), rate: rates.status, connections: 4 },
        { name: 'document indexed', url: `${g.gateway.url}/v1/documents`, method: 'POST', headers: as(issuerToken), bodiesFile: indexFile, rate: rates.index, connections: 4 },
        { name: 'portal: citizen documents', url: `${g.gateway.url}/v1/portal/citizen-documents`, method: 'POST', headers: as(portalToken), bodiesFile: join(dir, 'portal.txt'), rate: rates.portal, connections: 2 },
        { name: 'audit search by subject', url: `${g.gateway.url}/v1/audit/search`, method: 'POST', headers: as(auditorToken), bodiesFile: join(dir, 'audit.txt'), rate: rates.audit, connections: 2 },
        { name: 'token request', url: `${g.gateway.url}/v1/oauth/token`, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bodiesFile: tokenFile, rate: rates.token, connections: 1 },
        { name: 'malformed body (400 expected)', url: `${g.gateway.url}/v1/reuse-queries`, method: 'POST', headers: as(requesterToken), body: '{"subject": {"kind": "citizen", "id": ', rate: rates.malformed, connections: 2 }
      ]
      const figures = await loadScript<SoakStreamFigures[]>('bench/soak-worker.ts', [JSON.stringify({ streams, seconds: stretch })])
      const minute = Math.floor((s * stretch) / 60)
      const row = minutes.get(minute) ?? { requests: 0, s2xx: 0, s4xx: 0, s5xx: 0, errors: 0 }
      for (const f of figures) {
        row.requests += f.requests; row.s2xx += f.s2xx; row.s4xx += f.s4xx; row.s5xx += f.s5xx; row.errors += f.errors
        const total = streamTotals.get(f.name) ?? { ...f, requests: 0, s2xx: 0, s4xx: 0, s5xx: 0, errors: 0, p99: 0 }
        streamTotals.set(f.name, { name: f.name, requests: total.requests + f.requests, s2xx: total.s2xx + f.s2xx, s4xx: total.s4xx + f.s4xx, s5xx: total.s5xx + f.s5xx, errors: total.errors + f.errors, p99: Math.max(total.p99, f.p99) })
      }
      minutes.set(minute, row)
      const last = samples.at(-1)
      progress(`stretch ${s + 1}/${stretches}: ${figures.reduce((a, f) => a + f.requests, 0)} requests, ${figures.reduce((a, f) => a + f.s5xx + f.errors, 0)} 5xx or errors, gateway RSS ${last?.rssMb.toFixed(0)} MB, Redis ${last?.redisMb.toFixed(0)} MB`)
    }
  } finally {
    clearInterval(sampler)
    redisClient.disconnect()
    await g.stop()
  }
} finally {
  await redis.stop()
}

console.log(`\nreuse gateway soak — ${seconds} s of mixed load (${Object.entries(rates).map(([k, v]) => `${k} ${v}/s`).join(', ')}), ${CPUS ? `gateway on CPU ${CPUS.server}, load and Redis on CPU ${CPUS.load}` : 'no CPU pinning'}\n`)
console.log('| minute | requests | 2xx | 4xx | 5xx | connection errors | gateway RSS (MB, median) | Redis used_memory (MB, end) |')
console.log('|---|---|---|---|---|---|---|---|')
for (const [minute, row] of [...minutes].sort((a, b) => a[0] - b[0])) {
  const inMinute = samples.filter((x) => x.at >= minute * 60 && x.at < (minute + 1) * 60)
  console.log(`| ${minute + 1} | ${row.requests} | ${row.s2xx} | ${row.s4xx} | ${row.s5xx} | ${row.errors} | ${median(inMinute.map((x) => x.rssMb)).toFixed(1)} | ${(inMinute.at(-1)?.redisMb ?? 0).toFixed(1)} |`)
}
console.log('\n| stream | requests | 2xx | 4xx | 5xx | connection errors | worst p99 of a stretch (ms) |')
console.log('|---|---|---|---|---|---|---|')
for (const f of streamTotals.values()) console.log(`| ${f.name} | ${f.requests} | ${f.s2xx} | ${f.s4xx} | ${f.s5xx} | ${f.errors} | ${f.p99} |`)

// memory: the first minute after warm-up is the baseline; the last third of the run is compared with it
const loadStart = samples.length ? samples[0]!.at : 0
const warm = samples.filter((x) => x.at >= loadStart + 60 && x.at < loadStart + 120)
const tail = samples.slice(Math.floor(samples.length * 2 / 3))
const base = median(warm.length ? warm.map((x) => x.rssMb) : samples.slice(0, 3).map((x) => x.rssMb))
const end = median(tail.map((x) => x.rssMb))
const perMinute = slope(tail.map((x) => [x.at / 60, x.rssMb]))
const total = [...streamTotals.values()]
const bad = total.reduce((a, f) => a + f.s5xx + f.errors, 0)
const unexpected4xx = total.filter((f) => !f.name.includes('400 expected')).reduce((a, f) => a + f.s4xx, 0)
console.log(`\ngateway RSS: ${base.toFixed(1)} MB in minute 2 (baseline), ${end.toFixed(1)} MB over the last third: ratio ${(end / base).toFixed(3)}, slope over the last third ${perMinute.toFixed(2)} MB/min`)
console.log(`5xx + connection errors: ${bad}; 4xx outside the malformed stream: ${unexpected4xx}; error-level log lines: ${errorLines}`)
for (const line of firstErrors) console.log(`  ${line}`)
