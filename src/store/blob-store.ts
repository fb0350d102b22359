import { createHash, randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open as openFile, readdir, rename, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BLOB_HEADER_MAX, BlobOpener, BlobSealer, DecryptionError, SEGMENT, readBlobHeader, sealedLayout, sealedSegmentBytes } from '../lib/encryption.js'
import type { BlobHeader, Keyring } from '../lib/encryption.js'
import { StatedError } from '../lib/error-description.js'

/** The upload was larger than allowed; nothing was kept. */
export class BlobTooLargeError extends StatedError {
  constructor (readonly limit: number) { super(`the file is larger than ${limit} bytes`); this.name = 'BlobTooLargeError' }
}

/** The upload's SHA-256 is not the one announced; nothing was kept. */
export class BlobDigestMismatchError extends StatedError {
  constructor (readonly expected: string, readonly actual: string) { super('the file does not match its announced SHA-256'); this.name = 'BlobDigestMismatchError' }
}

/**
 * Content-addressed storage of digitized files: a file is kept once under its SHA-256, however
 * many documents carry it. Writes go to a temporary file, hashed and counted while streaming,
 * and are renamed into place only when whole and matching — a failed upload leaves nothing.
 */
export interface BlobStore {
  put(source: Readable, options: { maxBytes: number, expectedSha256?: string }): Promise<{ sha256: string, size: number }>
  /** the file's bytes (in clear) and their number; undefined when there is no such file */
  open(sha256: string): Promise<{ stream: Readable, size: number } | undefined>
}

export type BlobReencryptOutcome = 'reencrypted' | 'current' | 'missing'

/** Seals a stream segment by segment (see lib/encryption.ts); the last segment may be empty. */
function sealing (sealer: BlobSealer): Transform {
  let pending: Buffer = Buffer.alloc(0)
  let headerSent = false
  return new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
      const out: Buffer[] = headerSent ? [] : [sealer.header.bytes]
      headerSent = true
      // a full segment is sealed once more bytes follow it: only the one at the end is the last
      while (pending.length > SEGMENT) {
        out.push(sealer.segment(pending.subarray(0, SEGMENT), false))
        pending = pending.subarray(SEGMENT)
      }
      if (out.length > 0) callback(null, Buffer.concat(out))
      else callback()
    },
    flush (callback) {
      callback(null, Buffer.concat([...(headerSent ? [] : [sealer.header.bytes]), sealer.segment(pending, true)]))
    }
  })
}

/**
 * The files, on disk. With a keyring, each is encrypted (AES-256-GCM, in authenticated
 * segments, lib/encryption.ts) while it is written, and decrypted while it is read; it keeps
 * the address of its bytes in clear, so the same file is still kept once and its digest still
 * checked. Files written in clear before encryption was turned on read as they are.
 */
export class FileBlobStore implements BlobStore {
  constructor (private readonly dir: string, private readonly keyring?: Keyring) {}

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
      const target = createWriteStream(tmp, { mode: 0o600 })
      if (this.keyring) await pipeline(source, meter, sealing(new BlobSealer(this.keyring)), target)
      else await pipeline(source, meter, target)
      const sha256 = hash.digest('hex')
      if (options.expectedSha256 && options.expectedSha256 !== sha256) throw new BlobDigestMismatchError(options.expectedSha256, sha256)
      await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true })
      await rename(tmp, this.path(sha256))
      return { sha256, size }
    } finally {
      await rm(tmp, { force: true })
    }
  }

  /**
   * The file in clear. An encrypted file's header and first segment are checked before this
   * returns (an unknown key or an altered file fails here, before any byte is sent); later
   * segments are checked as they stream, and the whole file's SHA-256 is compared with its
   * address before its last segment is let out, so a file moved to another address or cut
   * short never arrives whole.
   */
  async open (sha256: string): Promise<{ stream: Readable, size: number } | undefined> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined
    let handle: FileHandle
    try {
      handle = await openFile(this.path(sha256), 'r')
    } catch {
      return undefined
    }
    try {
      const { size: fileBytes } = await handle.stat()
      const head = Buffer.alloc(Math.min(fileBytes, BLOB_HEADER_MAX))
      await handle.read(head, 0, head.length, 0)
      const { header } = readBlobHeader(head)
      if (!header) {
        await handle.close()
        return { stream: createReadStream(this.path(sha256)), size: fileBytes }
      }
      const what = `file ${sha256}`
      const layout = sealedLayout(fileBytes - header.bytes.length)
      if (!layout) throw new DecryptionError(what)
      const segments = openSegments(handle, header, layout.segments, new BlobOpener(this.keyring, header, what), sha256, what)
      // the first segment opened now: a wrong key or an altered start fails before the answer
      const first = await segments.next()
      return { stream: Readable.from(prepend(first, segments), { objectMode: false }), size: layout.plaintextBytes }
    } catch (err) {
      await handle.close().catch(() => {})
      throw err
    }
  }

  /** every file's address, a page at a time (for re-encryption) */
  async * addresses (): AsyncIterable<string[]> {
    let folders: string[]
    try {
      folders = await readdir(this.dir)
    } catch {
      return
    }
    for (const folder of folders.filter((name) => /^[0-9a-f]{2}$/.test(name)).sort()) {
      const files = (await readdir(join(this.dir, folder))).filter((name) => /^[0-9a-f]{64}$/.test(name) && name.startsWith(folder))
      if (files.length > 0) yield files.sort()
    }
  }

  /**
   * Re-encrypts a file with the active key (a file in clear gets encrypted); a file already
   * under it is left alone. Written beside it and renamed over it, so it is whole at all times.
   */
  async reencrypt (sha256: string): Promise<BlobReencryptOutcome> {
    if (!this.keyring) throw new StatedError('no encryption key is configured (ENCRYPTION_KEYS or ENCRYPTION_KEYS_FILE)')
    if (await this.keyIdOf(sha256) === this.keyring.activeId) return 'current'
    const found = await this.open(sha256)
    if (!found) return 'missing'
    await this.put(found.stream, { maxBytes: Number.MAX_SAFE_INTEGER, expectedSha256: sha256 })
    return 'reencrypted'
  }

  /** the key a stored file is encrypted with; undefined when it is in clear or absent */
  async keyIdOf (sha256: string): Promise<string | undefined> {
    try {
      const handle = await openFile(this.path(sha256), 'r')
      try {
        const head = Buffer.alloc(BLOB_HEADER_MAX)
        const { bytesRead } = await handle.read(head, 0, head.length, 0)
        return readBlobHeader(head.subarray(0, bytesRead)).header?.keyId
      } finally {
        await handle.close()
      }
    } catch {
      return undefined
    }
  }

  /** how many files there are (for progress) */
  async count (): Promise<number> {
    let n = 0
    for await (const page of this.addresses()) n += page.length
    return n
  }
}

/** Reads and opens an encrypted file's segments in order, then checks the whole file's digest. */
async function * openSegments (handle: FileHandle, header: BlobHeader, count: number, opener: BlobOpener, sha256: string, what: string): AsyncGenerator<Buffer> {
  try {
    const hash = createHash('sha256')
    const buffer = Buffer.alloc(sealedSegmentBytes(SEGMENT))
    let position = header.bytes.length
    for (let i = 0; i < count; i++) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position)
      position += bytesRead
      const last = i === count - 1
      const plain = opener.segment(buffer.subarray(0, bytesRead), last)
      hash.update(plain)
      if (last && hash.digest('hex') !== sha256) throw new DecryptionError(what)
      if (plain.length > 0) yield plain
    }
  } finally {
    await handle.close()
  }
}

async function * prepend (first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (!first.done) yield first.value
  yield * rest
}
