import { createHash, randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** The upload was larger than allowed; nothing was kept. */
export class BlobTooLargeError extends Error {
  constructor (readonly limit: number) { super(`the file is larger than ${limit} bytes`); this.name = 'BlobTooLargeError' }
}

/** The upload's SHA-256 is not the one announced; nothing was kept. */
export class BlobDigestMismatchError extends Error {
  constructor (readonly expected: string, readonly actual: string) { super('the file does not match its announced SHA-256'); this.name = 'BlobDigestMismatchError' }
}

/**
 * Content-addressed storage of digitized files: a file is kept once under its SHA-256, however
 * many documents carry it. Writes go to a temporary file, hashed and counted while streaming,
 * and are renamed into place only when whole and matching — a failed upload leaves nothing.
 */
export interface BlobStore {
  put(source: Readable, options: { maxBytes: number, expectedSha256?: string }): Promise<{ sha256: string, size: number }>
  open(sha256: string): Promise<{ stream: Readable, size: number } | undefined>
}

export class FileBlobStore implements BlobStore {
  constructor (private readonly dir: string) {}

  private path (sha256: string): string {
    return join(this.dir, sha256.slice(0, 2), sha256)
  }

  async put (source: Readable, options: { maxBytes: number, expectedSha256?: string }): Promise<{ sha256: string, size: number }> {
    const tmpDir = join(this.dir, 'tmp')
    await mkdir(tmpDir, { recursive: true })
    const tmp = join(tmpDir, randomUUID())
    const hash = createHash('sha256')
    let size = 0
    const meter = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        size += chunk.length
        if (size > options.maxBytes) { callback(new BlobTooLargeError(options.maxBytes)); return }
        hash.update(chunk)
        callback(null, chunk)
      }
    })
    try {
      await pipeline(source, meter, createWriteStream(tmp, { mode: 0o600 }))
      const sha256 = hash.digest('hex')
      if (options.expectedSha256 && options.expectedSha256 !== sha256) throw new BlobDigestMismatchError(options.expectedSha256, sha256)
      const target = this.path(sha256)
      await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true })
      await rename(tmp, target)
      return { sha256, size }
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async open (sha256: string): Promise<{ stream: Readable, size: number } | undefined> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined
    try {
      const info = await stat(this.path(sha256))
      return { stream: createReadStream(this.path(sha256)), size: info.size }
    } catch {
      return undefined
    }
  }
}
