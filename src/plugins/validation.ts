import { readdirSync, readFileSync } from 'node:fs'
import type { AnySchema, ErrorObject, ValidateFunction } from 'ajv'
import { createAjv } from '../lib/ajv.js'
import { badRequest, escapePointer } from '../lib/problem.js'

export { createAjv }

/** where the API's JSON Schemas live: schemas/*.json, each with a stable $id */
export const SCHEMAS_DIR = new URL('../../schemas/', import.meta.url)

/** Reads schemas/*.json (not the document-type catalogue, which is data). */
export function loadApiSchemas (): Array<{ $id: string } & Record<string, unknown>> {
  return readdirSync(SCHEMAS_DIR)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(new URL(name, SCHEMAS_DIR), 'utf8')))
}

/**
 * Fastify's validator factory: draft 2020-12 (the dialect of OpenAPI 3.1 and of the document
 * type catalogue), unknown fields never silently dropped, and type coercion only where HTTP
 * gives strings (query string, path parameters, headers) — a JSON body is taken as sent.
 */
export function buildValidatorFactory () {
  return function factory (externalSchemas: unknown) {
    const strictBody = createAjv()
    const coercing = createAjv({ coerceTypes: 'array' })
    for (const schema of Object.values((externalSchemas ?? {}) as Record<string, AnySchema>)) {
      strictBody.addSchema(schema)
      coercing.addSchema(schema)
    }
    return ({ schema, httpPart }: { schema: AnySchema, httpPart?: string }) => {
      if (httpPart === 'body') return strictBody.compile(schema)
      return refusingNonFinite(coercing.compile(schema))
    }
  }
}

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null }

/**
 * Ajv's coercion reads "Infinity", "-Infinity" and "1e400" as numbers that are not finite, and
 * then skips the number's bounds (minimum, maximum only apply to finite numbers): a page size of
 * Infinity would pass. No parameter of this API means a non-finite number, so a query string,
 * path parameter or header that coerces to one is refused like any value out of bounds.
 */
function refusingNonFinite (validate: ValidateFunction): Validator {
  const wrapped: Validator = (data: unknown): boolean => {
    const valid = validate(data)
    const refused = nonFinite(data, '', 0)
    wrapped.errors = refused.length > 0 ? [...(validate.errors ?? []), ...refused] : validate.errors
    return valid && refused.length === 0
  }
  return wrapped
}

/** the non-finite numbers in coerced HTTP parts: flat objects, their values arrays at most */
function nonFinite (value: unknown, pointer: string, depth: number): ErrorObject[] {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? [] : [{ instancePath: pointer, schemaPath: '#', keyword: 'type', params: {}, message: 'must be a finite number' }]
  }
  if (value === null || typeof value !== 'object' || depth > 2) return []
  return Object.entries(value).flatMap(([key, item]) => nonFinite(item, `${pointer}/${escapePointer(key)}`, depth + 1))
}

const MAX_JSON_DEPTH = 64
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/**
 * The JSON body parser every route uses: refuses bytes that are not UTF-8, strings that are not
 * well-formed Unicode (lone surrogates), nesting deeper than any API body needs, and keys that
 * could pollute prototypes; normalizes every string to NFC so that composed and decomposed
 * Vietnamese compare, hash and store the same.
 */
export function parseJsonBody (body: Buffer): unknown {
  let text: string
  try {
    text = utf8.decode(body)
  } catch {
    throw badRequest('invalid_utf8', 'the request body is not valid UTF-8')
  }
  return parseJsonText(text)
}

/** `parseJsonBody` of text already decoded (and found well-formed UTF-8): a line of a batch */
export function parseJsonText (text: string): unknown {
  if (text.trim() === '') throw badRequest('empty_body', 'the request body is empty; a JSON document was expected')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw badRequest('malformed_json', `the request body is not valid JSON: ${(err as Error).message}`)
  }
  return sanitize(value, 0, '')
}

function sanitize (value: unknown, depth: number, pointer: string): unknown {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) {
      throw badRequest('invalid_unicode', `the string at ${pointer || '/'} contains an unpaired surrogate`)
    }
    return value.normalize('NFC')
  }
  if (value === null || typeof value !== 'object') return value
  if (depth >= MAX_JSON_DEPTH) {
    throw badRequest('too_deep', `the request body is nested deeper than ${MAX_JSON_DEPTH} levels`)
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = sanitize(value[i], depth + 1, `${pointer}/${i}`)
    return value
  }
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (FORBIDDEN_KEYS.has(key)) {
      throw badRequest('forbidden_key', `the key "${key}" is not allowed (at ${pointer || '/'})`)
    }
    if (!key.isWellFormed()) throw badRequest('invalid_unicode', `a key at ${pointer || '/'} contains an unpaired surrogate`)
    out[key.normalize('NFC')] = sanitize(item, depth + 1, `${pointer}/${escapePointer(key)}`)
  }
  return out
}

