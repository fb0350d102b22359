/**
 * The sample data's tables — places, names, and the wording and codes of each document type —
 * read from the JSON files in tables/ and typed for the generator. Weighted tables are written as
 * `{ "item": weight }` objects; their file order is part of what a seed reproduces.
 */
import documents from './tables/documents.json' with { type: 'json' }
import names from './tables/names.json' with { type: 'json' }
import places from './tables/places.json' with { type: 'json' }
import type { Province } from './provinces.js'

export type Weighted<T> = ReadonlyArray<readonly [T, number]>
export type Region = Province['region']
export interface District { name: string, wards: readonly string[] }
export interface Area { code: string, weight: number, districts: readonly District[] }
export interface Sexes<T> { male: T, female: T }

function weighted (table: Readonly<Record<string, number>>): Weighted<string> {
  return Object.entries(table)
}

// Places: real provinces, districts and wards (before the 2025 reorganization)
export const AREAS: readonly Area[] = places.areas
export const CENTRAL_CITIES: ReadonlySet<string> = new Set(places.centralCities)
/** First two digits of enterprise (tax) codes registered in the province. */
export const TAX_PREFIX: Readonly<Record<string, string>> = places.taxCodePrefixes
export const STREETS: readonly string[] = places.streets
export const HAMLETS: Readonly<Record<'north' | 'south', readonly string[]>> = places.hamlets
export const MATERNITY_HOSPITALS: Readonly<Record<string, readonly string[]>> = places.maternityHospitals

// Names
export const FAMILY_NAMES = weighted(names.familyNames)
export const MIDDLE_NAMES: Sexes<Weighted<string>> = { male: weighted(names.middleNames.male), female: weighted(names.middleNames.female) }
export const GIVEN_NAMES: Sexes<readonly string[]> = names.givenNames
export const ETHNICITIES: Readonly<Record<Region, Weighted<string>>> = {
  north: weighted(names.ethnicities.north),
  central: weighted(names.ethnicities.central),
  south: weighted(names.ethnicities.south)
}

// Documents
/** The catalogue codes the generator knows, with their share of a default mix. */
export const TYPE_WEIGHTS: Readonly<Record<SampleType, number>> = documents.typeWeights
export type SampleType = keyof typeof documents.typeWeights

type Procedures = typeof documents.procedures
/**
 * Procedure codes (mã TTHC) from the national procedure database. The civil-status and land
 * registration codes are the published ones; those marked `placeholder` are of the right shape,
 * to be replaced by the codes the province actually uses.
 */
export const PROCEDURES = Object.fromEntries(Object.entries(documents.procedures).map(([name, p]) => [name, p.code])) as
  { readonly [K in keyof Procedures]: Procedures[K]['code'] }

export const MARITAL_STATUS: { purposes: readonly string[] } = documents.maritalStatus
export const RESIDENCE: {
  relationshipsToHead: Sexes<readonly string[]>
  householdMemberRelationships: readonly string[]
  purposes: readonly string[]
} = documents.residenceConfirmation
export const CRIMINAL_RECORD: {
  offences: Readonly<Record<'Penal Code 1999' | 'Penal Code 2015', readonly string[]>>
  penalties: readonly string[]
} = documents.criminalRecord
export const LAND: {
  origins: readonly string[]
  useNames: Readonly<Record<string, string>>
  certificateSeries: readonly string[]
  houseStructures: readonly string[]
} = documents.land

export interface EnterpriseType { vi: string, prefix: string, en: string, abbr: string }
export const ENTERPRISE: {
  sectors: ReadonlyArray<{ vi: string, en: string }>
  brands: readonly string[]
  types: Weighted<EnterpriseType>
  companyForms: readonly string[]
} = { ...documents.enterprise, types: documents.enterprise.types.map((t) => [t, t.weight] as const) }
