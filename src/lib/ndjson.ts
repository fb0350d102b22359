import { isUtf8 } from 'node:buffer'
import { Readable } from 'node:stream'
import { ProblemError } from './problem.js'

/**
 * NDJSON request bodies (the document batch) and answers (the batch's results, the audit export). A batch's lines are its `\n`-separated pieces, a
 * last piece of only whitespace (the final newline) not counted; blank lines elsewhere count and
 * are answered as lines of their own.
 *
 * The body is read with its newlines counted chunk by chunk, so a body of more lines than
 * allowed is refused at the first chunk that passes the limit, not once it has all arrived and
 * been split: a 64 MiB body of newlines would otherwise cost tens of millions of strings.
 */
export interface NdjsonLimits {
  /** BATCH_BODY_LIMIT_BYTES */
  maxBytes: number
  /** BATCH_MAX_LINES */
  maxLines: number
}

const NEWLINE = 0x0a

function tooManyLines (maxLines: number, count?: number): ProblemError {
  const seen = count === undefined ? `more than ${maxLines}` : String(count)
  return new ProblemError(413, 'batch_too_large', `the batch has ${seen} lines; at most ${maxLines} are accepted (BATCH_MAX_LINES)`)
}

function tooManyBytes (maxBytes: number): ProblemError {
  return new ProblemError(413, 'body_too_large', `the batch is larger than ${maxBytes} bytes (BATCH_BODY_LIMIT_BYTES)`)
}

/**
 * Reads an NDJSON body as text, refusing it (413) as soon as it has more newlines than a batch
 * may have lines, or more bytes than allowed. `contentLength` is the announced length, refused
 * before reading when over. On refusal the rest of the body is read and dropped, not kept: the
 * caller answers and closes the connection.
 */
export async function readNdjson (payload: Readable, limits: NdjsonLimits, contentLength?: number): Promise<string> {
  if (contentLength !== undefined && contentLength > limits.maxBytes) throw tooManyBytes(limits.maxBytes)
  return await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    let bytes = 0
    let newlines = 0
    const stop = (): void => {
      payload.removeListener('data', onData)
      payload.removeListener('end', onEnd)
      payload.removeListener('error', onError)
      // still flowing, with no listener: what else arrives is dropped until the connection closes
      payload.resume()
    }
    function onData (chunk: Buffer | string): void {
      const bytesOf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      bytes += bytesOf.length
      if (bytes > limits.maxBytes) { stop(); reject(tooManyBytes(limits.maxBytes)); return }
      // 0x0a is never part of a multi-byte UTF-8 sequence: counting bytes counts the text's newlines
      for (let at = bytesOf.indexOf(NEWLINE); at !== -1; at = bytesOf.indexOf(NEWLINE, at + 1)) {
        // more newlines than lines allowed is more lines than allowed, whatever follows
        if (++newlines > limits.maxLines) { stop(); reject(tooManyLines(limits.maxLines)); return }
      }
      chunks.push(bytesOf)
    }
    function onEnd (): void {
      stop()
      if (contentLength !== undefined && bytes !== contentLength) {
        reject(new ProblemError(400, 'invalid_content_length', `the body has ${bytes} bytes, not the ${contentLength} announced by Content-Length`))
        return
      }
      const body = Buffer.concat(chunks, bytes)
      // checked once for the whole body, so each line need not be
      if (!isUtf8(body)) {
        reject(new ProblemError(400, 'invalid_utf8', 'the request body is not valid UTF-8'))
        return
      }
      resolve(body.toString('utf8'))
    }
    function onError (err: Error): void {
      stop()
      reject(Object.assign(err, { statusCode: 400 }))
    }
    payload.on('data', onData)
    payload.on('end', onEnd)
    payload.on('error', onError)
    payload.resume()
  })
}

/**
 * The lines of a batch (see above), 413 when more than `maxLines`. Splits no further than one
 * piece past the limit, so a text of any size costs at most that many strings.
 */
export function ndjsonLines (text: string, maxLines: number): string[] {
  const lines = text.split('\n', maxLines + 2)
  const whole = lines.length < maxLines + 2
  if (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop()
  if (lines.length > maxLines) throw tooManyLines(maxLines, whole ? lines.length : undefined)
  return lines
}

/** An answer streamed as NDJSON: each item one line, written as it comes. */
export function ndjsonStream (items: AsyncIterable<unknown>): Readable {
  return Readable.from((async function * () {
    for await (const item of items) yield JSON.stringify(item) + '\n'
  })())
}
