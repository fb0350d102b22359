import type { Readable } from 'node:stream'
import { ProblemError } from '../lib/problem.js'
import type { BlobStore } from '../store/blob-store.js'
import type { DownloadGrant, ReuseRecordStore } from '../store/index.js'
import type { Call } from './call.js'
import type { ReuseStats } from './stats.js'

/**
 * Released files: a download link from a reuse query is used once, by the requester it was
 * issued to, and every attempt is on the audit trail.
 */

export interface Download {
  grant: DownloadGrant
  blob: { stream: Readable, size: number }
}

export interface DownloadServiceDeps {
  reuseRecords: Pick<ReuseRecordStore, 'peekDownloadGrant' | 'takeDownloadGrant'>
  blobs: Pick<BlobStore, 'open'>
  stats: Pick<ReuseStats, 'countDownload'>
}

export class DownloadService {
  constructor (private readonly deps: DownloadServiceDeps) {}

  /** Uses up the link `token` for the caller: its grant and the opened file, audited before they are handed over. */
  async take (call: Call, token: string): Promise<Download> {
    const { caller, audit } = call
    const peeked = await this.deps.reuseRecords.peekDownloadGrant(token)
    if (!peeked) {
      await audit({ action: 'file.downloaded', outcome: 'denied', detail: { code: 'download_not_found' } })
      throw new ProblemError(404, 'download_not_found', 'this download link is unknown, used already, or expired')
    }
    if (peeked.requester !== caller.code) {
      // another agency's link: refused, and left usable for its owner
      await audit({ action: 'file.downloaded', outcome: 'denied', documents: [{ id: peeked.documentId, version: peeked.version }], detail: { code: 'download_not_yours' } })
      throw new ProblemError(403, 'download_not_yours', 'this download link was issued to another agency')
    }
    const grant = await this.deps.reuseRecords.takeDownloadGrant(token)
    if (!grant) throw new ProblemError(404, 'download_not_found', 'this download link was used meanwhile')
    const blob = await this.deps.blobs.open(grant.sha256)
    if (!blob) throw new ProblemError(404, 'file_missing', 'the file is not in the file store')
    await audit({ action: 'file.downloaded', outcome: 'granted', documents: [{ id: grant.documentId, version: grant.version }], purpose: { procedureCode: grant.procedureCode, dossierCode: grant.dossierCode }, detail: { sha256: grant.sha256 } })
    await this.deps.stats.countDownload(call.log, { requester: caller.code, procedureCode: grant.procedureCode, documentId: grant.documentId, version: grant.version })
    return { grant, blob }
  }
}
