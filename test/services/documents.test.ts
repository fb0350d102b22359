import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { ProblemError } from '../../src/lib/problem.js'
import { generateDocuments } from '../../src/sample-data/generate.js'
import type { SampleDocument } from '../../src/sample-data/generate.js'
import { Catalogue } from '../../src/services/catalogue.js'
import { DocumentService } from '../../src/services/documents.js'
import type { BatchLineResult, DocumentInput, IssuerCall } from '../../src/services/documents.js'
import type { AuditEvent } from '../../src/services/audit.js'
import { FileBlobStore } from '../../src/store/blob-store.js'
import { MemoryStores } from '../../src/store/index.js'

/**
 * The issuer's use cases of the index without HTTP: each change on record before it is made
 * (and not made when the record fails), a refused type on record as denied, a batch answered
 * line by line in order, a file attached once.
 */
const docs = [...generateDocuments(3, { seed: 7 })] as SampleDocument[]
const birth = docs[0] as SampleDocument

interface World { service: DocumentService, store: MemoryStores, events: Array<Partial<AuditEvent>>, call: IssuerCall, discarded: string[] }

async function world (options: { failAudit?: boolean, types?: string[] } = {}): Promise<World> {
  const store = new MemoryStores()
  const catalogue = new Catalogue({ catalogue: store.catalogue })
  await catalogue.seed()
  const discarded: string[] = []
  const service = new DocumentService({
    documents: store.documents,
    catalogue,
    pepper: 'test-pepper',
    announcements: { discard: async (id) => { discarded.push(id) } },
    files: { blobs: new FileBlobStore(mkdtempSync(join(tmpdir(), 'rg-doc-svc-'))), maxBytes: 1024 }
  })
  const events: Array<Partial<AuditEvent>> = []
  const call: IssuerCall = {
    caller: { code: '000.00.12.H41', issuableTypes: options.types ?? docs.map((d) => d.type) },
    audit: async (event) => {
      if (options.failAudit) throw new Error('the audit trail is down')
      const recorded = { ...event, id: `e${events.length + 1}` }
      events.push(recorded)
      return recorded as AuditEvent
    },
    log: { warn: () => {} }
  }
  return { service, store, events, call, discarded }
}

t.test('index: on record, then written; the same again is existing and not audited again', async (t) => {
  const w = await world()
  const first = await w.service.index(w.call, birth)
  t.equal(first.outcome, 'created')
  t.same(w.events.map((e) => [e.action, e.outcome]), [['document.indexed', 'granted']])
  const again = await w.service.index(w.call, birth)
  t.equal(again.outcome, 'existing')
  t.equal(w.events.length, 1, 'nothing new written, nothing new audited')
})

t.test('index: when the audit trail cannot take it, nothing is written', async (t) => {
  const w = await world({ failAudit: true })
  await t.rejects(w.service.index(w.call, birth), /audit trail is down/)
  t.same(await w.store.documents.documentsOfSubject(w.service.subjectHash(birth.subject)), [])
})

t.test('index: the same number with other content is a conflict, not a write', async (t) => {
  const w = await world()
  await w.service.index(w.call, birth)
  const changed = await w.service.index(w.call, { ...birth, dossierCode: `${birth.dossierCode}-2` })
  t.equal(changed.outcome, 'conflict')
  if (changed.outcome === 'conflict') t.equal(changed.problem.code, 'document_exists')
})

t.test('a type the issuer is not competent for is refused and on record as denied', async (t) => {
  const w = await world({ types: [] })
  await t.rejects(w.service.index(w.call, birth), { status: 403, code: 'type_not_issuable' })
  t.same(w.events.map((e) => [e.action, e.outcome]), [['document.indexed', 'denied']])
})

t.test('indexBatch: no line is refused at once; lines are answered in order, a bad one rejected', async (t) => {
  const w = await world()
  const read = (line: string): DocumentInput => {
    if (line === 'garbage') throw new ProblemError(400, 'invalid_json', 'not JSON')
    return JSON.parse(line) as DocumentInput
  }
  t.throws(() => w.service.indexBatch(w.call, [], read), { status: 400, code: 'empty_batch' })
  const lines = [JSON.stringify(docs[0]), 'garbage', JSON.stringify(docs[1]), JSON.stringify(docs[0])]
  const results: BatchLineResult[] = []
  for await (const result of w.service.indexBatch(w.call, lines, read)) results.push(result)
  t.same(results.map((r) => [r.line, r.outcome]), [[1, 'created'], [2, 'rejected'], [3, 'created'], [4, 'existing']])
})

t.test('attachFile: stored, on record and attached once; the same version again is a 409', async (t) => {
  const w = await world()
  const created = await w.service.index(w.call, birth)
  if (created.outcome === 'conflict') throw created.problem
  const id = created.document.id
  const upload = (): { bytes: Readable, mediaType: string } => ({ bytes: Readable.from([Buffer.from('%PDF-1.7 a scan')]), mediaType: 'application/pdf' })
  const attached = await w.service.attachFile(w.call, id, upload())
  t.equal(attached.file?.size, 15)
  t.equal(w.events.at(-1)?.action, 'document.file_uploaded')
  await t.rejects(w.service.attachFile(w.call, id, upload()), { status: 409, code: 'file_exists' })
  await t.rejects(w.service.attachFile(w.call, id, { ...upload(), announcedSize: 4096 }), { code: 'file_exists' })
})
