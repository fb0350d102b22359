import { readdirSync, readFileSync } from 'node:fs'
import type { ValidateFunction } from 'ajv'
import { isDeepStrictEqual } from 'node:util'
import { ProblemError } from '../lib/problem.js'
import { createAjv } from '../lib/ajv.js'
import type { CatalogueStore, DocumentTypeRecord } from '../store/index.js'
import type { Call } from './call.js'

/**
 * The catalogue of document types. The shipped types (schemas/document-types/*.json) seed the
 * store at start; an admin may add or change types. Changing a type's schema makes a new
 * schema version; documents keep the version they were indexed under, so a change never
 * invalidates what is already indexed.
 */
export interface DocumentTypeDefinition {
  code: string
  name: { vi: string, en: string }
  description?: { vi: string, en: string }
  subjectKinds: Array<'citizen' | 'organization'>
  /** ISO 8601 duration (e.g. P6M) or null: valid until revoked */
  defaultValidity: string | null
  consentRequired: boolean
  issuingAuthority?: { vi: string, en: string }
  legalBasis?: string[]
  schemaVersion: number
  schema: Record<string, unknown>
}

export const CATALOGUE_DIR = new URL('../../schemas/document-types/', import.meta.url)

export function loadShippedTypes (): DocumentTypeDefinition[] {
  return readdirSync(CATALOGUE_DIR)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(new URL(name, CATALOGUE_DIR), 'utf8')) as DocumentTypeDefinition)
}

/** the pattern of defaultValidity in schemas/document-type-put.json: at least one of years, months, weeks, days */
const DURATION = /^P(?=\d)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?$/

/** Adds an ISO 8601 date-only duration (years, months, weeks, days) to a YYYY-MM-DD date. */
export function addDuration (date: string, duration: string): string {
  const match = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$/.exec(duration)
  if (!match) throw new Error(`not a date duration: ${duration}`)
  const d = new Date(`${date}T00:00:00Z`)
  const [, y, m, w, days] = match
  const day = d.getUTCDate()
  d.setUTCDate(1)
  d.setUTCFullYear(d.getUTCFullYear() + Number(y ?? 0))
  d.setUTCMonth(d.getUTCMonth() + Number(m ?? 0))
  // the 31st plus a month lands on the month's last day, not in the month after
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate()
  d.setUTCDate(Math.min(day, last))
  d.setUTCDate(d.getUTCDate() + Number(w ?? 0) * 7 + Number(days ?? 0))
  return d.toISOString().slice(0, 10)
}

function definitionOf (record: DocumentTypeRecord): DocumentTypeDefinition {
  return { ...(record.definition as unknown as DocumentTypeDefinition), schemaVersion: record.schemaVersion, schema: record.schemas[record.schemaVersion] as Record<string, unknown> }
}

export class Catalogue {
  private readonly ajv = createAjv()
  private readonly validators = new Map<string, ValidateFunction>()

  private readonly store: CatalogueStore

  constructor (deps: { catalogue: CatalogueStore }) {
    this.store = deps.catalogue
  }

  /** One type of the catalogue, or 404 `document_type_not_found`. */
  async find (code: string): Promise<DocumentTypeDefinition> {
    const type = await this.get(code)
    if (!type) throw new ProblemError(404, 'document_type_not_found', `no document type ${code}`)
    return type
  }

  /** Adds or changes a type for an admin, on record (with the schema version it replaces) before it is written. */
  async change (call: Call, code: string, input: Omit<DocumentTypeDefinition, 'code' | 'schemaVersion'>): Promise<{ type: DocumentTypeDefinition, created: boolean }> {
    const before = await this.get(code)
    await call.audit({ action: 'document_type.changed', outcome: 'granted', detail: { code, previousSchemaVersion: before?.schemaVersion ?? null } })
    return await this.put(code, input)
  }

  /** Puts each shipped type into the store unless the store already has it (an admin's change wins). */
  async seed (types: DocumentTypeDefinition[] = loadShippedTypes()): Promise<void> {
    for (const type of types) {
      if (await this.store.getDocumentType(type.code)) continue
      this.check(type.code, type)
      const { schema, schemaVersion, ...definition } = type
      await this.store.putDocumentType({ code: type.code, schemaVersion, definition, schemas: { [schemaVersion]: schema }, updatedAt: new Date().toISOString() }, 0)
    }
  }

  async get (code: string): Promise<DocumentTypeDefinition | undefined> {
    const record = await this.store.getDocumentType(code)
    return record ? definitionOf(record) : undefined
  }

  async list (): Promise<DocumentTypeDefinition[]> {
    return (await this.store.listDocumentTypes()).map(definitionOf)
  }

  /** Adds or changes a type; a changed schema gets the next schema version. */
  async put (code: string, input: Omit<DocumentTypeDefinition, 'code' | 'schemaVersion'>): Promise<{ type: DocumentTypeDefinition, created: boolean }> {
    const candidate = { ...input, code, schemaVersion: 1 }
    this.check(code, candidate)
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.store.getDocumentType(code)
      const version = current?.schemaVersion ?? 0
      const schemaChanged = !current || !isDeepStrictEqual(current.schemas[version], input.schema)
      const next = schemaChanged ? version + 1 : version
      const { schema, ...definition } = input
      const record: DocumentTypeRecord = {
        code,
        schemaVersion: next,
        definition: { ...definition, code },
        schemas: { ...(current?.schemas ?? {}), [next]: schema },
        updatedAt: new Date().toISOString()
      }
      if (await this.store.putDocumentType(record, version)) return { type: definitionOf(record), created: !current }
    }
    throw new ProblemError(409, 'concurrent_change', `document type ${code} was changed concurrently; retry`)
  }

  /** The validator of a type's structured data, in a given schema version. */
  async validator (code: string, schemaVersion?: number): Promise<{ validate: ValidateFunction, type: DocumentTypeDefinition } | undefined> {
    const record = await this.store.getDocumentType(code)
    if (!record) return undefined
    const version = schemaVersion ?? record.schemaVersion
    const key = `${code}@${version}`
    let validate = this.validators.get(key)
    if (!validate) {
      const { $schema: _dialect, $id: _id, ...schema } = record.schemas[version] as Record<string, unknown>
      validate = this.ajv.compile(schema)
      this.validators.set(key, validate)
    }
    return { validate, type: definitionOf(record) }
  }

  /**
   * The validators as they are now, each type read once: a batch request validates thousands
   * of lines against the catalogue as it was when the request began.
   */
  snapshot (): Pick<Catalogue, 'validator'> {
    const read = new Map<string, ReturnType<Catalogue['validator']>>()
    return {
      validator: async (code: string, schemaVersion?: number) => {
        const key = `${code}@${schemaVersion ?? ''}`
        let found = read.get(key)
        if (!found) read.set(key, found = this.validator(code, schemaVersion))
        return await found
      }
    }
  }

  private check (code: string, type: Partial<DocumentTypeDefinition>): void {
    if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(code) || code.length > 64) throw new ProblemError(400, 'invalid_type_code', `"${code}" is not a document type code (lower-case ASCII kebab-case)`)
    if (type.defaultValidity !== null && type.defaultValidity !== undefined && !DURATION.test(type.defaultValidity)) {
      throw new ProblemError(400, 'invalid_validity', 'defaultValidity must be an ISO 8601 duration of years, months, weeks and days (e.g. P6M), or null')
    }
    const schema = type.schema
    if (!schema || schema.type !== 'object') throw new ProblemError(400, 'invalid_schema', 'the structured data schema must describe an object')
    try {
      const { $schema: _dialect, $id: _id, ...rest } = schema
      createAjv().compile(rest)
    } catch (err) {
      throw new ProblemError(400, 'invalid_schema', `the schema does not compile as JSON Schema 2020-12: ${(err as Error).message}`)
    }
  }
}
