/**
 * Documents about a citizen's record: the criminal-record extract, the driving licence and the
 * residence confirmation.
 */
import { YEAR, addYears, ageOn, iso, toDay, validUntilFor, yearOf } from '../calendar.js'
import { CRIMINAL_RECORD, PROCEDURES, RESIDENCE } from '../tables.js'
import { AREA_BY_CODE, citizen, placeText, provinceLabel } from '../world.js'
import type { Builder, Gender } from '../world.js'

export const criminalRecord: Builder = (w) => {
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
        offence: r.pick(CRIMINAL_RECORD.offences[judged < toDay('2018-01-01') ? 'Penal Code 1999' : 'Penal Code 2015']),
        penalty: r.pick(CRIMINAL_RECORD.penalties),
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
    documentNumber: w.registerNumber('phieu-ly-lich-tu-phap', 'lltp', year, 'LLTP'),
    procedureCode: PROCEDURES.criminalRecord,
    issued,
    data,
    place: p.home,
    processingDays: 10
  }
}

export const drivingLicence: Builder = (w) => {
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

export const residenceConfirmation: Builder = (w) => {
  const r = w.rng
  const p = w.subjectFor('xac-nhan-thong-tin-cu-tru', 14, { bornFrom: toDay('1950-01-01'), bornTo: w.asOf })
  const issued = w.day(Math.max(w.asOf - 2 * YEAR, addYears(p.born, 14)), w.asOf)
  const temporary = r.chance(0.3) ? w.address(w.place()) : undefined
  const head = r.chance(0.4)
  const relation = head
    ? 'Chủ hộ'
    : r.pick(RESIDENCE.relationshipsToHead[p.gender === 'Nam' ? 'male' : 'female'])
  const region = p.birthProvince.region
  const headName = head ? p.fullName : w.fullName(relation === 'Chồng' ? 'Nữ' : 'Nam', yearOf(p.born) - 25, region)
  const members = Array.from({ length: r.int(0, 2) }, () => {
    const gender: Gender = r.chance(0.5) ? 'Nam' : 'Nữ'
    const born = w.day(toDay('1950-01-01'), w.asOf - 365)
    return { fullName: w.fullName(gender, yearOf(born), region), dateOfBirth: iso(born), gender, relationshipToHead: r.pick(RESIDENCE.householdMemberRelationships) }
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
    purpose: r.pick(RESIDENCE.purposes)
  }
  const year = yearOf(issued)
  // the 1-year validity dates from Circular 66/2023/TT-BCA; earlier confirmations were valid 6 months
  const validUntil = issued < toDay('2024-01-01') ? validUntilFor(iso(issued), 'P6M') : undefined
  return {
    subject: citizen(p),
    documentNumber: w.registerNumber('xac-nhan-thong-tin-cu-tru', 'ct', year, 'XNCT'),
    procedureCode: PROCEDURES.residenceConfirmation,
    issued,
    ...(validUntil !== undefined ? { validUntil } : {}),
    data,
    place: p.home,
    processingDays: 2
  }
}
