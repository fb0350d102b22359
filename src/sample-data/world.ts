/**
 * The generated world: places and their wording, people (names, identifiers, addresses), the
 * pool of citizens who hold several documents, and the registers that number documents. Every
 * builder draws from one World, so one seed gives one world.
 */
import { addYears, yearOf } from './calendar.js'
import { PROVINCES, genderCenturyDigit, provinceByCode, taxCodeCheckDigit } from './provinces.js'
import type { Province } from './provinces.js'
import { Rng } from './random.js'
import {
  AREAS, CENTRAL_CITIES, ETHNICITIES, FAMILY_NAMES, GIVEN_NAMES, HAMLETS, MATERNITY_HOSPITALS, MIDDLE_NAMES, STREETS, TAX_PREFIX
} from './tables.js'
import type { Area, District, Region, SampleType } from './tables.js'

const AREA_WEIGHTS = AREAS.map((a) => [a, a.weight] as const)
export const AREA_BY_CODE = new Map(AREAS.map((a) => [a.code, a]))
/** the provinces whose tax-code prefix is known, where organizations are registered */
export const BUSINESS_AREAS = AREAS.filter((a) => a.code in TAX_PREFIX).map((a) => [a, a.weight] as const)

function province (code: string): Province { return provinceByCode(code) as Province }

export function provinceLabel (code: string): string {
  if (code === '079') return 'Thành phố Hồ Chí Minh'
  return `${CENTRAL_CITIES.has(code) ? 'thành phố' : 'tỉnh'} ${province(code).name}`
}

export interface Place { area: Area, district: District, ward: string }

export function placeText (p: Place): string {
  return `${p.ward}, ${p.district.name}, ${provinceLabel(p.area.code)}`
}

export function officeText (p: Place): string {
  return `Ủy ban nhân dân ${placeText(p)}`
}

export type Gender = 'Nam' | 'Nữ'

export interface Person {
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

export interface Subject { kind: 'citizen' | 'organization', id: string }

/** what a builder makes of one document, before the generator adds what every type shares */
export interface Built {
  subject: Subject
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

export class World {
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
      local = region === 'south' ? `Ấp ${r.pick(HAMLETS.south)}` : r.chance(0.5) ? `Thôn ${r.pick(HAMLETS.north)}` : `Xóm ${r.int(1, 12)}`
    } else if (p.ward.startsWith('thị trấn')) {
      local = region === 'south' ? `Khu phố ${r.int(1, 8)}` : `Tổ dân phố ${r.int(1, 15)}`
    } else if (region === 'north' && r.chance(0.5)) {
      local = `Số ${r.int(1, 80)} ngõ ${r.int(2, 300)} phố ${r.pick(STREETS)}`
    } else {
      local = `Số ${r.int(1, 350)} đường ${r.pick(STREETS)}`
    }
    return `${local}, ${placeText(p)}`
  }

  familyName (region: Region): string {
    const name = this.rng.weighted(FAMILY_NAMES)
    if (name === 'Hoàng/Huỳnh') return region === 'south' || (region === 'central' && this.rng.chance(0.5)) ? 'Huỳnh' : 'Hoàng'
    if (name === 'Vũ/Võ') return region === 'north' ? 'Vũ' : 'Võ'
    return name
  }

  /** middle and given names; younger women less often carry "Thị", and some children get two middle names */
  givenNames (gender: Gender, bornYear: number): string {
    const r = this.rng
    const sex = gender === 'Nam' ? 'male' : 'female'
    let middle = r.weighted(MIDDLE_NAMES[sex])
    if (middle === 'Thị' && bornYear >= 2000 && r.chance(0.6)) middle = r.weighted(MIDDLE_NAMES.female.slice(1))
    if (middle === 'Văn' && bornYear >= 2005 && r.chance(0.5)) middle = r.weighted(MIDDLE_NAMES.male.slice(1))
    const given = r.pick(GIVEN_NAMES[sex])
    if (bornYear >= 2005 && r.chance(0.15)) {
      const second = r.weighted(MIDDLE_NAMES[sex].slice(1))
      if (second !== middle && second !== given) return `${middle} ${second} ${given}`
    }
    return middle === given ? `${middle} ${r.pick(GIVEN_NAMES[sex])}` : `${middle} ${given}`
  }

  fullName (gender: Gender, bornYear: number, region: Region, family?: string): string {
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

  /** a civil-status style number from a yearly register: `<n>/<year>/<suffix>`, not used before for this type */
  registerNumber (type: string, register: string, year: number, suffix: string): string {
    return this.unique(type, () => `${this.next(`${register}:${year}`)}/${year}/${suffix}`)
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
// What the builders share

/** makes one document of its type */
export type Builder = (w: World) => Built

export function citizen (p: Person): Subject { return { kind: 'citizen', id: p.id } }

export function registerBook (w: World, year: number): string {
  return `${String(w.rng.int(1, 3)).padStart(2, '0')}/${year}`
}

export function hospitalFor (w: World, p: Place): string {
  const city = MATERNITY_HOSPITALS[p.area.code]
  if (city !== undefined && w.rng.chance(0.8)) return w.rng.pick(city)
  return w.rng.chance(0.6) ? `Bệnh viện Đa khoa ${provinceLabel(p.area.code)}` : `Trung tâm Y tế ${p.district.name}`
}
