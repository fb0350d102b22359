/**
 * Realistic Vietnamese sample documents, exactly as an issuing agency would POST them to
 * /v1/documents: used by the tests, the benchmark and the first-run demo.
 *
 *   node --import tsx scripts/sample-data.ts 1000 [--seed 7] [--types a,b] [--as-of 2025-06-30] > docs.ndjson
 *
 * Deterministic: the same count, seed, types and as-of date give the same documents, byte for
 * byte. Nothing depends on the clock; `asOf` is the "today" of the generated world (documents are
 * issued on or before it, and the ones with a validity period are a mix of still valid and
 * expired as of that day). Pass today's date to get documents that are valid now.
 *
 * Dates are ISO 8601 calendar dates. `validUntil` is the last day on which a document is valid,
 * counted as the Civil Code 2015 counts periods (Art. 147–148): from the day after issue to the
 * corresponding day of the last month, or that month's last day when it has none; so a 6-month
 * confirmation issued on 2025-01-15 is valid until 2025-07-15, one issued on 2024-08-31 until
 * 2025-02-28.
 *
 * Addresses use the three-level administrative units (ward, district, province) in force before
 * 1 July 2025, which is what documents issued before that day print.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { birthCertificate, deathExtract, marriageCertificate, maritalStatus } from './builders/civil-status.js'
import { enterpriseRegistration, landCertificate } from './builders/land-and-enterprise.js'
import { criminalRecord, drivingLicence, residenceConfirmation } from './builders/records.js'
import { iso, toDay, validUntilFor } from './calendar.js'
import { PROVINCES } from './provinces.js'
import { TYPE_WEIGHTS } from './tables.js'
import type { SampleType } from './tables.js'
import { World } from './world.js'
import type { Builder, Built, Place, Subject } from './world.js'

export {
  PROVINCES, PROVINCE_CODES, decodeCitizenId, genderCenturyDigit, isValidCitizenId,
  isValidOrganizationId, provinceByCode, taxCodeCheckDigit
} from './provinces.js'
export type { DecodedCitizenId, Province } from './provinces.js'
export { validUntilFor } from './calendar.js'
export { mulberry32 } from './random.js'
export type { SampleType } from './tables.js'

export interface SampleDocument {
  type: string
  subject: Subject
  documentNumber: string
  procedureCode: string
  dossierCode: string
  issuedAt: string
  validFrom: string
  validUntil?: string
  data: Record<string, unknown>
}

export interface GenerateOptions {
  /** PRNG seed, an integer (taken modulo 2³²); default DEFAULT_SEED */
  seed?: number
  /** only these catalogue codes (default: every type in SAMPLE_TYPES, in realistic proportions) */
  types?: readonly string[]
  /** the "today" of the generated world, YYYY-MM-DD; default DEFAULT_AS_OF */
  asOf?: string
}

export const DEFAULT_SEED = 20250630
export const DEFAULT_AS_OF = '2025-06-30'
export const EARLIEST_AS_OF = '2010-01-01'

/** The catalogue codes the generator knows, in the order of tables/documents.json. */
export const SAMPLE_TYPES: readonly SampleType[] = Object.freeze(Object.keys(TYPE_WEIGHTS) as SampleType[])

const BUILDERS: Record<SampleType, Builder> = {
  'giay-khai-sinh': birthCertificate,
  'xac-nhan-thong-tin-cu-tru': residenceConfirmation,
  'xac-nhan-tinh-trang-hon-nhan': maritalStatus,
  'giay-chung-nhan-quyen-su-dung-dat': landCertificate,
  'giay-phep-lai-xe': drivingLicence,
  'phieu-ly-lich-tu-phap': criminalRecord,
  'giay-chung-nhan-dang-ky-doanh-nghiep': enterpriseRegistration,
  'giay-chung-nhan-ket-hon': marriageCertificate,
  'trich-luc-khai-tu': deathExtract
}

// ---------------------------------------------------------------------------------------------
// Catalogue defaults and dossier codes

export const CATALOGUE_DIR = new URL('../../schemas/document-types/', import.meta.url)
const defaultValidities = new Map<string, string | null>()

/** a type's defaultValidity from the shipped catalogue, so the two never disagree */
function defaultValidity (type: string): string | null {
  let v = defaultValidities.get(type)
  if (v === undefined) {
    const entry = JSON.parse(readFileSync(new URL(`${type}.json`, CATALOGUE_DIR), 'utf8')) as { defaultValidity: string | null }
    v = entry.defaultValidity
    defaultValidities.set(type, v)
  }
  return v
}

/**
 * Receiving-agency codes shaped like those of Decision 20/2020/QĐ-TTg (`000.00.07.H26`); the
 * unit digits are made up, the H-number is the province's position in the official list.
 */
function agencyCode (w: World, p: Place): string {
  const index = PROVINCES.findIndex((x) => x.code === p.area.code) + 1
  return `000.00.${String(w.rng.int(1, 40)).padStart(2, '0')}.H${String(index).padStart(2, '0')}`
}

function dossierCode (w: World, built: Built): string {
  const received = Math.max(built.issued - w.rng.int(0, built.processingDays + 2), built.issued - 30)
  const ymd = iso(received).replace(/-/g, '').slice(2)
  return `${agencyCode(w, built.place)}-${ymd}-${String(w.rng.int(1, 9999)).padStart(4, '0')}`
}

function nfc (value: unknown): unknown {
  if (typeof value === 'string') return value.normalize('NFC')
  if (Array.isArray(value)) return value.map(nfc)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.normalize('NFC'), nfc(v)]))
  }
  return value
}

/**
 * Yields `count` documents, each exactly the body an issuing agency would POST to /v1/documents.
 * Document numbers are unique per type within one call; citizen identifiers are unique per
 * person, and about a third of citizen documents go to someone who already holds another one.
 */
export function * generateDocuments (count: number, options: GenerateOptions = {}): Generator<SampleDocument> {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, not ${count}`)
  const seed = options.seed ?? DEFAULT_SEED
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, not ${seed}`)
  const types = options.types ?? SAMPLE_TYPES
  if (types.length === 0) throw new RangeError('types must name at least one document type')
  for (const t of types) {
    if (!(t in TYPE_WEIGHTS)) throw new RangeError(`the generator knows no document type "${t}"; known: ${SAMPLE_TYPES.join(', ')}`)
  }
  const weights = [...new Set(types)].map((t) => [t as SampleType, TYPE_WEIGHTS[t as SampleType]] as const)
  const asOf = toDay(options.asOf ?? DEFAULT_AS_OF)
  // the builders draw from fixed historical ranges (land certificates since 2005, …)
  if (asOf < toDay(EARLIEST_AS_OF)) throw new RangeError(`asOf must be ${EARLIEST_AS_OF} or later`)
  const world = new World(seed, asOf)

  for (let i = 0; i < count; i++) {
    const type = world.rng.weighted(weights)
    const built = BUILDERS[type](world)
    const issuedAt = iso(built.issued)
    const validity = defaultValidity(type)
    const validUntil = built.validUntil ?? (validity !== null ? validUntilFor(issuedAt, validity) : undefined)
    const doc: SampleDocument = {
      type,
      subject: built.subject,
      documentNumber: built.documentNumber,
      procedureCode: built.procedureCode,
      dossierCode: dossierCode(world, built),
      issuedAt,
      validFrom: issuedAt,
      ...(validUntil !== undefined ? { validUntil } : {}),
      data: built.data
    }
    yield nfc(doc) as SampleDocument
  }
}

// ---------------------------------------------------------------------------------------------
// Command line

async function main (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: 'string' },
      types: { type: 'string' },
      'as-of': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true || positionals.length !== 1) {
    process.stderr.write(
      'usage: node --import tsx scripts/sample-data.ts <count> [--seed N] [--types code,code] [--as-of YYYY-MM-DD] > docs.ndjson\n' +
      `types: ${SAMPLE_TYPES.join(', ')}\n`
    )
    process.exitCode = values.help === true ? 0 : 2
    return
  }
  const count = Number(positionals[0])
  const options: GenerateOptions = {
    ...(values.seed !== undefined ? { seed: Number(values.seed) } : {}),
    ...(values.types !== undefined ? { types: values.types.split(',').map((s) => s.trim()).filter((s) => s !== '') } : {}),
    ...(values['as-of'] !== undefined ? { asOf: values['as-of'] } : {})
  }
  let chunk = ''
  for (const doc of generateDocuments(count, options)) {
    chunk += JSON.stringify(doc) + '\n'
    if (chunk.length >= 1 << 16) {
      if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve))
      chunk = ''
    }
  }
  if (chunk !== '') process.stdout.write(chunk)
}

/** The command line: `<count> [--seed N] [--types a,b] [--as-of YYYY-MM-DD]` → NDJSON on standard output. */
export function runSampleData (argv: string[]): void {
  // `… | head` closing the pipe early is a normal way to stop, not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
    throw err
  })
  main(argv).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
