import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

/**
 * Integrators switch on a problem's `code`, so docs/errors.md must name every code
 * the gateway can send. The codes are read from the source: every literal passed as the `code`
 * of a ProblemError or AuthCheckError, or of any function that forwards a `code: string`
 * parameter (badRequest, deny, refuse, sendOAuthError…), every `code = '…'` / `code: '…'`, and
 * the values of the *CODES* maps. A template code (`${what}_expired`) is expanded from the
 * string-union type of its variable in the same file; one that cannot be expanded fails the test.
 */
const ROOT = new URL('..', import.meta.url).pathname

/** literals that look like codes but never reach a caller, and why */
const NOT_PROBLEM_CODES: Record<string, string> = {
  outbound_refused: 'the error code of an outbound call the gateway refused to make; callers see jwks_unavailable or outbound_url_refused'
}

const CODE = /^[a-z][a-z0-9_]*$/

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** The text of the call's arguments from `open` (just past the `(`), split at top-level commas. */
function callArguments (text: string, open: number): string[] {
  const args: string[] = []
  let depth = 0
  let start = open
  let quote: string | undefined
  for (let i = open; i < text.length; i++) {
    const c = text[i] as string
    if (quote) {
      if (c === '\\') i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === '\'' || c === '"' || c === '`') quote = c
    else if (c === '(' || c === '[' || c === '{') depth++
    else if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) { args.push(text.slice(start, i)); return args }
      depth--
    } else if (c === ',' && depth === 0) { args.push(text.slice(start, i)); start = i + 1 }
  }
  return args
}

/** Parameter lists of functions, arrows and constructors: where their `code: string` parameter is. */
function codeParameters (text: string): Map<string, number> {
  const found = new Map<string, number>()
  const declarations = [
    /function\s+(\w+)\s*(?:<[^>]*>)?\s*\(/g,
    /(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?\(/g,
    /class\s+(\w+)[^{]*\{[^]*?constructor\s*\(/g
  ]
  for (const pattern of declarations) {
    for (const match of text.matchAll(pattern)) {
      const params = callArguments(text, (match.index) + match[0].length)
      const index = params.findIndex((p) => /^\s*(?:(?:readonly|private|public)\s+)*code\s*:\s*string\b/.test(p))
      if (index >= 0) found.set(match[1] as string, index)
    }
  }
  return found
}

/** The string values a code argument can take: its literals, template codes expanded. */
function literalsOf (argument: string, file: string, text: string, unresolved: string[]): string[] {
  const out: string[] = []
  for (const m of argument.matchAll(/'([^'\\]*)'|"([^"\\]*)"|`([^`\\]*)`/g)) {
    const value = m[1] ?? m[2] ?? m[3] ?? ''
    const template = /\$\{(\w+)\}/.exec(value)
    if (!template) { out.push(value); continue }
    const union = new RegExp(`\\b${template[1]}\\s*:\\s*((?:'[a-z_]+'\\s*\\|\\s*)*'[a-z_]+')`).exec(text)
    if (!union) { unresolved.push(`${file}: ${value}`); continue }
    for (const option of (union[1] as string).matchAll(/'([a-z_]+)'/g)) out.push(value.replace(template[0], option[1] as string))
  }
  return out.filter((value) => CODE.test(value))
}

function codesSent (): { codes: Map<string, string[]>, unresolved: string[] } {
  const files = sourceFiles(join(ROOT, 'src')).map((path) => ({ path: path.slice(ROOT.length), text: readFileSync(path, 'utf8') }))
  // helpers are found in every file first: one file calls what another declares and exports
  const declared = files.map(({ text }) => codeParameters(text))
  const helpers = new Map<string, number>()
  for (const found of declared) for (const [name, index] of found) helpers.set(name, index)
  const codes = new Map<string, string[]>()
  const unresolved: string[] = []
  const add = (code: string, where: string): void => { codes.set(code, [...(codes.get(code) ?? []), where]) }
  for (const [n, { path, text }] of files.entries()) {
    // a file's own helpers and those it imports; a method of the same name (`x.refused(`) is another function
    const inScope = [...helpers].filter(([name]) => declared[n]?.has(name) || new RegExp(`import\\s*(?:type\\s*)?\\{[^}]*\\b${name}\\b[^}]*\\}`).test(text))
    const calls: Array<[RegExp, number]> = inScope.map(([name, index]) => [new RegExp(`(?<![.\\w$])${name}\\s*\\(`, 'g'), index])
    // a subclass's constructor passes its code on to its parent's
    if (/class\s+\w+\s+extends\s+(?:ProblemError|AuthCheckError)\b/.test(text)) calls.push([/\bsuper\s*\(/g, helpers.get('ProblemError') ?? 1])
    for (const [pattern, index] of calls) {
      for (const m of text.matchAll(pattern)) {
        const argument = callArguments(text, m.index + m[0].length)[index]
        if (argument !== undefined) for (const code of literalsOf(argument, path, text, unresolved)) add(code, path)
      }
    }
    for (const m of text.matchAll(/\bcode\s*[:=]\s*'([a-z][a-z0-9_]*)'/g)) add(m[1] as string, path)
    for (const m of text.matchAll(/const\s+\w*CODES\w*[^=]*=\s*\{([^}]*)\}/g)) {
      for (const value of (m[1] as string).matchAll(/:\s*'([a-z][a-z0-9_]*)'/g)) add(value[1] as string, path)
    }
  }
  for (const code of Object.keys(NOT_PROBLEM_CODES)) codes.delete(code)
  return { codes, unresolved }
}

/** The codes docs/errors.md names, with the status of their row. */
function documentedCodes (): Map<string, string> {
  const page = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8')
  const documented = new Map<string, string>()
  for (const row of page.split('\n').filter((line) => line.startsWith('| `'))) {
    const [codes, status] = row.split('|').slice(1, 3)
    for (const m of (codes ?? '').matchAll(/`([a-z][a-z0-9_]*)`/g)) documented.set(m[1] as string, (status ?? '').trim())
  }
  return documented
}

t.test('the scan finds the codes it is meant to find', async (t) => {
  const { codes, unresolved } = codesSent()
  t.same(unresolved, [], 'every template code expands')
  // one of each way a code is given: ProblemError, AuthCheckError, a helper, a template, a map, an assignment, a subclass
  for (const code of ['document_exists', 'kid_missing', 'invalid_utf8', 'consent_wrong_types', 'no_agreement', 'procedure_not_granted',
    'assertion_expired', 'token_not_yet_valid', 'unsupported_grant_type', 'bad_url', 'request_timeout', 'store_not_durable', 'type_not_issuable']) {
    t.ok(codes.has(code), code)
  }
  t.ok(codes.size > 100, `${codes.size} codes found`)
})

t.test('docs/errors.md names every problem code the gateway sends', async (t) => {
  const { codes } = codesSent()
  const documented = documentedCodes()
  const missing = [...codes.keys()].filter((code) => !documented.has(code)).sort()
  t.same(missing, [], `codes sent but not in docs/errors.md: ${missing.map((code) => `${code} (${codes.get(code)?.[0] ?? ''})`).join(', ')}`)
  const stale = [...documented.keys()].filter((code) => !codes.has(code)).sort()
  t.same(stale, [], `codes in docs/errors.md the gateway never sends: ${stale.join(', ')}`)
})
