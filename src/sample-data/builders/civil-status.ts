/**
 * Civil-status documents as the commune People's Committee issues them: birth certificates,
 * marital-status confirmations, marriage certificates and death-registration extracts.
 */
import { YEAR, addYears, ageOn, iso, toDay, vnDate, yearOf } from '../calendar.js'
import { MARITAL_STATUS, PROCEDURES } from '../tables.js'
import { AREA_BY_CODE, citizen, hospitalFor, officeText, placeText, provinceLabel, registerBook } from '../world.js'
import type { Builder, Gender, Person } from '../world.js'

export const birthCertificate: Builder = (w) => {
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
    documentNumber: w.registerNumber('giay-khai-sinh', 'ks', year, 'TP-KS'),
    procedureCode: reRegistration ? PROCEDURES.birthReRegistration : withParentage ? PROCEDURES.birthWithParentage : PROCEDURES.birth,
    issued,
    data,
    place: registrar,
    processingDays: reRegistration ? 5 : 1
  }
}

export const maritalStatus: Builder = (w) => {
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
    : r.pick(MARITAL_STATUS.purposes)
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
    documentNumber: w.registerNumber('xac-nhan-tinh-trang-hon-nhan', 'xn', year, 'XNTTHN'),
    procedureCode: PROCEDURES.maritalStatus,
    issued,
    data,
    place: p.home,
    processingDays: 3
  }
}

export const deathExtract: Builder = (w) => {
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
    documentNumber: w.registerNumber('trich-luc-khai-tu', 'kt', year, 'TLKT'),
    procedureCode: PROCEDURES.death,
    issued,
    data,
    place: p.home,
    processingDays: 1
  }
}

export const marriageCertificate: Builder = (w) => {
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
    documentNumber: w.registerNumber('giay-chung-nhan-ket-hon', 'kh', year, 'TP-KH'),
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
