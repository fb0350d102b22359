/** Land-use right certificates (to households and organizations) and enterprise registration certificates. */
import { YEAR, addYears, iso, toDay, vnDate, yearOf } from '../calendar.js'
import { ENTERPRISE, LAND, PROCEDURES } from '../tables.js'
import { BUSINESS_AREAS, citizen, provinceLabel } from '../world.js'
import type { Builder, Gender, Place, Subject, World } from '../world.js'

/** one decimal place, as areas are printed */
function area (w: World, min: number, max: number): number {
  return Math.round((min + w.rng.float() * (max - min)) * 10) / 10
}

export const landCertificate: Builder = (w) => {
  const r = w.rng
  const organization = r.chance(0.1)
  const issued = w.day(toDay('2005-01-01'), w.asOf)
  let subject: Subject
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
    owners = [{ fullName: `Công ty ${r.pick(ENTERPRISE.companyForms)} ${r.pick(ENTERPRISE.sectors).vi} ${r.pick(ENTERPRISE.brands)}`, address: w.address(w.place(a)) }]
    const code = r.chance(0.6) ? 'TMD' : 'SKC'
    purposes = [{ code, name: LAND.useNames[code], areaM2: area(w, 800, 20000) }]
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
      purposes = [{ code: 'ODT', name: LAND.useNames.ODT, areaM2: area(w, 35, 220) }]
      term = 'Lâu dài'
      origin = r.pick(LAND.origins)
    } else if (kind === 'rural') {
      purposes = [
        { code: 'ONT', name: LAND.useNames.ONT, areaM2: area(w, 100, 400) },
        { code: 'CLN', name: LAND.useNames.CLN, areaM2: area(w, 50, 600) }
      ]
      term = `Đất ở: Lâu dài; Đất trồng cây lâu năm: ${fiftyYears.toLowerCase()}`
      origin = r.pick(LAND.origins)
    } else {
      const code = r.chance(0.6) ? 'LUC' : 'HNK'
      purposes = [{ code, name: LAND.useNames[code], areaM2: area(w, 300, 3000) }]
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
          structure: r.pick(LAND.houseStructures),
          ownershipTerm: 'Lâu dài'
        }]
      }
    }
  }
  const total = Math.round(purposes.reduce((sum, x) => sum + (x.areaM2 as number), 0) * 10) / 10
  const serial = w.unique('giay-chung-nhan-quyen-su-dung-dat', () => `${r.pick(LAND.certificateSeries)} ${r.digits(6)}`)
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

/** "Phú Quý" → "PHU QUY": names in a foreign language are written without diacritics */
function ascii (s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'D')
}

export const enterpriseRegistration: Builder = (w) => {
  const r = w.rng
  const a = r.weighted(BUSINESS_AREAS)
  const place = w.place(a)
  const code = w.taxCode(a)
  const type = r.weighted(ENTERPRISE.types)
  const { vi: sectorVi, en: sectorEn } = r.pick(ENTERPRISE.sectors)
  const { vi: sector2Vi, en: sector2En } = r.pick(ENTERPRISE.sectors)
  const brand = r.pick(ENTERPRISE.brands)
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
