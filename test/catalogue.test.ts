import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { ValidateFunction } from 'ajv'
import { createAjv } from '../src/plugins/validation.js'
import {
  DEFAULT_AS_OF, PROVINCES, SAMPLE_TYPES, decodeCitizenId, genderCenturyDigit, generateDocuments, isValidCitizenId,
  isValidOrganizationId, provinceByCode, taxCodeCheckDigit, validUntilFor
} from '../src/sample-data/generate.js'
import type { SampleDocument } from '../src/sample-data/generate.js'

const DIR = new URL('../schemas/document-types/', import.meta.url)
const REQUIRED_CODES = [
  'giay-khai-sinh', 'xac-nhan-tinh-trang-hon-nhan', 'phieu-ly-lich-tu-phap', 'giay-chung-nhan-quyen-su-dung-dat',
  'giay-chung-nhan-dang-ky-doanh-nghiep', 'giay-phep-lai-xe', 'xac-nhan-thong-tin-cu-tru'
]
const FIELDS = [
  'code', 'name', 'description', 'subjectKinds', 'defaultValidity', 'consentRequired', 'issuingAuthority',
  'legalBasis', 'schemaVersion', 'schema'
]

interface DocumentType {
  code: string
  name: { vi: string, en: string }
  description: { vi: string, en: string }
  subjectKinds: Array<'citizen' | 'organization'>
  defaultValidity: string | null
  consentRequired: boolean
  issuingAuthority: { vi: string, en: string }
  legalBasis: string[]
  schemaVersion: number
  schema: Record<string, unknown>
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const text = { type: 'object', additionalProperties: false, required: ['vi', 'en'], properties: { vi: { type: 'string', minLength: 1 }, en: { type: 'string', minLength: 1 } } }
/** the shape of one catalogue file */
const FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: FIELDS,
  properties: {
    code: { type: 'string', pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 64 },
    name: text,
    description: text,
    subjectKinds: { type: 'array', minItems: 1, maxItems: 2, uniqueItems: true, items: { enum: ['citizen', 'organization'] } },
    defaultValidity: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^P(?=\\d)(\\d+Y)?(\\d+M)?(\\d+D)?$' }] },
    consentRequired: { type: 'boolean' },
    issuingAuthority: text,
    legalBasis: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    schemaVersion: { type: 'integer', minimum: 1 },
    schema: {
      type: 'object',
      required: ['$schema', 'type', 'additionalProperties', 'required', 'properties'],
      properties: {
        $schema: { const: 'https://json-schema.org/draft/2020-12/schema' },
        type: { const: 'object' },
        additionalProperties: { const: false }
      }
    }
  }
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()
const catalogue = new Map<string, DocumentType>()
for (const file of files) {
  catalogue.set(file.slice(0, -'.json'.length), JSON.parse(readFileSync(new URL(file, DIR), 'utf8')) as DocumentType)
}

const ajv = createAjv()
const validators = new Map<string, ValidateFunction>()
function validatorFor (code: string): ValidateFunction {
  let v = validators.get(code)
  if (v === undefined) {
    v = ajv.compile((catalogue.get(code) as DocumentType).schema)
    validators.set(code, v)
  }
  return v
}

function * strings (value: unknown, path = ''): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value]
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield * strings(v, `${path}/${i}`)
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      yield [`${path}/${k} (key)`, k]
      yield * strings(v, `${path}/${k}`)
    }
  }
}

/** every subschema that describes an instance (not the keyword maps around them) */
function * subschemas (schema: Record<string, unknown>, path: string): Generator<[string, Record<string, unknown>]> {
  yield [path, schema]
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined
  for (const [k, v] of Object.entries(props ?? {})) yield * subschemas(v, `${path}/properties/${k}`)
  if (schema.items !== undefined) yield * subschemas(schema.items as Record<string, unknown>, `${path}/items`)
  for (const keyword of ['oneOf', 'anyOf', 'allOf']) {
    const list = schema[keyword] as Array<Record<string, unknown>> | undefined
    for (const [i, v] of (list ?? []).entries()) yield * subschemas(v, `${path}/${keyword}/${i}`)
  }
}

const CALENDAR_DATE = /^(\d{4})-(\d{2})-(\d{2})$/
function isCalendarDate (s: unknown): boolean {
  if (typeof s !== 'string') return false
  const m = CALENDAR_DATE.exec(s)
  if (m === null) return false
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  return d.toISOString().slice(0, 10) === s
}

t.test('the catalogue', async (t) => {
  t.ok(files.length >= REQUIRED_CODES.length, 'at least the seven types of SPEC §4')
  for (const code of REQUIRED_CODES) t.ok(catalogue.has(code), `${code} is shipped`)
  const checkFile = ajv.compile(FILE_SCHEMA)

  for (const [code, entry] of catalogue) {
    t.test(code, async (t) => {
      t.ok(checkFile(entry), 'the file has the catalogue format', { errors: checkFile.errors })
      t.same(Object.keys(entry), FIELDS, 'fields in the shared order')
      t.equal(entry.code, code, 'code equals the file name')
      t.same([...strings(entry)].filter(([, s]) => s !== s.normalize('NFC')).map(([path]) => path), [], 'all text in NFC')
      t.doesNotThrow(() => validatorFor(code), 'the schema compiles with the gateway\'s Ajv (strict, 2020-12)')

      const undescribed: string[] = []
      const open: string[] = []
      const unbounded: string[] = []
      const badNames: string[] = []
      for (const [path, s] of subschemas(entry.schema, '')) {
        const isBranch = path === '' || path.endsWith('/items') || /\/(oneOf|anyOf|allOf)\/\d+$/.test(path)
        if (!isBranch && (typeof s.description !== 'string' || !s.description.includes(' / '))) undescribed.push(path)
        if (s.type === 'object') {
          if (s.additionalProperties !== false) open.push(path || '/')
          for (const name of (s.required ?? []) as string[]) if (!(name in (s.properties as object))) open.push(`${path}: required ${name}`)
        }
        if (s.type === 'array' && typeof s.maxItems !== 'number') unbounded.push(path)
        if (s.type === 'string' && s.maxLength === undefined && s.enum === undefined && s.const === undefined &&
          s.pattern === undefined && s.format !== 'date') unbounded.push(path)
        for (const name of Object.keys((s.properties ?? {}) as object)) if (!/^[a-z][a-zA-Z0-9]*$/.test(name)) badNames.push(`${path}/${name}`)
      }
      t.same(undescribed, [], 'every field is described "Vietnamese / English"')
      t.same(open, [], 'every object admits no unknown fields and requires only its own properties')
      t.same(unbounded, [], 'every string and array is bounded')
      t.same(badNames, [], 'field names are camelCase')
    })
  }
})

t.test('the catalogue\'s legal choices', async (t) => {
  const get = (code: string): DocumentType => catalogue.get(code) as DocumentType
  t.equal(get('xac-nhan-tinh-trang-hon-nhan').defaultValidity, 'P6M', 'Decree 123/2015 Art. 23')
  t.equal(get('phieu-ly-lich-tu-phap').consentRequired, true, 'criminal records need the citizen\'s consent')
  t.same(get('giay-chung-nhan-dang-ky-doanh-nghiep').subjectKinds, ['organization'])
  t.equal(get('giay-phep-lai-xe').defaultValidity, null, 'validity is per class')
  t.equal(get('giay-khai-sinh').defaultValidity, null)
})

const SEED = 4242
const COUNT = 2000
const docs: SampleDocument[] = [...generateDocuments(COUNT, { seed: SEED })]

t.test('2,000 generated documents', async (t) => {
  t.equal(docs.length, COUNT)
  const counts = new Map<string, number>()
  for (const d of docs) counts.set(d.type, (counts.get(d.type) ?? 0) + 1)
  for (const type of SAMPLE_TYPES) t.ok((counts.get(type) ?? 0) > 0, `${type} is generated`)

  const numbers = new Map<string, Set<string>>()
  const problems: string[] = []
  const fail = (d: SampleDocument, why: string): void => { problems.push(`${d.type} ${d.documentNumber}: ${why}`) }
  let bytes = 0

  for (const d of docs) {
    const entry = catalogue.get(d.type)
    if (entry === undefined) { fail(d, 'unknown type'); continue }
    const keys = Object.keys(d).filter((k) => !['type', 'subject', 'documentNumber', 'procedureCode', 'dossierCode', 'issuedAt', 'validFrom', 'validUntil', 'data'].includes(k))
    if (keys.length > 0) fail(d, `unexpected fields ${keys.join(', ')}`)
    const validate = validatorFor(d.type)
    if (!validate(d.data)) fail(d, `data invalid: ${ajv.errorsText(validate.errors)}`)
    bytes += Buffer.byteLength(JSON.stringify(d.data))

    if (!entry.subjectKinds.includes(d.subject.kind)) fail(d, `subject kind ${d.subject.kind}`)
    if (d.subject.kind === 'citizen' && !isValidCitizenId(d.subject.id)) fail(d, `citizen id ${d.subject.id}`)
    if (d.subject.kind === 'organization') {
      if (!isValidOrganizationId(d.subject.id)) fail(d, `organization id ${d.subject.id}`)
      if (taxCodeCheckDigit(d.subject.id.slice(0, 9)) !== Number(d.subject.id[9])) fail(d, 'tax code check digit')
    }
    if (!/^[1-3]\.[0-9]{6}$/.test(d.procedureCode)) fail(d, `procedure code ${d.procedureCode}`)
    if (!/^[0-9A-Z.]{5,32}-[0-9]{6}-[0-9]{4,8}$/.test(d.dossierCode)) fail(d, `dossier code ${d.dossierCode}`)
    if (typeof d.documentNumber !== 'string' || d.documentNumber === '' || d.documentNumber.length > 64) fail(d, 'document number')
    let seen = numbers.get(d.type)
    if (seen === undefined) numbers.set(d.type, seen = new Set())
    if (seen.has(d.documentNumber)) fail(d, 'document number used twice')
    seen.add(d.documentNumber)

    for (const date of [d.issuedAt, d.validFrom, ...(d.validUntil !== undefined ? [d.validUntil] : [])]) {
      if (!isCalendarDate(date)) fail(d, `not a calendar date: ${date}`)
    }
    if (d.issuedAt > DEFAULT_AS_OF) fail(d, 'issued after the as-of date')
    if (d.validFrom < d.issuedAt) fail(d, 'valid before issue')
    if (d.validUntil !== undefined && !(d.validFrom < d.validUntil)) fail(d, `valid-until ${d.validUntil} not after valid-from ${d.validFrom}`)
    if (entry.defaultValidity !== null && d.validUntil === undefined) fail(d, 'no valid-until although the type has a validity')
    // the dossier code's yymmdd is the day the dossier was received: a real day, not after issue
    const yymmdd = d.dossierCode.split('-').at(-2) as string
    const received = `20${yymmdd.slice(0, 2)}-${yymmdd.slice(2, 4)}-${yymmdd.slice(4)}`
    if (d.issuedAt >= '2000-01-01' && (!isCalendarDate(received) || received > d.issuedAt)) fail(d, `dossier received ${received}`)

    for (const [path, s] of strings(d)) if (s !== s.normalize('NFC')) fail(d, `not NFC at ${path}`)
    for (const [path, s] of strings(d.data)) if (/(^\d{4}-\d{2}-\d{2}$)/.test(s) && !isCalendarDate(s)) fail(d, `impossible date at ${path}`)

    // the identifier agrees with what the document says about its holder
    const people: Array<{ id: string, dateOfBirth?: unknown, gender?: unknown, who: string }> = []
    const data = d.data as Record<string, any>
    if (d.subject.kind === 'citizen') {
      if (d.type === 'giay-chung-nhan-ket-hon') {
        const holder = data.husband.idNumber === undefined ? 'husband' : 'wife'
        people.push({ id: d.subject.id, dateOfBirth: data[holder].dateOfBirth, gender: holder === 'husband' ? 'Nam' : 'Nữ', who: 'subject' })
        const other = holder === 'husband' ? 'wife' : 'husband'
        people.push({ id: data[other].idNumber, dateOfBirth: data[other].dateOfBirth, gender: other === 'husband' ? 'Nam' : 'Nữ', who: other })
        if (data.husband.idNumber !== undefined && data.wife.idNumber !== undefined) fail(d, 'the subject\'s identifier is repeated in the data')
      } else if (d.type === 'giay-chung-nhan-quyen-su-dung-dat') {
        if (data.owners[0].idNumber !== undefined) fail(d, 'the subject\'s identifier is repeated in the data')
        const bornYear = decodeCitizenId(d.subject.id)?.birthYear
        if (bornYear !== data.owners[0].yearOfBirth) fail(d, 'owner year of birth')
      } else {
        people.push({ id: d.subject.id, dateOfBirth: data.dateOfBirth, gender: data.gender, who: 'subject' })
      }
    }
    for (const rep of data.legalRepresentatives ?? []) {
      people.push({ id: rep.idNumber, dateOfBirth: rep.dateOfBirth, gender: rep.gender, who: 'legal representative' })
    }
    for (const p of people) {
      const decoded = decodeCitizenId(p.id)
      if (decoded === undefined) { fail(d, `${p.who} id ${p.id}`); continue }
      if (typeof p.dateOfBirth === 'string' && Number(p.dateOfBirth.slice(0, 4)) !== decoded.birthYear) fail(d, `${p.who} id ${p.id} vs born ${p.dateOfBirth}`)
      if (p.gender !== undefined && (p.gender === 'Nam') !== (decoded.gender === 'male')) fail(d, `${p.who} id ${p.id} vs ${String(p.gender)}`)
    }
    if (d.type === 'giay-chung-nhan-dang-ky-doanh-nghiep' && (data.enterpriseCode !== d.subject.id || d.documentNumber !== d.subject.id)) {
      fail(d, 'enterprise code, subject and document number differ')
    }
    if (d.type === 'giay-phep-lai-xe') {
      const ends = (data.classes as Array<{ validUntil?: string }>).map((c) => c.validUntil)
      const expected = ends.includes(undefined) ? undefined : (ends as string[]).sort().at(-1)
      if (d.validUntil !== expected) fail(d, 'valid-until is not the latest class expiry')
    }
  }
  t.same(problems.slice(0, 20), [], 'no problems')
  t.equal(problems.length, 0, `${problems.length} problems`)

  const average = bytes / docs.length
  t.ok(average >= 300 && average <= 800, `structured data averages ${Math.round(average)} bytes`)

  const perSubject = new Map<string, number>()
  for (const d of docs) perSubject.set(d.subject.id, (perSubject.get(d.subject.id) ?? 0) + 1)
  t.ok([...perSubject.values()].filter((n) => n > 1).length > 50, 'many citizens hold several documents')
})

t.test('generation is deterministic and configurable', async (t) => {
  const a = [...generateDocuments(50, { seed: 7 })]
  t.same([...generateDocuments(50, { seed: 7 })], a, 'same seed, same documents')
  t.notSame([...generateDocuments(50, { seed: 8 })], a, 'another seed, other documents')
  t.same(docs.slice(0, 10), [...generateDocuments(10, { seed: SEED })], 'a prefix is a prefix')

  const only = [...generateDocuments(100, { seed: 1, types: ['giay-phep-lai-xe', 'trich-luc-khai-tu'] })]
  t.same([...new Set(only.map((d) => d.type))].sort(), ['giay-phep-lai-xe', 'trich-luc-khai-tu'])
  t.throws(() => [...generateDocuments(1, { types: ['so-ho-khau'] })], /so-ho-khau/)
  t.throws(() => [...generateDocuments(-1)], RangeError)
  t.throws(() => [...generateDocuments(1, { asOf: '2025-02-30' })], RangeError)
  t.throws(() => [...generateDocuments(1, { asOf: '2009-12-31' })], RangeError)

  const today = [...generateDocuments(200, { seed: 3, asOf: '2031-12-31', types: ['xac-nhan-tinh-trang-hon-nhan'] })]
  t.ok(today.every((d) => d.issuedAt <= '2031-12-31' && d.issuedAt >= '2029-12-01'), 'issued in the two years before as-of')
  t.ok(today.some((d) => (d.validUntil as string) >= '2031-12-31'), 'some still valid on the as-of date')
})

t.test('the command line writes the same documents as NDJSON', async (t) => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../scripts/sample-data.ts', import.meta.url)), '5', '--seed', '9'], { encoding: 'utf8' })
  t.match(out, /^(\{.*\}\n){5}$/, 'five lines of JSON')
  t.same(out.trimEnd().split('\n').map((line) => JSON.parse(line)), [...generateDocuments(5, { seed: 9 })])
  const usage = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../scripts/sample-data.ts', import.meta.url))], { encoding: 'utf8' })
  t.equal(usage.status, 2, 'no count is a usage error')
  t.match(usage.stderr, /usage:/)
})

t.test('validity periods as the Civil Code counts them', async (t) => {
  t.equal(validUntilFor('2025-01-15', 'P6M'), '2025-07-15')
  t.equal(validUntilFor('2024-08-31', 'P6M'), '2025-02-28', 'no corresponding day: the month\'s last day')
  t.equal(validUntilFor('2024-02-29', 'P1Y'), '2025-02-28')
  t.equal(validUntilFor('2025-01-15', 'P30D'), '2025-02-14')
  t.equal(validUntilFor('2025-01-15', 'P1Y6M'), '2026-07-15')
  t.throws(() => validUntilFor('2025-01-15', 'PT1H'), RangeError)
  t.throws(() => validUntilFor('2025-01-15', 'P'), RangeError)
})

t.test('identifiers', async (t) => {
  t.equal(PROVINCES.length, 63, 'the 63 provinces of birth registration')
  t.ok(isValidCitizenId('001099012345'))
  t.ok(isValidCitizenId('096305000001'))
  for (const bad of ['00109901234', '0010990123456', '003099012345', '000099012345', '097099012345', '00109901234A',
    '００１０９９０１２３４５', ' 001099012345', '001099012345\n', 1099012345, null, undefined]) {
    t.notOk(isValidCitizenId(bad), `rejects ${JSON.stringify(bad)}`)
  }
  t.same(decodeCitizenId('001099012345'), { province: PROVINCES[0], gender: 'male', birthYear: 1999, sequence: '012345' })
  t.match(decodeCitizenId('079305000001'), { province: { name: 'Hồ Chí Minh' }, gender: 'female', birthYear: 2005 })
  t.equal(decodeCitizenId('003099012345'), undefined)

  for (const ok of ['0100112437', '0100109106', '0100109106-001']) t.ok(isValidOrganizationId(ok), ok)
  for (const bad of ['010011243', '01001124370', '0100109106-01', '0100109106-0001', '0100109106_001', 'A100109106']) {
    t.notOk(isValidOrganizationId(bad), bad)
  }
  t.equal(genderCenturyDigit('male', 1999), 0)
  t.equal(genderCenturyDigit('female', 1900), 1)
  t.equal(genderCenturyDigit('male', 2000), 2)
  t.equal(genderCenturyDigit('female', 2099), 3)
  t.throws(() => genderCenturyDigit('male', 1899), RangeError)
  t.equal(provinceByCode('096')?.name, 'Cà Mau')
  t.equal(provinceByCode('003'), undefined)
  t.throws(() => taxCodeCheckDigit('01001124'), RangeError)
  t.equal(taxCodeCheckDigit('010011243'), 7, 'the check digit of a published tax code')
  t.equal(taxCodeCheckDigit('010010910'), 6)
})

t.test('invalid data is rejected', async (t) => {
  const sample = new Map<string, SampleDocument>()
  for (const d of docs) if (!sample.has(d.type)) sample.set(d.type, d)
  const clone = (type: string): Record<string, any> => structuredClone((sample.get(type) as SampleDocument).data)

  type Mutation = [string, (data: Record<string, any>) => void]
  const generic = (type: string): Mutation[] => {
    const schema = (catalogue.get(type) as DocumentType).schema as { required: string[] }
    return [
      ['an unknown field', (x) => { x.ghiChuThem = 'không có trong mẫu' }],
      ...schema.required.map((name): Mutation => [`without ${name}`, (x) => { Reflect.deleteProperty(x, name) }])
    ]
  }
  const specific: Record<string, Mutation[]> = {
    'giay-khai-sinh': [
      ['date of birth as dd/mm/yyyy', (x) => { x.dateOfBirth = '18/06/2022' }],
      ['30 February', (x) => { x.dateOfBirth = '2022-02-30' }],
      ['gender outside the enum', (x) => { x.gender = 'Khác' }],
      ['an unknown field on the mother', (x) => { x.mother.soDienThoai = '0912345678' }],
      ['a year of birth as text', (x) => { x.mother.yearOfBirth = '1990' }]
    ],
    'xac-nhan-tinh-trang-hon-nhan': [
      ['a status outside the enum', (x) => { x.maritalStatus = 'ly thân' }],
      ['date with a time', (x) => { x.dateOfBirth = '1990-01-01T00:00:00Z' }],
      ['a 2,000-character purpose', (x) => { x.purpose = 'a'.repeat(2000) }]
    ],
    'phieu-ly-lich-tu-phap': [
      ['form 3', (x) => { x.form = 3 }],
      ['a free-text record', (x) => { x.criminalRecord = 'Có án tích' }],
      ['an empty list of convictions', (x) => { x.criminalRecord = [] }],
      ['a conviction with a bad date', (x) => { x.criminalRecord = [{ judgmentNumber: '1/2020/HS-ST', judgmentDate: '2020-13-01', court: 'TAND', offence: 'x', penalty: 'y' }] }]
    ],
    'giay-chung-nhan-quyen-su-dung-dat': [
      ['a negative area', (x) => { x.areaM2 = -5 }],
      ['a zero area', (x) => { x.areaM2 = 0 }],
      ['an area as text', (x) => { x.areaM2 = '136 m²' }],
      ['no owners', (x) => { x.owners = [] }],
      ['a share above 1', (x) => { x.owners[0].share = 1.5 }],
      ['an unknown land category', (x) => { x.landUsePurposes[0].code = 'XYZ' }],
      ['a parcel number with a decimal', (x) => { x.parcelNumber = 12.5 }],
      ['a serial in the wrong shape', (x) => { x.certificateSerial = 'BV-896362' }]
    ],
    'giay-chung-nhan-dang-ky-doanh-nghiep': [
      ['an enterprise type outside the enum', (x) => { x.enterpriseType = 'Công ty TNHH' }],
      ['a capital with a fraction', (x) => { x.charterCapitalVnd = 1.5 }],
      ['a negative capital', (x) => { x.charterCapitalVnd = -1 }],
      ['a short enterprise code', (x) => { x.enterpriseCode = '010011243' }],
      ['a bad e-mail', (x) => { x.email = 'not an e-mail' }],
      ['no legal representative', (x) => { x.legalRepresentatives = [] }],
      ['eleven legal representatives', (x) => { x.legalRepresentatives = Array(11).fill(x.legalRepresentatives[0]) }]
    ],
    'giay-phep-lai-xe': [
      ['an unknown class', (x) => { x.classes[0].class = 'Z9' }],
      ['a class without a grant date', (x) => { Reflect.deleteProperty(x.classes[0], 'issuedDate') }],
      ['a licence number with letters', (x) => { x.licenceNumber = 'AB1234567890' }],
      ['sixteen classes', (x) => { x.classes = Array(16).fill(x.classes[0]) }]
    ],
    'xac-nhan-thong-tin-cu-tru': [
      ['residence since 31 April', (x) => { x.residenceSince = '2020-04-31' }],
      ['a member without a relationship', (x) => { x.householdMembers = [{ fullName: 'Lê Văn A' }] }],
      ['an empty current residence', (x) => { x.currentResidence = '' }]
    ],
    'trich-luc-khai-tu': [
      ['25 o\'clock', (x) => { x.timeOfDeath = '25:00' }],
      ['a cause of death (not part of the data)', (x) => { x.causeOfDeath = 'Bệnh' }]
    ],
    'giay-chung-nhan-ket-hon': [
      ['a husband without a date of birth', (x) => { Reflect.deleteProperty(x.husband, 'dateOfBirth') }],
      ['an unknown field on the wife', (x) => { x.wife.ngheNghiep = 'Giáo viên' }]
    ]
  }

  for (const type of SAMPLE_TYPES) {
    t.test(type, async (t) => {
      const validate = validatorFor(type)
      t.ok(validate(clone(type)), 'the untouched sample is valid')
      t.notOk(validate([]), 'rejects an array')
      t.notOk(validate('dữ liệu'), 'rejects a string')
      const mutations = [...generic(type), ...(specific[type] ?? [])]
      t.ok((specific[type] ?? []).length >= 2, 'has type-specific cases')
      for (const [label, mutate] of mutations) {
        const data = clone(type)
        mutate(data)
        t.notOk(validate(data), `rejects ${label}`)
      }
    })
  }
})
