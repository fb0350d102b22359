import { Ajv2020 } from 'ajv/dist/2020.js'
import type { Options as AjvOptions } from 'ajv'
import addFormatsModule from 'ajv-formats'

/**
 * The JSON Schema validator every part of the gateway uses: draft 2020-12 (the dialect of
 * OpenAPI 3.1 and of the document-type catalogue), strict, every error reported.
 */

// ajv-formats is CommonJS with a default export that NodeNext sees as the module namespace
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default

/** Keywords that OpenAPI documents carry but JSON Schema validation does not use. */
const ANNOTATION_KEYWORDS = ['example', 'x-scope', 'x-personal-data']

export function createAjv (options: AjvOptions = {}): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: false,
    // each error carries the schema that failed, so that a refusal can name the expected form
    // (its title and example: lib/problem.ts) rather than quote a regular expression
    verbose: true,
    ...options
  })
  addFormats(ajv)
  for (const keyword of ANNOTATION_KEYWORDS) ajv.addKeyword(keyword)
  return ajv
}
