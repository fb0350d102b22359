import { createReadStream, existsSync } from 'node:fs'
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { Presets, SingleBar } from 'cli-progress'
import { fetchAccessToken } from './agency-keys.js'
import { fetchFrom } from './gateway-fetch.js'
import type { AgencyPrivateKey } from './agency-keys.js'
import { StatedError } from '../lib/error-description.js'

/**
 * `documents import`: sends an NDJSON file to the batch endpoint in chunks. Resumable: after
 * each chunk the number of lines done is saved beside the file, and a re-run starts after it;
 * and since registration is idempotent, a chunk sent twice (interrupted mid-way) indexes nothing
 * twice. Rejected lines go, with their reasons, to a file of their own.
 */
export interface ImportOptions {
  file: string
  gateway: string
  privateKey: AgencyPrivateKey
  agency: string
  /** lines per batch request */
  chunk?: number
  /** batch requests in flight at once (default 4): the gateway validates one while it writes another */
  parallel?: number
  /** where rejected lines go (default: <file>.rejected.ndjson) */
  rejectedFile?: string
  /** start over instead of resuming */
  restart?: boolean
  progress?: boolean
}

export interface ImportSummary {
  lines: number
  skipped: number
  created: number
  existing: number
  conflict: number
  rejected: number
  seconds: number
  rejectedFile: string
}

/** write then rename: a kill at any moment leaves the previous state or the new one, never half of one */
async function saveState (stateFile: string, linesDone: number): Promise<void> {
  await writeFile(`${stateFile}.tmp`, JSON.stringify({ linesDone }))
  await rename(`${stateFile}.tmp`, stateFile)
}

async function countLines (file: string): Promise<number> {
  let n = 0
  for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) if (line.trim() !== '') n++
  return n
}

export async function importDocuments (options: ImportOptions): Promise<ImportSummary> {
  const gateway = options.gateway.replace(/\/+$/, '')
  const chunkSize = options.chunk ?? 1000
  const stateFile = `${options.file}.import-state.json`
  const rejectedFile = options.rejectedFile ?? `${options.file}.rejected.ndjson`
  let done = 0
  if (!options.restart && existsSync(stateFile)) done = (JSON.parse(await readFile(stateFile, 'utf8')) as { linesDone: number }).linesDone
  else await writeFile(rejectedFile, '')

  const total = await countLines(options.file)
  const bar = options.progress === false ? undefined : new SingleBar({ format: 'importing {bar} {value}/{total} lines | {rate} docs/s | rejected {rejected}', hideCursor: true }, Presets.shades_classic)
  bar?.start(total, done, { rate: 0, rejected: 0 })
  const summary: ImportSummary = { lines: total, skipped: done, created: 0, existing: 0, conflict: 0, rejected: 0, seconds: 0, rejectedFile }
  const started = Date.now()

  let token = ''
  let tokenExpires = 0
  const authorization = async (): Promise<string> => {
    if (Date.now() > tokenExpires - 30_000) {
      const response = await fetchAccessToken({ gateway, privateKey: options.privateKey, agency: options.agency, scope: 'documents:write' })
      token = response.access_token
      tokenExpires = Date.now() + response.expires_in * 1000
    }
    return `Bearer ${token}`
  }

  const send = async (lines: string[], firstLine: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      let response: Response | undefined
      let answer: string
      try {
        response = await fetchFrom(`${gateway}/v1/documents/batch`, {
          method: 'POST',
          headers: { authorization: await authorization(), 'content-type': 'application/x-ndjson' },
          body: lines.join('\n') + '\n'
        })
        answer = await response.text()
      } catch (err) {
        // The connection dropped (a gateway restarted, a proxy timed out, the answer was cut
        // off): the chunk is sent again, and what it had indexed is answered `existing`. A
        // gateway that cannot be reached at all is said at once.
        const dropped = response !== undefined || /connection closed by the other side/.test(String((err as Error).message))
        if (!dropped || attempt >= 5) throw err
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt))
        continue
      }
      if (response.status === 503 && attempt < 10) {
        // the gateway is draining or its store is away: wait as told, then send the same chunk again
        await new Promise((resolve) => setTimeout(resolve, 1000 * Number(response.headers.get('retry-after') ?? 1)))
        continue
      }
      if (response.status === 401 && attempt < 2) { tokenExpires = 0; continue }
      if (!response.ok) throw new StatedError(`batch refused (${response.status}): ${answer}`)
      const results = answer.trim().split('\n').map((line) => JSON.parse(line) as { line: number, outcome: keyof ImportSummary, problem?: { code: string, detail: string } })
      const rejected: string[] = []
      for (const result of results) {
        (summary[result.outcome] as number)++
        if (result.outcome === 'rejected' || result.outcome === 'conflict') {
          rejected.push(JSON.stringify({ line: firstLine + result.line - 1, code: result.problem?.code, reason: result.problem?.detail, input: lines[result.line - 1] }))
        }
      }
      if (rejected.length) await appendFile(rejectedFile, rejected.join('\n') + '\n')
      return
    }
  }

  // chunks in flight, by their first line; `done` advances over every chunk answered in order
  const parallel = Math.max(1, options.parallel ?? 4)
  const inFlight = new Map<number, Promise<void>>()
  const answered = new Map<number, number>()
  let failure: unknown
  let saving = Promise.resolve()
  const showProgress = (): void => {
    bar?.update(done, { rate: Math.round((done - summary.skipped) / Math.max(0.001, (Date.now() - started) / 1000)), rejected: summary.rejected + summary.conflict })
  }
  const advance = async (): Promise<void> => {
    let moved = false
    for (let last = answered.get(done + 1); last !== undefined; last = answered.get(done + 1)) {
      answered.delete(done + 1)
      done = last
      moved = true
    }
    if (!moved) return
    // one save at a time, each of the furthest point reached when it starts
    const reached = done
    saving = saving.then(async () => await saveState(stateFile, reached))
    await saving
    showProgress()
  }
  const dispatch = async (lines: string[], firstLine: number): Promise<void> => {
    while (inFlight.size >= parallel) await Promise.race(inFlight.values())
    if (failure !== undefined) throw failure
    const sent = send(lines, firstLine).then(async () => {
      answered.set(firstLine, firstLine + lines.length - 1)
      await advance()
    }).catch((err: unknown) => { failure ??= err }).finally(() => inFlight.delete(firstLine))
    inFlight.set(firstLine, sent)
  }

  let lineNo = 0
  let chunk: string[] = []
  let chunkStart = done + 1
  for await (const line of createInterface({ input: createReadStream(options.file, 'utf8'), crlfDelay: Infinity })) {
    if (line.trim() === '') continue
    lineNo++
    if (lineNo <= done) continue
    chunk.push(line)
    if (chunk.length === chunkSize) {
      await dispatch(chunk, chunkStart)
      chunk = []
      chunkStart = lineNo + 1
    }
  }
  if (chunk.length) await dispatch(chunk, chunkStart)
  await Promise.all(inFlight.values())
  if (failure !== undefined) throw failure
  showProgress()
  bar?.stop()
  summary.seconds = (Date.now() - started) / 1000
  return summary
}
