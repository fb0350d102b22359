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
import { PROVINCES, genderCenturyDigit, provinceByCode, taxCodeCheckDigit } from './provinces.js'
import type { Province } from './provinces.js'

export {
  PROVINCES, PROVINCE_CODES, decodeCitizenId, genderCenturyDigit, isValidCitizenId,
  isValidOrganizationId, provinceByCode, taxCodeCheckDigit
} from './provinces.js'
export type { DecodedCitizenId, Province } from './provinces.js'

export interface SampleDocument {
  type: string
  subject: { kind: 'citizen' | 'organization', id: string }
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

/** The catalogue codes the generator knows, with their share of a default mix. */
const TYPE_WEIGHTS = {
  'giay-khai-sinh': 24,
  'xac-nhan-thong-tin-cu-tru': 18,
  'xac-nhan-tinh-trang-hon-nhan': 12,
  'giay-chung-nhan-quyen-su-dung-dat': 12,
  'giay-phep-lai-xe': 10,
  'phieu-ly-lich-tu-phap': 8,
  'giay-chung-nhan-dang-ky-doanh-nghiep': 7,
  'giay-chung-nhan-ket-hon': 6,
  'trich-luc-khai-tu': 3
} as const

export type SampleType = keyof typeof TYPE_WEIGHTS
export const SAMPLE_TYPES: readonly SampleType[] = Object.freeze(Object.keys(TYPE_WEIGHTS) as SampleType[])

/**
 * Procedure codes (mã TTHC) from the national procedure database. The civil-status and land
 * registration codes are the published ones; the rest (marked) are placeholders of the right
 * shape, to be replaced by the codes the province actually uses.
 */
const PROCEDURES = {
  birth: '1.001193', // Đăng ký khai sinh
  birthWithParentage: '1.000689', // Đăng ký khai sinh kết hợp nhận cha, mẹ, con
  birthReRegistration: '1.004884', // Đăng ký lại khai sinh
  maritalStatus: '1.004873', // Cấp Giấy xác nhận tình trạng hôn nhân
  marriage: '1.000894', // Đăng ký kết hôn
  death: '1.000656', // Đăng ký khai tử
  landFirstRegistration: ['1.012753', '1.013978'], // Đăng ký đất đai, cấp Giấy chứng nhận lần đầu
  criminalRecord: '2.000488', // placeholder: Cấp Phiếu lý lịch tư pháp
  residenceConfirmation: '1.004227', // placeholder: Xác nhận thông tin về cư trú
  drivingLicenceNew: '1.002809', // placeholder: Cấp giấy phép lái xe (sát hạch)
  drivingLicenceRenewal: '1.002804', // placeholder: Cấp đổi giấy phép lái xe
  enterpriseFirst: '1.000956', // placeholder: Đăng ký thành lập doanh nghiệp
  enterpriseChange: '2.001610' // placeholder: Đăng ký thay đổi nội dung đăng ký doanh nghiệp
} as const

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for sample data, not for anything secret. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Rng {
  readonly #next: () => number
  constructor (seed: number) { this.#next = mulberry32(seed) }
  float (): number { return this.#next() }
  /** an integer in [min, max] */
  int (min: number, max: number): number { return min + Math.floor(this.#next() * (max - min + 1)) }
  chance (p: number): boolean { return this.#next() < p }
  pick<T> (items: readonly T[]): T { return items[Math.floor(this.#next() * items.length)] as T }
  weighted<T> (items: ReadonlyArray<readonly [T, number]>): T {
    let total = 0
    for (const [, w] of items) total += w
    let r = this.#next() * total
    for (const [item, w] of items) {
      r -= w
      if (r < 0) return item
    }
    return (items[items.length - 1] as readonly [T, number])[0]
  }
  digits (n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += String(Math.floor(this.#next() * 10))
    return s
  }
}

// ---------------------------------------------------------------------------------------------
// Calendar dates as whole days since 1970-01-01 (UTC), so no time zone or DST ever interferes

const DAY_MS = 86_400_000
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/

function toDay (iso: string): number {
  const m = ISO_DATE.exec(iso)
  if (m === null) throw new RangeError(`not a YYYY-MM-DD date: ${iso}`)
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const ms = Date.UTC(y, mo - 1, d)
  const back = new Date(ms)
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    throw new RangeError(`not a calendar date: ${iso}`)
  }
  return ms / DAY_MS
}

function iso (day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10)
}

function yearOf (day: number): number { return new Date(day * DAY_MS).getUTCFullYear() }

/** dd/mm/yyyy, as dates are written inside Vietnamese text */
function vnDate (day: number): string {
  const [y, m, d] = iso(day).split('-')
  return `${d}/${m}/${y}`
}

/** Adds calendar months; a day that does not exist in the target month becomes its last day. */
function addMonths (day: number, months: number): number {
  const date = new Date(day * DAY_MS)
  const y = date.getUTCFullYear()
  const m = date.getUTCMonth() + months
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate()
  return Date.UTC(y, m, Math.min(date.getUTCDate(), lastDay)) / DAY_MS
}

function addYears (day: number, years: number): number { return addMonths(day, years * 12) }

/** Whole years of age on `day` for someone born on `born`. */
function ageOn (born: number, day: number): number {
  let age = yearOf(day) - yearOf(born)
  if (addYears(born, age) > day) age--
  return age
}

const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$/

/**
 * The last day of validity of a document issued on `from` and valid for an ISO 8601 duration of
 * years, months and days (Civil Code 2015 Art. 148: a period in months ends on the corresponding
 * day of its last month, or on that month's last day).
 */
export function validUntilFor (from: string, duration: string): string {
  const m = DURATION.exec(duration)
  if (m === null || duration === 'P') throw new RangeError(`unsupported ISO 8601 duration: ${duration}`)
  return iso(addMonths(toDay(from), Number(m[1] ?? 0) * 12 + Number(m[2] ?? 0)) + Number(m[3] ?? 0))
}

// ---------------------------------------------------------------------------------------------
// Places: real provinces, districts and wards (before the 2025 reorganization)

interface District { name: string, wards: readonly string[] }
interface Area { code: string, weight: number, districts: readonly District[] }

const AREAS: readonly Area[] = [
  {
    code: '001',
    weight: 84,
    districts: [
      { name: 'quận Ba Đình', wards: ['phường Liễu Giai', 'phường Kim Mã', 'phường Ngọc Hà', 'phường Cống Vị'] },
      { name: 'quận Hoàn Kiếm', wards: ['phường Hàng Bạc', 'phường Tràng Tiền', 'phường Hàng Trống'] },
      { name: 'quận Cầu Giấy', wards: ['phường Dịch Vọng', 'phường Nghĩa Đô', 'phường Yên Hòa', 'phường Quan Hoa'] },
      { name: 'quận Hà Đông', wards: ['phường Văn Quán', 'phường Mộ Lao', 'phường Yết Kiêu'] },
      { name: 'quận Long Biên', wards: ['phường Bồ Đề', 'phường Ngọc Lâm', 'phường Phúc Đồng'] },
      { name: 'huyện Gia Lâm', wards: ['thị trấn Trâu Quỳ', 'xã Bát Tràng', 'xã Đa Tốn'] },
      { name: 'huyện Thanh Trì', wards: ['thị trấn Văn Điển', 'xã Tân Triều'] },
      { name: 'huyện Sóc Sơn', wards: ['thị trấn Sóc Sơn', 'xã Phù Linh'] }
    ]
  },
  {
    code: '079',
    weight: 94,
    districts: [
      { name: 'Quận 1', wards: ['phường Bến Nghé', 'phường Bến Thành', 'phường Đa Kao', 'phường Tân Định'] },
      { name: 'quận Bình Thạnh', wards: ['Phường 13', 'Phường 22', 'Phường 25'] },
      { name: 'quận Gò Vấp', wards: ['Phường 5', 'Phường 10', 'Phường 17'] },
      { name: 'quận Tân Bình', wards: ['Phường 2', 'Phường 4', 'Phường 13'] },
      { name: 'thành phố Thủ Đức', wards: ['phường Linh Trung', 'phường Hiệp Bình Chánh', 'phường Thảo Điền', 'phường An Phú'] },
      { name: 'huyện Củ Chi', wards: ['thị trấn Củ Chi', 'xã Tân Thông Hội', 'xã Phước Vĩnh An'] },
      { name: 'huyện Bình Chánh', wards: ['thị trấn Tân Túc', 'xã Vĩnh Lộc A'] }
    ]
  },
  {
    code: '031',
    weight: 21,
    districts: [
      { name: 'quận Lê Chân', wards: ['phường An Biên', 'phường Dư Hàng Kênh', 'phường Trại Cau'] },
      { name: 'quận Ngô Quyền', wards: ['phường Lạch Tray', 'phường Cầu Đất', 'phường Máy Tơ'] },
      { name: 'huyện Vĩnh Bảo', wards: ['thị trấn Vĩnh Bảo', 'xã Tam Cường'] }
    ]
  },
  {
    code: '048',
    weight: 12,
    districts: [
      { name: 'quận Hải Châu', wards: ['phường Thạch Thang', 'phường Hòa Cường Bắc', 'phường Bình Hiên'] },
      { name: 'quận Sơn Trà', wards: ['phường An Hải Bắc', 'phường Mân Thái', 'phường Phước Mỹ'] },
      { name: 'quận Thanh Khê', wards: ['phường Chính Gián', 'phường Tam Thuận'] },
      { name: 'huyện Hòa Vang', wards: ['xã Hòa Tiến', 'xã Hòa Phong', 'xã Hòa Châu'] }
    ]
  },
  {
    code: '092',
    weight: 13,
    districts: [
      { name: 'quận Ninh Kiều', wards: ['phường An Hòa', 'phường Tân An', 'phường Xuân Khánh'] },
      { name: 'quận Cái Răng', wards: ['phường Hưng Phú', 'phường Lê Bình'] },
      { name: 'huyện Phong Điền', wards: ['thị trấn Phong Điền', 'xã Nhơn Ái'] }
    ]
  },
  {
    code: '038',
    weight: 37,
    districts: [
      { name: 'thành phố Thanh Hóa', wards: ['phường Điện Biên', 'phường Đông Hương', 'phường Ba Đình', 'phường Lam Sơn'] },
      { name: 'huyện Hoằng Hóa', wards: ['thị trấn Bút Sơn'] },
      { name: 'huyện Đông Sơn', wards: ['thị trấn Rừng Thông'] }
    ]
  },
  {
    code: '040',
    weight: 34,
    districts: [
      { name: 'thành phố Vinh', wards: ['phường Hưng Bình', 'phường Lê Lợi', 'phường Trường Thi', 'phường Quang Trung'] },
      { name: 'huyện Diễn Châu', wards: ['thị trấn Diễn Châu'] },
      { name: 'huyện Nam Đàn', wards: ['thị trấn Nam Đàn', 'xã Kim Liên'] }
    ]
  },
  {
    code: '046',
    weight: 12,
    districts: [
      { name: 'thành phố Huế', wards: ['phường Phú Hội', 'phường Vĩnh Ninh', 'phường Thuận Hòa'] },
      { name: 'thị xã Hương Thủy', wards: ['phường Phú Bài'] }
    ]
  },
  {
    code: '022',
    weight: 14,
    districts: [
      { name: 'thành phố Hạ Long', wards: ['phường Bãi Cháy', 'phường Hồng Gai', 'phường Hà Khẩu'] },
      { name: 'thành phố Cẩm Phả', wards: ['phường Cẩm Trung'] },
      { name: 'thành phố Uông Bí', wards: ['phường Quang Trung'] }
    ]
  },
  {
    code: '027',
    weight: 15,
    districts: [
      { name: 'thành phố Bắc Ninh', wards: ['phường Suối Hoa', 'phường Vũ Ninh', 'phường Tiền An'] },
      { name: 'thành phố Từ Sơn', wards: ['phường Đình Bảng'] },
      { name: 'huyện Tiên Du', wards: ['thị trấn Lim'] }
    ]
  },
  {
    code: '036',
    weight: 18,
    districts: [
      { name: 'thành phố Nam Định', wards: ['phường Trần Hưng Đạo', 'phường Năng Tĩnh'] },
      { name: 'huyện Hải Hậu', wards: ['thị trấn Yên Định'] },
      { name: 'huyện Nam Trực', wards: ['thị trấn Nam Giang'] }
    ]
  },
  {
    code: '034',
    weight: 19,
    districts: [
      { name: 'thành phố Thái Bình', wards: ['phường Lê Hồng Phong', 'phường Bồ Xuyên'] },
      { name: 'huyện Vũ Thư', wards: ['thị trấn Vũ Thư'] }
    ]
  },
  {
    code: '019',
    weight: 13,
    districts: [{ name: 'thành phố Thái Nguyên', wards: ['phường Hoàng Văn Thụ', 'phường Phan Đình Phùng'] }]
  },
  {
    code: '010',
    weight: 8,
    districts: [
      { name: 'thành phố Lào Cai', wards: ['phường Cốc Lếu', 'phường Kim Tân'] },
      { name: 'thị xã Sa Pa', wards: ['phường Sa Pa'] }
    ]
  },
  {
    code: '014',
    weight: 13,
    districts: [{ name: 'thành phố Sơn La', wards: ['phường Chiềng Lề', 'phường Tô Hiệu'] }]
  },
  {
    code: '049',
    weight: 15,
    districts: [
      { name: 'thành phố Hội An', wards: ['phường Minh An', 'phường Cẩm Phô'] },
      { name: 'thành phố Tam Kỳ', wards: ['phường An Mỹ'] }
    ]
  },
  {
    code: '052',
    weight: 15,
    districts: [{ name: 'thành phố Quy Nhơn', wards: ['phường Lê Lợi', 'phường Trần Phú', 'phường Hải Cảng'] }]
  },
  {
    code: '056',
    weight: 12,
    districts: [
      { name: 'thành phố Nha Trang', wards: ['phường Lộc Thọ', 'phường Vĩnh Hải', 'phường Phước Hải'] },
      { name: 'thành phố Cam Ranh', wards: ['phường Cam Nghĩa'] }
    ]
  },
  {
    code: '064',
    weight: 16,
    districts: [{ name: 'thành phố Pleiku', wards: ['phường Hội Thương', 'phường Diên Hồng'] }]
  },
  {
    code: '066',
    weight: 19,
    districts: [{ name: 'thành phố Buôn Ma Thuột', wards: ['phường Tân Lợi', 'phường Thắng Lợi', 'phường Tân An'] }]
  },
  {
    code: '068',
    weight: 13,
    districts: [
      { name: 'thành phố Đà Lạt', wards: ['Phường 1', 'Phường 10'] },
      { name: 'thành phố Bảo Lộc', wards: ['phường Lộc Sơn'] }
    ]
  },
  {
    code: '074',
    weight: 27,
    districts: [
      { name: 'thành phố Thủ Dầu Một', wards: ['phường Phú Cường', 'phường Hiệp Thành', 'phường Chánh Nghĩa'] },
      { name: 'thành phố Dĩ An', wards: ['phường Dĩ An', 'phường Đông Hòa'] },
      { name: 'thành phố Thuận An', wards: ['phường Lái Thiêu', 'phường An Phú'] }
    ]
  },
  {
    code: '075',
    weight: 32,
    districts: [
      { name: 'thành phố Biên Hòa', wards: ['phường Tân Phong', 'phường Trảng Dài', 'phường Quyết Thắng'] },
      { name: 'huyện Long Thành', wards: ['thị trấn Long Thành', 'xã An Phước'] }
    ]
  },
  {
    code: '083',
    weight: 13,
    districts: [{ name: 'thành phố Bến Tre', wards: ['phường Phú Khương', 'phường An Hội'] }]
  },
  {
    code: '089',
    weight: 19,
    districts: [
      { name: 'thành phố Long Xuyên', wards: ['phường Mỹ Bình', 'phường Mỹ Long'] },
      { name: 'thành phố Châu Đốc', wards: ['phường Châu Phú A'] }
    ]
  },
  {
    code: '091',
    weight: 17,
    districts: [
      { name: 'thành phố Phú Quốc', wards: ['phường Dương Đông', 'phường An Thới'] },
      { name: 'thành phố Rạch Giá', wards: ['phường Vĩnh Thanh Vân'] }
    ]
  },
  {
    code: '096',
    weight: 12,
    districts: [{ name: 'thành phố Cà Mau', wards: ['Phường 5', 'Phường 7'] }]
  }
]

const AREA_WEIGHTS = AREAS.map((a) => [a, a.weight] as const)
const AREA_BY_CODE = new Map(AREAS.map((a) => [a.code, a]))
const CENTRAL_CITIES = new Set(['001', '031', '048', '079', '092'])

/** First two digits of enterprise (tax) codes registered in the province. */
const TAX_PREFIX: Readonly<Record<string, string>> = {
  '001': '01', '031': '02', '079': '03', '048': '04', '092': '18', '027': '23', '038': '28',
  '040': '29', '075': '36', '074': '37', '056': '42', '022': '57'
}
const BUSINESS_AREAS = AREAS.filter((a) => a.code in TAX_PREFIX).map((a) => [a, a.weight] as const)

function province (code: string): Province { return provinceByCode(code) as Province }

function provinceLabel (code: string): string {
  if (code === '079') return 'Thành phố Hồ Chí Minh'
  return `${CENTRAL_CITIES.has(code) ? 'thành phố' : 'tỉnh'} ${province(code).name}`
}

interface Place { area: Area, district: District, ward: string }

const STREETS = [
  'Trần Phú', 'Lê Lợi', 'Nguyễn Trãi', 'Hai Bà Trưng', 'Quang Trung', 'Lý Thường Kiệt', 'Trần Hưng Đạo',
  'Lê Duẩn', 'Hùng Vương', 'Nguyễn Du', 'Phan Chu Trinh', 'Bà Triệu', 'Điện Biên Phủ', 'Nguyễn Văn Cừ',
  'Lê Hồng Phong', 'Ngô Quyền', 'Phan Đình Phùng', 'Nguyễn Thị Minh Khai', 'Võ Thị Sáu', 'Hoàng Diệu'
]
const HAMLETS_NORTH = ['Đông', 'Tây', 'Nam', 'Bắc', 'Trung', 'Thượng', 'Hạ', 'Đoài', 'Đình', 'Chùa']
const HAMLETS_SOUTH = ['Bình Hòa', 'Tân Lợi', 'Phú Thạnh', 'An Bình', 'Long Hưng', 'Mỹ Lộc', 'Tân Phú', 'Hòa Thuận']

function placeText (p: Place): string {
  return `${p.ward}, ${p.district.name}, ${provinceLabel(p.area.code)}`
}

function officeText (p: Place): string {
  return `Ủy ban nhân dân ${placeText(p)}`
}

// ---------------------------------------------------------------------------------------------
// People

type Gender = 'Nam' | 'Nữ'

interface Person {
  id: string
  fullName: string
  gender: Gender
  born: number
  birthProvince: Province
  ethnicity: string
  hometown: string
  home: Place
  address: string
  /** catalogue codes this person already holds a sample document of */
  holds: Set<string>
}

const FAMILY_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['Nguyễn', 38], ['Trần', 11], ['Lê', 9.5], ['Phạm', 7], ['Hoàng/Huỳnh', 5.1], ['Phan', 4.5],
  ['Vũ/Võ', 3.9], ['Đặng', 2.1], ['Bùi', 2], ['Đỗ', 1.4], ['Hồ', 1.3], ['Ngô', 1.3], ['Dương', 1],
  ['Lý', 0.5], ['Đinh', 0.9], ['Đào', 0.8], ['Trương', 0.8], ['Mai', 0.6], ['Lương', 0.5], ['Tạ', 0.3],
  ['Hà', 0.5], ['Cao', 0.5], ['Lâm', 0.4], ['Trịnh', 0.5], ['Tô', 0.3], ['Châu', 0.3], ['Lưu', 0.3]
]
const MIDDLE_MALE: ReadonlyArray<readonly [string, number]> = [
  ['Văn', 30], ['Minh', 10], ['Đức', 8], ['Quốc', 6], ['Hữu', 6], ['Quang', 6], ['Đình', 5], ['Công', 5],
  ['Thanh', 5], ['Gia', 4], ['Anh', 4], ['Xuân', 3], ['Tiến', 3], ['Trung', 3], ['Hoàng', 3], ['Ngọc', 2]
]
const MIDDLE_FEMALE: ReadonlyArray<readonly [string, number]> = [
  ['Thị', 40], ['Ngọc', 8], ['Thu', 6], ['Thanh', 6], ['Minh', 5], ['Phương', 4], ['Hồng', 4], ['Kim', 4],
  ['Thùy', 4], ['Bảo', 3], ['Khánh', 3], ['Mai', 3], ['Diệu', 2], ['Hải', 2]
]
const GIVEN_MALE = [
  'Anh', 'Bình', 'Cường', 'Dũng', 'Đạt', 'Hải', 'Hùng', 'Huy', 'Hoàng', 'Khánh', 'Long', 'Minh', 'Nam',
  'Phong', 'Phúc', 'Quân', 'Sơn', 'Thắng', 'Thành', 'Trung', 'Tuấn', 'Tùng', 'Việt', 'Vinh', 'Khôi',
  'Bảo', 'Đức', 'Hiếu', 'Kiên', 'Lâm', 'Tài', 'Toàn', 'Hưng', 'Nghĩa', 'Quang', 'Thịnh'
]
const GIVEN_FEMALE = [
  'An', 'Anh', 'Châu', 'Chi', 'Dung', 'Giang', 'Hà', 'Hằng', 'Hạnh', 'Hiền', 'Hoa', 'Hương', 'Huyền',
  'Lan', 'Linh', 'Loan', 'Mai', 'My', 'Nga', 'Ngân', 'Ngọc', 'Nhung', 'Oanh', 'Phương', 'Quỳnh', 'Thảo',
  'Trang', 'Trâm', 'Tuyết', 'Vân', 'Yến', 'Thư', 'Vy', 'Nhi', 'Hồng', 'Thủy'
]
const ETHNICITIES: Readonly<Record<Province['region'], ReadonlyArray<readonly [string, number]>>> = {
  north: [['Kinh', 85], ['Tày', 4], ['Thái', 3], ['Mường', 3], ['Nùng', 2], ['Mông', 2], ['Dao', 1]],
  central: [['Kinh', 92], ['Mường', 2], ['Thái', 2], ['Gia Rai', 2], ['Ê Đê', 2]],
  south: [['Kinh', 93], ['Khmer', 5], ['Hoa', 2]]
}

// ---------------------------------------------------------------------------------------------
// The generator

interface Built {
  subject: SampleDocument['subject']
  documentNumber: string
  procedureCode: string
  issued: number
  validUntil?: string
  data: Record<string, unknown>
  /** receiving agency's province, for the dossier code */
  place: Place
  /** working days the dossier took, to back-date its receipt */
  processingDays: number
}

const MAX_POOL = 200_000

class World {
  readonly rng: Rng
  readonly asOf: number
  readonly people: Person[] = []
  readonly #usedNumbers = new Map<string, Set<string>>()
  readonly #usedCitizenIds = new Set<string>()
  readonly #usedTaxCodes = new Set<string>()
  readonly #counters = new Map<string, number>()

  constructor (seed: number, asOf: number) {
    this.rng = new Rng(seed)
    this.asOf = asOf
  }

  /** a day in [from, to] (or `from` when the range is empty) */
  day (from: number, to: number): number {
    const a = Math.floor(from)
    const b = Math.floor(to)
    return b <= a ? a : this.rng.int(a, b)
  }

  place (area?: Area): Place {
    const a = area ?? this.rng.weighted(AREA_WEIGHTS)
    const district = this.rng.pick(a.districts)
    return { area: a, district, ward: this.rng.pick(district.wards) }
  }

  /** a street address inside a place, worded as the region words it */
  address (p: Place): string {
    const r = this.rng
    const region = province(p.area.code).region
    let local: string
    if (p.ward.startsWith('xã')) {
      local = region === 'south' ? `Ấp ${r.pick(HAMLETS_SOUTH)}` : r.chance(0.5) ? `Thôn ${r.pick(HAMLETS_NORTH)}` : `Xóm ${r.int(1, 12)}`
    } else if (p.ward.startsWith('thị trấn')) {
      local = region === 'south' ? `Khu phố ${r.int(1, 8)}` : `Tổ dân phố ${r.int(1, 15)}`
    } else if (region === 'north' && r.chance(0.5)) {
      local = `Số ${r.int(1, 80)} ngõ ${r.int(2, 300)} phố ${r.pick(STREETS)}`
    } else {
      local = `Số ${r.int(1, 350)} đường ${r.pick(STREETS)}`
    }
    return `${local}, ${placeText(p)}`
  }

  familyName (region: Province['region']): string {
    const name = this.rng.weighted(FAMILY_NAMES)
    if (name === 'Hoàng/Huỳnh') return region === 'south' || (region === 'central' && this.rng.chance(0.5)) ? 'Huỳnh' : 'Hoàng'
    if (name === 'Vũ/Võ') return region === 'north' ? 'Vũ' : 'Võ'
    return name
  }

  /** middle and given names; younger women less often carry "Thị", and some children get two middle names */
  givenNames (gender: Gender, bornYear: number): string {
    const r = this.rng
    let middle = r.weighted(gender === 'Nam' ? MIDDLE_MALE : MIDDLE_FEMALE)
    if (middle === 'Thị' && bornYear >= 2000 && r.chance(0.6)) middle = r.weighted(MIDDLE_FEMALE.slice(1))
    if (middle === 'Văn' && bornYear >= 2005 && r.chance(0.5)) middle = r.weighted(MIDDLE_MALE.slice(1))
    const given = r.pick(gender === 'Nam' ? GIVEN_MALE : GIVEN_FEMALE)
    if (bornYear >= 2005 && r.chance(0.15)) {
      const second = r.weighted((gender === 'Nam' ? MIDDLE_MALE : MIDDLE_FEMALE).slice(1))
      if (second !== middle && second !== given) return `${middle} ${second} ${given}`
    }
    return middle === given ? `${middle} ${r.pick(gender === 'Nam' ? GIVEN_MALE : GIVEN_FEMALE)}` : `${middle} ${given}`
  }

  fullName (gender: Gender, bornYear: number, region: Province['region'], family?: string): string {
    return `${family ?? this.familyName(region)} ${this.givenNames(gender, bornYear)}`
  }

  citizenId (birthProvince: Province, gender: Gender, born: number): string {
    const year = yearOf(born)
    const head = birthProvince.code + String(genderCenturyDigit(gender === 'Nam' ? 'male' : 'female', year)) + String(year % 100).padStart(2, '0')
    for (;;) {
      const id = head + this.rng.digits(6)
      if (!this.#usedCitizenIds.has(id)) {
        this.#usedCitizenIds.add(id)
        return id
      }
    }
  }

  person (opts: { bornFrom: number, bornTo: number, gender?: Gender, home?: Place, family?: string }): Person {
    const r = this.rng
    const gender = opts.gender ?? (r.chance(0.5) ? 'Nam' : 'Nữ')
    const born = this.day(opts.bornFrom, opts.bornTo)
    const home = opts.home ?? this.place()
    // most people still live in the province where their birth was registered
    const birthProvince = r.chance(0.7) ? province(home.area.code) : r.pick(PROVINCES)
    const region = birthProvince.region
    const originArea = AREA_BY_CODE.get(birthProvince.code)
    return {
      id: this.citizenId(birthProvince, gender, born),
      fullName: this.fullName(gender, yearOf(born), region, opts.family),
      gender,
      born,
      birthProvince,
      ethnicity: r.weighted(ETHNICITIES[region]),
      hometown: placeText(this.place(originArea !== undefined && r.chance(0.8) ? originArea : undefined)),
      home,
      address: this.address(home),
      holds: new Set()
    }
  }

  /**
   * The subject of a citizen document: often someone who already holds other sample documents
   * (so that a reuse query finds several results for one citizen), otherwise a new person.
   */
  subjectFor (type: SampleType, minAge: number, fresh: { bornFrom: number, bornTo: number, gender?: Gender }): Person {
    const latestBirth = addYears(this.asOf, -minAge)
    if (this.people.length > 0 && this.rng.chance(0.35)) {
      for (let tries = 0; tries < 4; tries++) {
        const p = this.rng.pick(this.people)
        if (!p.holds.has(type) && p.born <= latestBirth && (fresh.gender === undefined || fresh.gender === p.gender)) return this.#hold(p, type)
      }
    }
    const bornTo = Math.min(fresh.bornTo, latestBirth)
    const p = this.person({ ...fresh, bornFrom: Math.min(fresh.bornFrom, bornTo), bornTo })
    if (this.people.length < MAX_POOL) this.people.push(p)
    return this.#hold(p, type)
  }

  #hold (p: Person, type: SampleType): Person {
    p.holds.add(type)
    return p
  }

  /** a document number not used before for this type */
  unique (type: string, make: () => string): string {
    let used = this.#usedNumbers.get(type)
    if (used === undefined) this.#usedNumbers.set(type, used = new Set())
    for (;;) {
      const n = make()
      if (!used.has(n)) {
        used.add(n)
        return n
      }
    }
  }

  /** the next number of a register (per type and year), starting somewhere plausible */
  next (key: string): number {
    const n = (this.#counters.get(key) ?? this.rng.int(1, 40)) + this.rng.int(1, 3)
    this.#counters.set(key, n)
    return n
  }

  taxCode (area: Area): string {
    const prefix = TAX_PREFIX[area.code] ?? '01'
    for (;;) {
      const nine = prefix + this.rng.digits(7)
      const check = taxCodeCheckDigit(nine)
      if (check === undefined) continue
      const code = nine + String(check)
      if (!this.#usedTaxCodes.has(code)) {
        this.#usedTaxCodes.add(code)
        return code
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One builder per document type

type Builder = (w: World) => Built

const YEAR = 365.25

function citizen (p: Person): SampleDocument['subject'] { return { kind: 'citizen', id: p.id } }

function registerBook (w: World, year: number): string {
  return `${String(w.rng.int(1, 3)).padStart(2, '0')}/${year}`
}

function hospitalFor (w: World, p: Place): string {
  const byCity: Record<string, readonly string[]> = {
    '001': ['Bệnh viện Phụ sản Hà Nội', 'Bệnh viện Phụ sản Trung ương', 'Bệnh viện Bạch Mai'],
    '079': ['Bệnh viện Từ Dũ', 'Bệnh viện Hùng Vương'],
    '031': ['Bệnh viện Phụ sản Hải Phòng'],
    '048': ['Bệnh viện Phụ sản - Nhi Đà Nẵng'],
    '092': ['Bệnh viện Phụ sản thành phố Cần Thơ']
  }
  const city = byCity[p.area.code]
  if (city !== undefined && w.rng.chance(0.8)) return w.rng.pick(city)
  return w.rng.chance(0.6) ? `Bệnh viện Đa khoa ${provinceLabel(p.area.code)}` : `Trung tâm Y tế ${p.district.name}`
}

const birthCertificate: Builder = (w) => {
  const r = w.rng
  const recent = r.chance(0.65)
  const p = w.subjectFor('giay-khai-sinh', 0, recent
    ? { bornFrom: w.asOf - 9 * YEAR, bornTo: w.asOf - 1 }
    : { bornFrom: toDay('1950-01-01'), bornTo: w.asOf - 9 * YEAR })
  const bornYear = yearOf(p.born)
  const reRegistration = bornYear < 1995 && r.chance(0.3)
  const issued = reRegistration ? w.day(Math.max(p.born + 18 * YEAR, toDay('2016-01-01')), w.asOf) : Math.min(p.born + r.int(1, 60), w.asOf)
  const withFather = r.chance(0.95)
  const fatherFamily = p.fullName.split(' ')[0] as string
  const region = p.birthProvince.region
  const parent = (gender: Gender, family?: string): Record<string, unknown> => {
    const year = bornYear - (gender === 'Nam' ? r.int(22, 40) : r.int(18, 38))
    return {
      fullName: w.fullName(gender, year, region, family),
      yearOfBirth: year,
      ethnicity: p.ethnicity,
      nationality: 'Việt Nam',
      residence: placeText(p.home)
    }
  }
  // registered where the parents live (the commune of the father's or mother's residence)
  const registrar = p.home
  const placeOfBirth = bornYear >= 1995 && r.chance(0.85)
    ? `${hospitalFor(w, p.home)}, ${provinceLabel(p.home.area.code)}`
    : placeText(w.place(AREA_BY_CODE.get(p.birthProvince.code) ?? p.home.area))
  const withParentage = !reRegistration && withFather && r.chance(0.04)
  const year = yearOf(issued)
  const data: Record<string, unknown> = {
    fullName: p.fullName,
    gender: p.gender,
    dateOfBirth: iso(p.born),
    placeOfBirth,
    ethnicity: p.ethnicity,
    nationality: 'Việt Nam',
    hometown: p.hometown,
    ...(withFather ? { father: parent('Nam', fatherFamily) } : {}),
    mother: parent('Nữ', withFather ? undefined : fatherFamily),
    registrationPlace: officeText(registrar),
    registrationDate: iso(issued),
    registrationBookNumber: registerBook(w, year)
  }
  if (reRegistration) data.notes = 'Đăng ký lại khai sinh'
  else if (withParentage) data.notes = 'Đăng ký khai sinh kết hợp nhận cha, con'
  return {
    subject: citizen(p),
    documentNumber: w.unique('giay-khai-sinh', () => `${w.next(`ks:${year}`)}/${year}/TP-KS`),
    procedureCode: reRegistration ? PROCEDURES.birthReRegistration : withParentage ? PROCEDURES.birthWithParentage : PROCEDURES.birth,
    issued,
    data,
    place: registrar,
    processingDays: reRegistration ? 5 : 1
  }
}

const maritalStatus: Builder = (w) => {
  const r = w.rng
  const p = w.subjectFor('xac-nhan-tinh-trang-hon-nhan', 18, { bornFrom: toDay('1960-01-01'), bornTo: w.asOf })
  const issued = w.day(Math.max(w.asOf - 2 * YEAR, addYears(p.born, 18)), w.asOf)
  const age = ageOn(p.born, issued)
  const status = r.weighted<string>(age < 25
    ? [['chưa kết hôn', 90], ['đang có vợ/chồng', 10]]
    : age < 36
      ? [['chưa kết hôn', 55], ['đang có vợ/chồng', 35], ['đã ly hôn', 8], ['góa', 2]]
      : [['chưa kết hôn', 15], ['đang có vợ/chồng', 55], ['đã ly hôn', 20], ['góa', 10]])
  const other: Gender = p.gender === 'Nam' ? 'Nữ' : 'Nam'
  const partner = w.fullName(other, yearOf(p.born), p.birthProvince.region)
  const title = other === 'Nam' ? 'ông' : 'bà'
  const courtPlace = w.place(p.home.area)
  const details: Record<string, string> = {
    'chưa kết hôn': 'Chưa đăng ký kết hôn với ai',
    'đang có vợ/chồng': `Đang có ${other === 'Nam' ? 'chồng' : 'vợ'} là ${title} ${partner}`,
    'đã ly hôn': `Đã ly hôn với ${title} ${partner} theo Bản án số ${r.int(10, 400)}/${yearOf(issued) - r.int(1, 8)}/HNGĐ-ST của Tòa án nhân dân ${courtPlace.district.name}`,
    góa: `${other === 'Nam' ? 'Chồng' : 'Vợ'} là ${title} ${partner} đã chết`
  }
  const purpose = status === 'chưa kết hôn' && r.chance(0.7)
    ? `Đăng ký kết hôn với ${title} ${partner}`
    : r.pick(['Bổ sung hồ sơ vay vốn ngân hàng', 'Làm thủ tục chuyển nhượng quyền sử dụng đất', 'Bổ sung hồ sơ xin việc', 'Làm thủ tục đi lao động ở nước ngoài'])
  const data: Record<string, unknown> = {
    fullName: p.fullName,
    dateOfBirth: iso(p.born),
    gender: p.gender,
    ethnicity: p.ethnicity,
    nationality: 'Việt Nam',
    ...(yearOf(p.born) < 1990 && r.chance(0.1) ? { idNumber: r.digits(9) } : {}),
    residence: p.address,
    maritalStatus: status,
    maritalStatusDetails: details[status],
    purpose,
    validityNote: 'Giấy này có giá trị 6 tháng kể từ ngày cấp'
  }
  const year = yearOf(issued)
  return {
    subject: citizen(p),
    documentNumber: w.unique('xac-nhan-tinh-trang-hon-nhan', () => `${w.next(`xn:${year}`)}/${year}/XNTTHN`),
    procedureCode: PROCEDURES.maritalStatus,
    issued,
    data,
    place: p.home,
    processingDays: 3
  }
}

const OFFENCES_2015 = [
  'Trộm cắp tài sản (Điều 173 Bộ luật Hình sự 2015)',
  'Cố ý gây thương tích (Điều 134 Bộ luật Hình sự 2015)',
  'Đánh bạc (Điều 321 Bộ luật Hình sự 2015)',
  'Vi phạm quy định về tham gia giao thông đường bộ (Điều 260 Bộ luật Hình sự 2015)',
  'Lừa đảo chiếm đoạt tài sản (Điều 174 Bộ luật Hình sự 2015)'
]
const OFFENCES_1999 = [
  'Trộm cắp tài sản (Điều 138 Bộ luật Hình sự 1999)',
  'Cố ý gây thương tích (Điều 104 Bộ luật Hình sự 1999)',
  'Đánh bạc (Điều 248 Bộ luật Hình sự 1999)',
  'Vi phạm quy định về điều khiển phương tiện giao thông đường bộ (Điều 202 Bộ luật Hình sự 1999)',
  'Lừa đảo chiếm đoạt tài sản (Điều 139 Bộ luật Hình sự 1999)'
]
const PENALTIES = [
  '06 tháng tù cho hưởng án treo, thời gian thử thách 12 tháng',
  '09 tháng tù',
  '18 tháng tù',
  'Cải tạo không giam giữ 12 tháng',
  'Phạt tiền 20.000.000 đồng'
]

const criminalRecord: Builder = (w) => {
  const r = w.rng
  const p = w.subjectFor('phieu-ly-lich-tu-phap', 18, { bornFrom: toDay('1960-01-01'), bornTo: w.asOf })
  const issued = w.day(Math.max(w.asOf - 2 * YEAR, addYears(p.born, 18)), w.asOf)
  const form = r.chance(0.85) ? 1 : 2
  const adult = addYears(p.born, 18)
  const convictions: Array<Record<string, unknown>> = []
  if (issued - adult > 2 * YEAR && r.chance(0.06)) {
    for (let i = r.chance(0.8) ? 1 : 2; i > 0; i--) {
      const judged = w.day(adult, issued - YEAR)
      const expunged = issued - judged > 5 * YEAR && r.chance(0.5)
      // an extract no. 1 does not show expunged convictions
      if (expunged && form === 1) continue
      const court = w.place(p.home.area)
      convictions.push({
        judgmentNumber: `${r.int(5, 350)}/${yearOf(judged)}/HS-ST`,
        judgmentDate: iso(judged),
        court: `Tòa án nhân dân ${court.district.name}, ${provinceLabel(court.area.code)}`,
        offence: r.pick(judged < toDay('2018-01-01') ? OFFENCES_1999 : OFFENCES_2015),
        penalty: r.pick(PENALTIES),
        judgmentExecuted: true,
        ...(form === 2 ? { expunged } : {})
      })
    }
    convictions.sort((a, b) => String(a.judgmentDate).localeCompare(String(b.judgmentDate)))
  }
  const region = p.birthProvince.region
  const data: Record<string, unknown> = {
    form,
    fullName: p.fullName,
    gender: p.gender,
    dateOfBirth: iso(p.born),
    placeOfBirth: placeText(w.place(AREA_BY_CODE.get(p.birthProvince.code) ?? p.home.area)),
    nationality: 'Việt Nam',
    residence: p.address,
    ...(form === 2
      ? {
          fatherName: w.fullName('Nam', yearOf(p.born) - 25, region, p.fullName.split(' ')[0]),
          motherName: w.fullName('Nữ', yearOf(p.born) - 23, region)
        }
      : {}),
    criminalRecord: convictions.length === 0 ? 'Không có án tích' : convictions
  }
  if (r.chance(0.3)) {
    data.banOnPositions = { banned: false, details: 'Không bị cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp, hợp tác xã' }
  }
  const year = yearOf(issued)
  return {
    subject: citizen(p),
    documentNumber: w.unique('phieu-ly-lich-tu-phap', () => `${w.next(`lltp:${year}`)}/${year}/LLTP`),
    procedureCode: PROCEDURES.criminalRecord,
    issued,
    data,
    place: p.home,
    processingDays: 10
  }
}

const LAND_ORIGINS = [
  'Nhà nước giao đất có thu tiền sử dụng đất',
  'Công nhận quyền sử dụng đất như giao đất có thu tiền sử dụng đất',
  'Nhận chuyển nhượng đất được công nhận quyền sử dụng đất như giao đất có thu tiền sử dụng đất',
  'Nhận thừa kế đất được công nhận quyền sử dụng đất như giao đất có thu tiền sử dụng đất'
]
const LAND_NAMES: Record<string, string> = {
  ODT: 'Đất ở tại đô thị',
  ONT: 'Đất ở tại nông thôn',
  CLN: 'Đất trồng cây lâu năm',
  LUC: 'Đất chuyên trồng lúa',
  HNK: 'Đất trồng cây hằng năm khác',
  TMD: 'Đất thương mại, dịch vụ',
  SKC: 'Đất cơ sở sản xuất phi nông nghiệp'
}
const SERIES = ['AA', 'AB', 'AC', 'BA', 'BB', 'BC', 'BD', 'BE', 'BH', 'BK', 'BL', 'BM', 'BN', 'BO', 'BP', 'BR', 'BS', 'BT', 'BU', 'BV', 'BX', 'BY', 'CA', 'CB', 'CD', 'CE', 'CH', 'CK', 'CL', 'CM', 'CN', 'CO', 'CP', 'CQ', 'CR', 'CS', 'CT', 'CU', 'CV', 'CX', 'CY', 'DA', 'DB', 'DC']

/** one decimal place, as areas are printed */
function area (w: World, min: number, max: number): number {
  return Math.round((min + w.rng.float() * (max - min)) * 10) / 10
}

const landCertificate: Builder = (w) => {
  const r = w.rng
  const organization = r.chance(0.1)
  const issued = w.day(toDay('2005-01-01'), w.asOf)
  let subject: SampleDocument['subject']
  let owners: Array<Record<string, unknown>>
  let place: Place
  let purposes: Array<Record<string, unknown>>
  let term: string
  let origin: string
  let houses: Array<Record<string, unknown>> | undefined
  const fiftyYears = `Đến ngày ${vnDate(addYears(issued, 50))}`
  if (organization) {
    const a = r.weighted(BUSINESS_AREAS)
    place = w.place(a)
    const id = w.taxCode(a)
    subject = { kind: 'organization', id }
    owners = [{ fullName: `Công ty ${r.pick(['TNHH', 'Cổ phần'])} ${r.pick(BUSINESS_WORDS)[0]} ${r.pick(BRANDS)}`, address: w.address(w.place(a)) }]
    const code = r.chance(0.6) ? 'TMD' : 'SKC'
    purposes = [{ code, name: LAND_NAMES[code], areaM2: area(w, 800, 20000) }]
    term = fiftyYears
    origin = 'Nhà nước cho thuê đất trả tiền thuê đất hằng năm'
  } else {
    const p = w.subjectFor('giay-chung-nhan-quyen-su-dung-dat', 18, { bornFrom: toDay('1945-01-01'), bornTo: w.asOf })
    subject = citizen(p)
    place = w.place(p.home.area)
    owners = [{ fullName: p.fullName, yearOfBirth: yearOf(p.born), address: p.address }]
    if (r.chance(0.45)) {
      const spouseGender: Gender = p.gender === 'Nam' ? 'Nữ' : 'Nam'
      const spouse = w.person({ bornFrom: p.born - 3 * YEAR, bornTo: p.born + 5 * YEAR, gender: spouseGender, home: p.home })
      owners.push({ fullName: spouse.fullName, idNumber: spouse.id, yearOfBirth: yearOf(spouse.born), address: p.address })
      for (const o of owners) o.share = 0.5
    }
    const kind = place.ward.startsWith('xã') ? r.pick(['rural', 'farm']) : 'urban'
    if (kind === 'urban') {
      purposes = [{ code: 'ODT', name: LAND_NAMES.ODT, areaM2: area(w, 35, 220) }]
      term = 'Lâu dài'
      origin = r.pick(LAND_ORIGINS)
    } else if (kind === 'rural') {
      purposes = [
        { code: 'ONT', name: LAND_NAMES.ONT, areaM2: area(w, 100, 400) },
        { code: 'CLN', name: LAND_NAMES.CLN, areaM2: area(w, 50, 600) }
      ]
      term = `Đất ở: Lâu dài; Đất trồng cây lâu năm: ${fiftyYears.toLowerCase()}`
      origin = r.pick(LAND_ORIGINS)
    } else {
      const code = r.chance(0.6) ? 'LUC' : 'HNK'
      purposes = [{ code, name: LAND_NAMES[code], areaM2: area(w, 300, 3000) }]
      term = fiftyYears
      origin = 'Nhà nước giao đất không thu tiền sử dụng đất'
    }
    const residential = purposes[0] as { code: string, areaM2: number }
    if (residential.code === 'ODT' || residential.code === 'ONT') {
      if (r.chance(0.7)) {
        const footprint = Math.round(residential.areaM2 * (0.5 + r.float() * 0.45) * 10) / 10
        const floors = residential.code === 'ODT' ? r.int(1, 5) : r.int(1, 2)
        houses = [{
          type: 'Nhà ở riêng lẻ',
          constructionAreaM2: footprint,
          floorAreaM2: Math.round(footprint * floors * 10) / 10,
          floors,
          structure: r.pick(['Bê tông cốt thép', 'Tường gạch, mái ngói', 'Tường gạch, mái tôn']),
          ownershipTerm: 'Lâu dài'
        }]
      }
    }
  }
  const total = Math.round(purposes.reduce((sum, x) => sum + (x.areaM2 as number), 0) * 10) / 10
  const serial = w.unique('giay-chung-nhan-quyen-su-dung-dat', () => `${r.pick(SERIES)} ${r.digits(6)}`)
  const data: Record<string, unknown> = {
    certificateSerial: serial,
    entryNumber: `CS ${String(w.next(`gcn:${place.area.code}`)).padStart(5, '0')}`,
    owners,
    parcelNumber: r.int(1, 1500),
    mapSheetNumber: r.int(1, 90),
    address: w.address(place),
    areaM2: total,
    usageForm: owners.length > 1 ? 'Sử dụng chung' : 'Sử dụng riêng',
    landUsePurposes: purposes,
    landUseTerm: term,
    landUseOrigin: origin,
    ...(houses !== undefined ? { housingAndAssets: { houses } } : {})
  }
  return {
    subject,
    documentNumber: serial,
    procedureCode: r.pick(PROCEDURES.landFirstRegistration),
    issued,
    data,
    place,
    processingDays: 20
  }
}

const BUSINESS_WORDS: ReadonlyArray<readonly [string, string]> = [
  ['Thương mại', 'Trading'], ['Dịch vụ', 'Services'], ['Xây dựng', 'Construction'], ['Đầu tư', 'Investment'],
  ['Sản xuất', 'Manufacturing'], ['Công nghệ', 'Technology'], ['Vận tải', 'Transport'], ['Thực phẩm', 'Food'],
  ['Du lịch', 'Tourism'], ['Kỹ thuật', 'Engineering'], ['Nông sản', 'Agricultural Products'], ['Giáo dục', 'Education']
]
const BRANDS = [
  'An Phát', 'Hưng Thịnh', 'Minh Khang', 'Phú Quý', 'Thành Đạt', 'Sao Việt', 'Hoàng Long', 'Đại Phát',
  'Tân Tiến', 'Phương Nam', 'Bắc Hà', 'Trường An', 'Nam Việt', 'Gia Bảo', 'Thiên Ân', 'Kim Ngân',
  'Hải Đăng', 'Việt Tín', 'Quang Minh', 'Đông Á', 'Hồng Phúc', 'An Khang', 'Thái Sơn', 'Bình Minh'
]
const ENTERPRISE_TYPES: ReadonlyArray<readonly [{ vi: string, prefix: string, en: string, abbr: string }, number]> = [
  [{ vi: 'Công ty trách nhiệm hữu hạn một thành viên', prefix: 'Công ty TNHH', en: 'Company Limited', abbr: 'Co., Ltd' }, 45],
  [{ vi: 'Công ty trách nhiệm hữu hạn hai thành viên trở lên', prefix: 'Công ty TNHH', en: 'Company Limited', abbr: 'Co., Ltd' }, 20],
  [{ vi: 'Công ty cổ phần', prefix: 'Công ty Cổ phần', en: 'Joint Stock Company', abbr: 'JSC' }, 25],
  [{ vi: 'Doanh nghiệp tư nhân', prefix: 'Doanh nghiệp tư nhân', en: 'Private Enterprise', abbr: '' }, 9],
  [{ vi: 'Công ty hợp danh', prefix: 'Công ty Hợp danh', en: 'Partnership', abbr: '' }, 1]
]

/** "Phú Quý" → "PHU QUY": names in a foreign language are written without diacritics */
function ascii (s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'D')
}

const enterpriseRegistration: Builder = (w) => {
  const r = w.rng
  const a = r.weighted(BUSINESS_AREAS)
  const place = w.place(a)
  const code = w.taxCode(a)
  const type = r.weighted(ENTERPRISE_TYPES)
  const [sectorVi, sectorEn] = r.pick(BUSINESS_WORDS)
  const [sector2Vi, sector2En] = r.pick(BUSINESS_WORDS)
  const brand = r.pick(BRANDS)
  const twoSectors = sector2Vi !== sectorVi && r.chance(0.5)
  const coreVi = twoSectors ? `${sectorVi} và ${sector2Vi.toLowerCase()} ${brand}` : `${sectorVi} ${brand}`
  const coreEn = twoSectors ? `${ascii(brand)} ${sectorEn} and ${sector2En}` : `${ascii(brand)} ${sectorEn}`
  const first = w.day(toDay('2005-01-01'), w.asOf)
  const changes = r.chance(0.5) ? 0 : r.int(1, 8)
  const issued = changes === 0 ? first : w.day(Math.min(first + 30, w.asOf), w.asOf)
  const representatives = Array.from({ length: r.chance(0.9) ? 1 : 2 }, (_, i) => {
    const rep = w.person({ bornFrom: toDay('1955-01-01'), bornTo: addYears(first, -22), home: place })
    const position = type.vi === 'Doanh nghiệp tư nhân'
      ? 'Chủ doanh nghiệp'
      : type.vi === 'Công ty hợp danh'
        ? 'Thành viên hợp danh'
        : i === 0 ? (type.vi === 'Công ty cổ phần' ? 'Tổng giám đốc' : 'Giám đốc') : 'Chủ tịch Hội đồng quản trị'
    return { fullName: rep.fullName, gender: rep.gender, dateOfBirth: iso(rep.born), nationality: 'Việt Nam', idNumber: rep.id, position }
  })
  const capital = type.vi === 'Công ty cổ phần'
    ? r.pick([1, 2, 5, 10, 20, 50, 100, 300]) * 1_000_000_000
    : r.pick([100, 200, 500, 800, 1000, 2000, 5000, 10000]) * 1_000_000
  const office = issued >= toDay('2025-03-01') ? 'Sở Tài chính' : 'Sở Kế hoạch và Đầu tư'
  const data: Record<string, unknown> = {
    enterpriseCode: code,
    enterpriseName: {
      vi: `${type.prefix} ${coreVi}`.toUpperCase(),
      en: `${coreEn} ${type.en}`.toUpperCase(),
      ...(type.abbr !== '' ? { abbreviation: `${ascii(brand)} ${type.abbr}`.toUpperCase() } : {})
    },
    enterpriseType: type.vi,
    headOfficeAddress: w.address(place),
    phone: `09${r.digits(8)}`,
    ...(r.chance(0.6) ? { email: `lienhe@${ascii(brand).toLowerCase().replace(/ /g, '')}${r.int(1, 99)}.vn` } : {}),
    charterCapitalVnd: capital,
    legalRepresentatives: representatives,
    firstRegistrationDate: iso(first),
    registrationNumberOfChange: changes,
    ...(changes > 0 ? { lastChangeDate: iso(issued) } : {}),
    registrationOffice: `Phòng Đăng ký kinh doanh - ${office} ${provinceLabel(a.code)}`
  }
  return {
    subject: { kind: 'organization', id: code },
    documentNumber: w.unique('giay-chung-nhan-dang-ky-doanh-nghiep', () => code),
    procedureCode: changes === 0 ? PROCEDURES.enterpriseFirst : PROCEDURES.enterpriseChange,
    issued,
    data,
    place,
    processingDays: 3
  }
}

const drivingLicence: Builder = (w) => {
  const r = w.rng
  const p = w.subjectFor('giay-phep-lai-xe', 18, { bornFrom: toDay('1960-01-01'), bornTo: w.asOf })
  const earliest = addYears(p.born, 18)
  const issued = w.day(Math.max(w.asOf - 12 * YEAR, earliest), w.asOf)
  const newLaw = issued >= toDay('2025-01-01')
  const male = p.gender === 'Nam'
  // class → last day of validity (undefined: no term)
  const expiry = (cls: string, granted: number): number | undefined => {
    if (newLaw) {
      if (cls === 'A1' || cls === 'A' || cls === 'B1') return undefined
      return addYears(granted, cls === 'B' || cls === 'C1' ? 10 : 5)
    }
    if (cls === 'A1' || cls === 'A2' || cls === 'A3') return undefined
    if (cls === 'A4' || cls === 'B2') return addYears(granted, 10)
    if (cls === 'B1') {
      // until the driver turns 60 (men) or 55 (women); 10 years for those already over 50 / 45
      return ageOn(p.born, granted) > (male ? 50 : 45) ? addYears(granted, 10) : addYears(p.born, male ? 60 : 55)
    }
    return addYears(granted, 5)
  }
  const combos: ReadonlyArray<readonly [readonly string[], number]> = newLaw
    ? [[['A1'], 30], [['B'], 25], [['A1', 'B'], 30], [['A', 'B'], 5], [['A1', 'C1'], 5], [['B', 'C'], 5]]
    : [[['A1'], 35], [['B2'], 25], [['A1', 'B2'], 30], [['A1', 'C'], 5], [['B1'], 5]]
  const classes = r.weighted(combos).map((cls, i, all) => {
    // the motorbike class is usually older than the car class on a combined licence
    const granted = i === 0 && all.length > 1 ? w.day(Math.max(earliest, issued - 8 * YEAR), issued) : issued
    const until = expiry(cls, granted)
    return { class: cls, issuedDate: iso(granted), ...(until !== undefined ? { validUntil: iso(until) } : {}) }
  })
  const indefinite = classes.some((c) => c.validUntil === undefined)
  const validUntil = indefinite ? undefined : classes.map((c) => c.validUntil as string).sort().at(-1)
  const issuer = issued >= toDay('2025-03-01')
    ? `Phòng Cảnh sát giao thông Công an ${provinceLabel(p.home.area.code)}`
    : `Sở Giao thông vận tải ${provinceLabel(p.home.area.code)}`
  const number = w.unique('giay-phep-lai-xe', () => p.home.area.code.slice(1) + r.digits(10))
  return {
    subject: citizen(p),
    documentNumber: number,
    procedureCode: r.chance(0.7) ? PROCEDURES.drivingLicenceNew : PROCEDURES.drivingLicenceRenewal,
    issued,
    ...(validUntil !== undefined ? { validUntil } : {}),
    data: {
      licenceNumber: number,
      fullName: p.fullName,
      dateOfBirth: iso(p.born),
      gender: p.gender,
      nationality: 'Việt Nam',
      residence: p.address,
      classes,
      issuingPlace: issuer
    },
    place: p.home,
    processingDays: 7
  }
}

const residenceConfirmation: Builder = (w) => {
  const r = w.rng
  const p = w.subjectFor('xac-nhan-thong-tin-cu-tru', 14, { bornFrom: toDay('1950-01-01'), bornTo: w.asOf })
  const issued = w.day(Math.max(w.asOf - 2 * YEAR, addYears(p.born, 14)), w.asOf)
  const temporary = r.chance(0.3) ? w.address(w.place()) : undefined
  const head = r.chance(0.4)
  const relation = head
    ? 'Chủ hộ'
    : r.pick(p.gender === 'Nam' ? ['Con', 'Chồng', 'Cháu', 'Con rể', 'Em'] : ['Con', 'Vợ', 'Cháu', 'Con dâu', 'Em'])
  const region = p.birthProvince.region
  const headName = head ? p.fullName : w.fullName(relation === 'Chồng' ? 'Nữ' : 'Nam', yearOf(p.born) - 25, region)
  const members = Array.from({ length: r.int(0, 2) }, () => {
    const gender: Gender = r.chance(0.5) ? 'Nam' : 'Nữ'
    const born = w.day(toDay('1950-01-01'), w.asOf - 365)
    return { fullName: w.fullName(gender, yearOf(born), region), dateOfBirth: iso(born), gender, relationshipToHead: r.pick(['Vợ', 'Con', 'Mẹ', 'Cháu']) }
  })
  const data: Record<string, unknown> = {
    fullName: p.fullName,
    dateOfBirth: iso(p.born),
    gender: p.gender,
    ethnicity: p.ethnicity,
    nationality: 'Việt Nam',
    permanentResidence: p.address,
    ...(temporary !== undefined ? { temporaryResidence: temporary } : {}),
    currentResidence: temporary ?? p.address,
    residenceSince: iso(w.day(Math.max(p.born, issued - 20 * YEAR), issued)),
    householdHeadName: headName,
    relationshipToHead: relation,
    ...(members.length > 0 ? { householdMembers: members } : {}),
    purpose: r.pick(['Bổ sung hồ sơ xin việc', 'Làm thủ tục nhập học cho con', 'Vay vốn ngân hàng', 'Đăng ký kết hôn', 'Làm thủ tục hưởng bảo hiểm xã hội'])
  }
  const year = yearOf(issued)
  // the 1-year validity dates from Circular 66/2023/TT-BCA; earlier confirmations were valid 6 months
  const validUntil = issued < toDay('2024-01-01') ? validUntilFor(iso(issued), 'P6M') : undefined
  return {
    subject: citizen(p),
    documentNumber: w.unique('xac-nhan-thong-tin-cu-tru', () => `${w.next(`ct:${year}`)}/${year}/XNCT`),
    procedureCode: PROCEDURES.residenceConfirmation,
    issued,
    ...(validUntil !== undefined ? { validUntil } : {}),
    data,
    place: p.home,
    processingDays: 2
  }
}

const deathExtract: Builder = (w) => {
  const r = w.rng
  const died = w.day(w.asOf - 8 * YEAR, w.asOf - 1)
  // the deceased never becomes the subject of a later document, so is not pooled
  const p = w.person({ bornFrom: toDay('1925-01-01'), bornTo: addYears(died, -30) })
  const issued = Math.min(died + r.int(1, 15), w.asOf)
  const atHome = r.chance(0.55)
  const hospital = hospitalFor(w, p.home)
  const child = r.chance(0.7)
  const region = p.birthProvince.region
  const declarant = child
    ? { fullName: w.fullName(r.chance(0.5) ? 'Nam' : 'Nữ', yearOf(p.born) + 25, region, p.gender === 'Nam' ? p.fullName.split(' ')[0] : undefined), relationship: 'Con' }
    : { fullName: w.fullName(p.gender === 'Nam' ? 'Nữ' : 'Nam', yearOf(p.born), region), relationship: p.gender === 'Nam' ? 'Vợ' : 'Chồng' }
  const year = yearOf(issued)
  const data: Record<string, unknown> = {
    fullName: p.fullName,
    gender: p.gender,
    dateOfBirth: iso(p.born),
    ethnicity: p.ethnicity,
    nationality: 'Việt Nam',
    lastResidence: p.address,
    dateOfDeath: iso(died),
    timeOfDeath: `${String(r.int(0, 23)).padStart(2, '0')}:${String(r.int(0, 59)).padStart(2, '0')}`,
    placeOfDeath: atHome ? p.address : `${hospital}, ${provinceLabel(p.home.area.code)}`,
    deathNotice: atHome
      ? `Giấy báo tử số ${r.int(1, 300)}/GBT do Ủy ban nhân dân ${p.home.ward} cấp ngày ${vnDate(died)}`
      : `Giấy báo tử số ${r.int(1, 9000)}/GBT do ${hospital} cấp ngày ${vnDate(died)}`,
    declarant,
    registrationPlace: officeText(p.home),
    registrationDate: iso(issued),
    registrationBookNumber: registerBook(w, year)
  }
  return {
    subject: citizen(p),
    documentNumber: w.unique('trich-luc-khai-tu', () => `${w.next(`kt:${year}`)}/${year}/TLKT`),
    procedureCode: PROCEDURES.death,
    issued,
    data,
    place: p.home,
    processingDays: 1
  }
}

const marriageCertificate: Builder = (w) => {
  const r = w.rng
  const p = w.subjectFor('giay-chung-nhan-ket-hon', 20, { bornFrom: toDay('1965-01-01'), bornTo: w.asOf })
  const male = p.gender === 'Nam'
  const issued = w.day(Math.max(w.asOf - 15 * YEAR, addYears(p.born, male ? 20 : 18)), w.asOf)
  // husbands are usually a little older; the spouse must be of marriageable age on the day
  const spouseBornTo = Math.min(addYears(issued, male ? -18 : -20), male ? p.born + 8 * YEAR : p.born + 2 * YEAR)
  const spouseBornFrom = Math.min(spouseBornTo, male ? p.born - 2 * YEAR : p.born - 8 * YEAR)
  const spouse = w.person({ bornFrom: spouseBornFrom, bornTo: spouseBornTo, gender: male ? 'Nữ' : 'Nam' })
  const party = (x: Person, subject: boolean): Record<string, unknown> => ({
    fullName: x.fullName,
    dateOfBirth: iso(x.born),
    ethnicity: x.ethnicity,
    nationality: 'Việt Nam',
    residence: x.address,
    ...(subject ? {} : { idNumber: x.id })
  })
  const year = yearOf(issued)
  const place = r.chance(0.5) ? p.home : spouse.home
  return {
    subject: citizen(p),
    documentNumber: w.unique('giay-chung-nhan-ket-hon', () => `${w.next(`kh:${year}`)}/${year}/TP-KH`),
    procedureCode: PROCEDURES.marriage,
    issued,
    data: {
      husband: male ? party(p, true) : party(spouse, false),
      wife: male ? party(spouse, false) : party(p, true),
      registrationPlace: officeText(place),
      registrationDate: iso(issued),
      registrationBookNumber: registerBook(w, year)
    },
    place,
    processingDays: 1
  }
}

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
