/**
 * RFC 9457 problem details. Every error the gateway returns is one of these, with a stable
 * machine-readable `code` that integrators can switch on; `type` is derived from the code.
 */
export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  code: string
  instance?: string
  requestId?: string
  errors?: ProblemFieldError[]
  [extension: string]: unknown
}

export interface ProblemFieldError {
  /** where the offending value is: body, querystring, params or headers */
  in: string
  /** RFC 6901 JSON pointer into that part of the request */
  pointer: string
  detail: string
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout'
}

export function problemType (code: string): string {
  return `urn:reuse-gateway:problem:${code}`
}

export function statusTitle (status: number): string {
  return TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error')
}

export interface ProblemOptions {
  headers?: Record<string, string>
  extensions?: Record<string, unknown>
  errors?: ProblemFieldError[]
  cause?: unknown
}

/** An error that is meant for the caller: thrown anywhere below a route, rendered by the root handler. */
export class ProblemError extends Error {
  readonly status: number
  readonly code: string
  readonly headers: Record<string, string>
  readonly extensions: Record<string, unknown>
  readonly errors?: ProblemFieldError[]

  constructor (status: number, code: string, detail: string, options: ProblemOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ProblemError'
    this.status = status
    this.code = code
    this.headers = options.headers ?? {}
    this.extensions = options.extensions ?? {}
    if (options.errors) this.errors = options.errors
  }

  toBody (requestId?: string): ProblemBody {
    const body: ProblemBody = {
      type: problemType(this.code),
      title: statusTitle(this.status),
      status: this.status,
      detail: this.message,
      code: this.code,
      ...this.extensions
    }
    if (this.errors) body.errors = this.errors
    if (requestId) body.requestId = requestId
    return body
  }
}

export const badRequest = (code: string, detail: string, options?: ProblemOptions): ProblemError =>
  new ProblemError(400, code, detail, options)
export const notFound = (code: string, detail: string): ProblemError => new ProblemError(404, code, detail)
export const conflict = (code: string, detail: string, options?: ProblemOptions): ProblemError =>
  new ProblemError(409, code, detail, options)
export const forbidden = (code: string, detail: string): ProblemError => new ProblemError(403, code, detail)

/** The shape of an Ajv error, as Fastify and our own validators report it. */
export interface AjvLikeError {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
  /** the schema holding the failed keyword (Ajv's `verbose` option) */
  parentSchema?: unknown
}

/** What a value of a standard format looks like, said to whoever sent another. */
const FORMS_OF_FORMATS: Record<string, string> = {
  date: 'a date as YYYY-MM-DD, e.g. 2023-04-15',
  'date-time': 'a date and time as RFC 3339 with a time zone, e.g. 2023-04-15T08:30:00+07:00',
  time: 'a time as hh:mm:ss with a time zone, e.g. 08:30:00+07:00',
  uri: 'an absolute URI, e.g. https://agency.example/jwks.json',
  email: 'an e-mail address, e.g. mot-cua@agency.example',
  uuid: 'a UUID, e.g. 3f2b8c1e-9d4a-4e6b-8f0a-2c5d7e9b1a34'
}

/**
 * The form a value must have, for a failed `pattern` or `format`: the schema's title and first
 * example (`must be a dossier code (mã hồ sơ), e.g. 000.00.41.H41-230415-0007`), else the
 * format's usual form, else Ajv's words with the example; undefined when nothing is known.
 */
function expectedForm (e: AjvLikeError): string | undefined {
  const schema = (e.parentSchema ?? {}) as { title?: unknown, examples?: unknown[], example?: unknown }
  const example = schema.examples?.[0] ?? schema.example
  if (typeof schema.title === 'string' && typeof example === 'string') return `must be ${schema.title}, e.g. ${example}`
  if (e.keyword === 'format' && typeof e.params.format === 'string') {
    const form = FORMS_OF_FORMATS[e.params.format]
    if (form) return `must be ${form}`
  }
  return typeof example === 'string' && e.message ? `${e.message}, e.g. ${example}` : undefined
}

/** RFC 6901: a key as one segment of a JSON pointer. */
export const escapePointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1')

/**
 * One entry per failed check, with a JSON pointer to the value (or the field) at fault.
 * `prefix` places the pointers inside a larger body (e.g. `/data` for structured data).
 */
export function validationErrors (
  errors: AjvLikeError[],
  part: string,
  options: { prefix?: string, unknownField?: string } = {}
): ProblemFieldError[] {
  const seen = new Set<string>()
  return errors.map((e) => {
    let pointer = (options.prefix ?? '') + e.instancePath
    let detail = e.message ?? 'is invalid'
    if (e.keyword === 'additionalProperties' && typeof e.params.additionalProperty === 'string') {
      pointer += `/${escapePointer(e.params.additionalProperty)}`
      detail = options.unknownField ?? 'is not a known field'
    } else if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') {
      pointer += `/${escapePointer(e.params.missingProperty)}`
      detail = 'is required'
    } else if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues)) {
      detail = `must be one of: ${e.params.allowedValues.join(', ')}`
    } else if (e.keyword === 'pattern' || e.keyword === 'format') {
      detail = expectedForm(e) ?? detail
    }
    return { in: part, pointer, detail }
  }).filter((error) => {
    // a value failing both the pattern and the format of one schema is told once
    const key = `${error.pointer}\n${error.detail}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
