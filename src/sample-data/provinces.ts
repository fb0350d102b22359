/**
 * Province codes of birth registration used in the 12-digit personal identification number
 * (số định danh cá nhân), as listed by the Ministry of Public Security (Circular 07/2016/TT-BCA,
 * Annex). The list has gaps (003, 005, 007, …) and, like the numbers themselves, was not changed
 * by the 2025 merger of provinces: a number issued to someone born in Hà Giang still starts 002.
 *
 * Dependency-free on purpose: the gateway's identifier validation imports it.
 */
export interface Province {
  code: string
  name: string
  /** the region, which shapes the family names and address wording the sample data uses */
  region: 'north' | 'central' | 'south'
}

export const PROVINCES: readonly Province[] = Object.freeze([
  { code: '001', name: 'Hà Nội', region: 'north' },
  { code: '002', name: 'Hà Giang', region: 'north' },
  { code: '004', name: 'Cao Bằng', region: 'north' },
  { code: '006', name: 'Bắc Kạn', region: 'north' },
  { code: '008', name: 'Tuyên Quang', region: 'north' },
  { code: '010', name: 'Lào Cai', region: 'north' },
  { code: '011', name: 'Điện Biên', region: 'north' },
  { code: '012', name: 'Lai Châu', region: 'north' },
  { code: '014', name: 'Sơn La', region: 'north' },
  { code: '015', name: 'Yên Bái', region: 'north' },
  { code: '017', name: 'Hòa Bình', region: 'north' },
  { code: '019', name: 'Thái Nguyên', region: 'north' },
  { code: '020', name: 'Lạng Sơn', region: 'north' },
  { code: '022', name: 'Quảng Ninh', region: 'north' },
  { code: '024', name: 'Bắc Giang', region: 'north' },
  { code: '025', name: 'Phú Thọ', region: 'north' },
  { code: '026', name: 'Vĩnh Phúc', region: 'north' },
  { code: '027', name: 'Bắc Ninh', region: 'north' },
  { code: '030', name: 'Hải Dương', region: 'north' },
  { code: '031', name: 'Hải Phòng', region: 'north' },
  { code: '033', name: 'Hưng Yên', region: 'north' },
  { code: '034', name: 'Thái Bình', region: 'north' },
  { code: '035', name: 'Hà Nam', region: 'north' },
  { code: '036', name: 'Nam Định', region: 'north' },
  { code: '037', name: 'Ninh Bình', region: 'north' },
  { code: '038', name: 'Thanh Hóa', region: 'central' },
  { code: '040', name: 'Nghệ An', region: 'central' },
  { code: '042', name: 'Hà Tĩnh', region: 'central' },
  { code: '044', name: 'Quảng Bình', region: 'central' },
  { code: '045', name: 'Quảng Trị', region: 'central' },
  { code: '046', name: 'Thừa Thiên Huế', region: 'central' },
  { code: '048', name: 'Đà Nẵng', region: 'central' },
  { code: '049', name: 'Quảng Nam', region: 'central' },
  { code: '051', name: 'Quảng Ngãi', region: 'central' },
  { code: '052', name: 'Bình Định', region: 'central' },
  { code: '054', name: 'Phú Yên', region: 'central' },
  { code: '056', name: 'Khánh Hòa', region: 'central' },
  { code: '058', name: 'Ninh Thuận', region: 'central' },
  { code: '060', name: 'Bình Thuận', region: 'central' },
  { code: '062', name: 'Kon Tum', region: 'central' },
  { code: '064', name: 'Gia Lai', region: 'central' },
  { code: '066', name: 'Đắk Lắk', region: 'central' },
  { code: '067', name: 'Đắk Nông', region: 'central' },
  { code: '068', name: 'Lâm Đồng', region: 'central' },
  { code: '070', name: 'Bình Phước', region: 'south' },
  { code: '072', name: 'Tây Ninh', region: 'south' },
  { code: '074', name: 'Bình Dương', region: 'south' },
  { code: '075', name: 'Đồng Nai', region: 'south' },
  { code: '077', name: 'Bà Rịa - Vũng Tàu', region: 'south' },
  { code: '079', name: 'Hồ Chí Minh', region: 'south' },
  { code: '080', name: 'Long An', region: 'south' },
  { code: '082', name: 'Tiền Giang', region: 'south' },
  { code: '083', name: 'Bến Tre', region: 'south' },
  { code: '084', name: 'Trà Vinh', region: 'south' },
  { code: '086', name: 'Vĩnh Long', region: 'south' },
  { code: '087', name: 'Đồng Tháp', region: 'south' },
  { code: '089', name: 'An Giang', region: 'south' },
  { code: '091', name: 'Kiên Giang', region: 'south' },
  { code: '092', name: 'Cần Thơ', region: 'south' },
  { code: '093', name: 'Hậu Giang', region: 'south' },
  { code: '094', name: 'Sóc Trăng', region: 'south' },
  { code: '095', name: 'Bạc Liêu', region: 'south' },
  { code: '096', name: 'Cà Mau', region: 'south' }
] as Province[])

export const PROVINCE_CODES: ReadonlySet<string> = new Set(PROVINCES.map((p) => p.code))

const BY_CODE = new Map(PROVINCES.map((p) => [p.code, p]))

export function provinceByCode (code: string): Province | undefined {
  return BY_CODE.get(code)
}

const CITIZEN_ID = /^[0-9]{12}$/

/**
 * The SPEC §3 check of a citizen's personal identification number: 12 ASCII digits, the first
 * three a province code that exists, the fourth a gender/century digit (every digit 0–9 encodes
 * one), the fifth and sixth the year of birth, the rest a sequence. There is no check digit, so
 * this is as far as a number can be checked without the national population database.
 */
export function isValidCitizenId (id: unknown): boolean {
  return typeof id === 'string' && CITIZEN_ID.test(id) && PROVINCE_CODES.has(id.slice(0, 3))
}

export interface DecodedCitizenId {
  province: Province
  gender: 'male' | 'female'
  /** full year of birth: digit 4 gives the century (0–1 → 1900s, 2–3 → 2000s, … 8–9 → 2200s) */
  birthYear: number
  sequence: string
}

/** What the number itself says about its holder, or undefined when it fails isValidCitizenId. */
export function decodeCitizenId (id: unknown): DecodedCitizenId | undefined {
  if (!isValidCitizenId(id)) return undefined
  const s = id as string
  const digit = Number(s[3])
  return {
    province: BY_CODE.get(s.slice(0, 3)) as Province,
    gender: digit % 2 === 0 ? 'male' : 'female',
    birthYear: 1900 + Math.floor(digit / 2) * 100 + Number(s.slice(4, 6)),
    sequence: s.slice(6)
  }
}

/** The fourth digit for a holder of this gender born in this year (Circular 07/2016/TT-BCA Art. 7). */
export function genderCenturyDigit (gender: 'male' | 'female', birthYear: number): number {
  const century = Math.floor((birthYear - 1900) / 100)
  if (century < 0 || century > 4) throw new RangeError(`no gender/century digit for the year ${birthYear}`)
  return century * 2 + (gender === 'female' ? 1 : 0)
}

const ORGANIZATION_ID = /^[0-9]{10}(-[0-9]{3})?$/

/** Enterprise/tax code: 10 digits, or 10 digits, a hyphen and a 3-digit branch number (SPEC §3). */
export function isValidOrganizationId (id: unknown): boolean {
  return typeof id === 'string' && ORGANIZATION_ID.test(id)
}

const TAX_CODE_WEIGHTS = [31, 29, 23, 19, 17, 13, 7, 5, 3]

/**
 * The check digit of a 10-digit tax code, computed from its first nine digits; undefined for
 * the prefixes that have none (the tax authority never issues those). Not part of the SPEC §3
 * format check; the sample data uses it so that generated codes look like issued ones.
 */
export function taxCodeCheckDigit (firstNine: string): number | undefined {
  if (!/^[0-9]{9}$/.test(firstNine)) throw new RangeError('nine digits expected')
  let sum = 0
  for (let i = 0; i < 9; i++) sum += Number(firstNine[i]) * (TAX_CODE_WEIGHTS[i] as number)
  const digit = 10 - (sum % 11)
  return digit === 10 ? undefined : digit
}
