import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { jwtVerify } from 'jose'
import type { JWTVerifyGetKey } from 'jose'
import { CHECKPOINT_TYP, eventHash, GENESIS_HASH } from './audit.js'
import type { AuditEvent } from './audit.js'
import { StatedError } from '../lib/error-description.js'

/**
 * Verification of the audit trail, the same online (events from the store) and offline (from
 * the audit log file): every event's hash is recomputed, every link to its predecessor checked,
 * and the signed checkpoints — verified against the gateway's JWKS — pin each chain's head, so
 * an edited, deleted, reordered or cut-off event is found and the first bad one named.
 *
 * Offline, a log's own chain (named as `writer` by the checkpoints the log holds) must be in it:
 * a file stripped of every event of its chain would otherwise read as a gateway that did nothing.
 *
 * Retention: a chain whose oldest kept event is past seq 1 must start right after a signed
 * checkpoint (seq + 1, prevHash = the checkpoint's hash): that is where verification begins.
 * A range export (`from`) starts its chains wherever the range does: each such chain is vouched
 * for backwards instead, by an event of it that a signed checkpoint pins (every hash before it
 * is covered by the hashes after it), and a chain no checkpoint pins is not vouched for at all.
 *
 * The format is written down in docs/audit-format.md, for verifiers that do not share this code.
 */
export interface VerifyResult {
  ok: boolean
  checked: number
  chains: number
  checkpoints: number
  firstBadEvent?: string
  reason?: string
}

export interface CheckpointInput {
  time?: string
  jws: string
  /**
   * read from the audit log being verified: the chain it names as its writer is this log's own,
   * so that chain must be present (a checkpoint kept elsewhere may come from another process)
   */
  inLog?: boolean
}

interface Anchor { seq: number, hash: string }

interface ChainState {
  lastSeq: number
  lastHash: string
  lastId: string
  /** a range export's chain that started mid-way: its first event, until a checkpoint pins one of its events */
  unvouched?: { id: string, seq: number }
}

export async function verifyAuditTrail (
  events: AsyncIterable<AuditEvent>,
  checkpoints: CheckpointInput[],
  keys: JWTVerifyGetKey,
  options: {
    issuer?: string
    /** which events count toward `checked` (the rest are still verified) */
    count?: (event: AuditEvent) => boolean
    /**
     * every chain a checkpoint names must be present (the store, or all logs together); a single
     * process's log holds only its own chain, so the others' absence is not an error there
     */
    requireAllChains?: boolean
    /**
     * the events are an export from this time on (ISO 8601): a chain may start past its
     * beginning if a signed checkpoint pins one of its events further on; earlier events are refused
     */
    from?: string
    /**
     * a walk that starts mid-chain (a range, or a request continuing another): the position a
     * chain starts after — where a signed checkpoint among `checkpoints` pinned it, or where
     * this gateway's verification cursor stopped. A start a checkpoint pins must match it.
     */
    startOf?: (chain: string) => { seq: number, hash: string } | undefined
    /** the chains whose ends are checked (default: all); a walk stopped by its budget has not reached the others' */
    finished?: (chain: string) => boolean
    /**
     * an archived trail: events leave it only by retention, which signs a retention checkpoint
     * (claims with `retention`) first, so a chain that starts past seq 1 must start right after
     * the pin of one — a row deleted or a month dropped any other way is found
     */
    retentionStartsOnly?: boolean
  } = {}
): Promise<VerifyResult> {
  const from = options.from === undefined ? undefined : Date.parse(options.from)
  const anchors = new Map<string, Map<number, string>>()
  /** the positions retention checkpoints pin: chain → seqs */
  const retained = new Map<string, Set<number>>()
  const ownChains = new Set<string>()
  for (const [i, checkpoint] of checkpoints.entries()) {
    let chains: Array<{ chain: string, seq: number, hash: string }>
    try {
      const { payload } = await jwtVerify(checkpoint.jws, keys, { typ: CHECKPOINT_TYP, ...(options.issuer ? { issuer: options.issuer } : {}) })
      chains = payload.chains as typeof chains
      if (!Array.isArray(chains)) throw new StatedError('no chains')
      if (checkpoint.inLog === true && typeof payload.writer === 'string') ownChains.add(payload.writer)
      if (typeof payload.retention === 'object' && payload.retention !== null) {
        for (const head of chains) retained.set(head.chain, (retained.get(head.chain) ?? new Set()).add(head.seq))
      }
    } catch (err) {
      return { ok: false, checked: 0, chains: 0, checkpoints: i, firstBadEvent: `checkpoint ${checkpoint.time ?? i}`, reason: `checkpoint ${i + 1} does not verify against the gateway's keys (${(err as Error).message}): forged or altered` }
    }
    for (const head of chains) {
      let byChain = anchors.get(head.chain)
      if (!byChain) anchors.set(head.chain, byChain = new Map())
      const known = byChain.get(head.seq)
      if (known !== undefined && known !== head.hash) {
        return { ok: false, checked: 0, chains: 0, checkpoints: i + 1, firstBadEvent: `${head.chain}#${head.seq}`, reason: 'two signed checkpoints disagree about the same chain position' }
      }
      byChain.set(head.seq, head.hash)
    }
  }

  const states = new Map<string, ChainState>()
  let checked = 0
  const bad = (event: AuditEvent | string, reason: string): VerifyResult => ({
    ok: false,
    checked,
    chains: states.size,
    checkpoints: checkpoints.length,
    firstBadEvent: typeof event === 'string' ? event : event.id,
    reason
  })

  for await (const event of events) {
    const unreadable = (event as unknown as Record<symbol, string | undefined>)[UNREADABLE]
    if (unreadable !== undefined) return bad(event.id, `${event.id}: ${unreadable}`)
    if (typeof event?.chain !== 'string' || typeof event.seq !== 'number') return bad(String(event?.id ?? 'unreadable'), 'an event lacks its chain position')
    if (eventHash(event) !== event.hash) return bad(event, `event ${event.chain}#${event.seq} has been altered: its content does not match its hash`)
    if (from !== undefined && !(Date.parse(event.time) >= from)) return bad(event, `event ${event.chain}#${event.seq} is dated ${String(event.time)}, before the range the export starts at (${options.from as string})`)
    const chainAnchors = anchors.get(event.chain)
    let unvouched: ChainState['unvouched']
    let state = states.get(event.chain)
    const resumed = state ? undefined : options.startOf?.(event.chain)
    if (resumed !== undefined) {
      const pinnedStart = chainAnchors?.get(resumed.seq)
      if (pinnedStart !== undefined && pinnedStart !== resumed.hash) return bad(`${event.chain}#${resumed.seq}`, `chain ${event.chain} was to be read from #${resumed.seq} on, but the position differs from what a signed checkpoint recorded`)
      state = { lastSeq: resumed.seq, lastHash: resumed.hash, lastId: `${event.chain}#${resumed.seq}` }
    }
    if (!state) {
      const before = chainAnchors?.get(event.seq - 1)
      if (event.seq === 1) {
        if (event.prevHash !== GENESIS_HASH) return bad(event, 'the first event of a chain must link to the genesis hash')
      } else if (options.retentionStartsOnly && !retained.get(event.chain)?.has(event.seq - 1)) {
        return bad(event, `events ${event.chain}#1..${event.seq - 1} are missing: in an archived trail only retention removes events, and no retention checkpoint vouches for where this chain resumes`)
      } else if (before !== undefined && before !== event.prevHash) {
        return bad(event, `event ${event.chain}#${event.seq} does not link to the hash a signed checkpoint recorded for #${event.seq - 1}`)
      } else if (before === undefined) {
        if (from === undefined) return bad(event, `events ${event.chain}#1..${event.seq - 1} are missing and no signed checkpoint vouches for where this chain resumes (if this is an export of a time range, say where it starts: --from)`)
        unvouched = { id: event.id, seq: event.seq }
      }
    } else {
      unvouched = state.unvouched
      if (event.seq <= state.lastSeq) return bad(event, `event ${event.chain}#${event.seq} is out of order or repeated (after #${state.lastSeq})`)
      if (event.seq > state.lastSeq + 1) return bad(event, `event(s) ${event.chain}#${state.lastSeq + 1}..${event.seq - 1} are missing before this one`)
      if (event.prevHash !== state.lastHash) return bad(event, `event ${event.chain}#${event.seq} does not link to its predecessor (the previous event was altered or replaced)`)
    }
    const pinned = chainAnchors?.get(event.seq)
    if (pinned !== undefined && pinned !== event.hash) return bad(event, `event ${event.chain}#${event.seq} differs from what a signed checkpoint recorded`)
    // the pinned hash covers this event and, through the links, every one before it in the file
    if (pinned !== undefined) unvouched = undefined
    states.set(event.chain, { lastSeq: event.seq, lastHash: event.hash, lastId: event.id, ...(unvouched ? { unvouched } : {}) })
    if (!options.count || options.count(event)) checked++
  }

  for (const [chain, byChain] of anchors) {
    if (!options.requireAllChains && !ownChains.has(chain) && !states.has(chain)) continue
    if (options.finished && !options.finished(chain)) continue
    const highest = Math.max(...byChain.keys())
    const reached = states.get(chain)?.lastSeq ?? options.startOf?.(chain)?.seq ?? 0
    if (highest > reached) {
      return bad(`${chain}#${reached + 1}`, `chain ${chain} ends at #${reached} but a signed checkpoint shows it reached #${highest}: events were cut off its end`)
    }
  }
  for (const [chain, state] of states) {
    if (state.unvouched) {
      return bad(state.unvouched.id, `no signed checkpoint pins any event of chain ${chain} from #${state.unvouched.seq} on, and the range starts mid-chain: nothing vouches for these events (add the checkpoints made after them, before the range's end)`)
    }
  }
  return { ok: true, checked, chains: states.size, checkpoints: checkpoints.length }
}

export interface AuditLogContents {
  events: () => AsyncGenerator<AuditEvent>
  checkpoints: CheckpointInput[]
  /** what the file holds, line by line */
  lines: { total: number, events: number, checkpoints: number, otherRecords: number, unreadable: number }
}

/** marks what the reader yields for a line that is none of the gateway's forms */
const UNREADABLE = Symbol('unreadable')

type Line =
  | { kind: 'event', event: AuditEvent }
  | { kind: 'checkpoint', checkpoint: CheckpointInput }
  | { kind: 'other' }
  | { kind: 'unreadable', why: string }

/**
 * Reads the trail in every form the gateway writes it (docs/audit-format.md): the audit log
 * (pino JSON lines: `{"audit": event}`, `{"checkpoint": {…}}`, other log records skipped), the
 * API export (one bare event a line) and the command-line export (the API export followed by
 * `{"checkpoint": {…}}` lines). A line of no known shape is not skipped: it fails verification.
 * Checkpoints are collected first (they are few); events are streamed on a second pass, so
 * memory stays flat.
 */
export async function readAuditLog (path: string): Promise<AuditLogContents> {
  const checkpoints: CheckpointInput[] = []
  const counts = { total: 0, events: 0, checkpoints: 0, otherRecords: 0, unreadable: 0 }
  for await (const line of lines(path)) {
    counts.total++
    if (line.kind === 'event') counts.events++
    else if (line.kind === 'other') counts.otherRecords++
    else if (line.kind === 'unreadable') counts.unreadable++
    else {
      counts.checkpoints++
      checkpoints.push(line.checkpoint)
    }
  }
  return {
    checkpoints,
    lines: counts,
    events: async function * () {
      for await (const line of lines(path)) {
        if (line.kind === 'event') yield line.event
        else if (line.kind === 'unreadable') yield { id: `line ${line.n}`, [UNREADABLE]: line.why } as unknown as AuditEvent
      }
    }
  }
}

/**
 * Verifies a file offline: {@link readAuditLog}, then {@link verifyAuditTrail}. A file in which
 * no event could be read is a failure that says why, never an "ok" about nothing.
 */
export async function verifyAuditFile (
  path: string,
  keys: JWTVerifyGetKey,
  options: Parameters<typeof verifyAuditTrail>[3] & { checkpoints?: CheckpointInput[] } = {}
): Promise<VerifyResult> {
  const { checkpoints: extra = [], ...verifyOptions } = options
  const contents = await readAuditLog(path)
  const checkpoints = [...contents.checkpoints, ...extra]
  const { lines: l } = contents
  if (l.events === 0 && l.unreadable === 0) {
    const held = l.total === 0
      ? 'it is empty'
      : `its ${l.total} line(s) hold ${l.checkpoints} checkpoint(s) and ${l.otherRecords} other log record(s)`
    return { ok: false, checked: 0, chains: 0, checkpoints: checkpoints.length, reason: `nothing to verify: the file holds no audit event (${held}); expected an audit log (AUDIT_LOG_FILE) or an export (GET /v1/audit/export, reuse-gateway audit export)` }
  }
  return await verifyAuditTrail(contents.events(), checkpoints, keys, verifyOptions)
}

/**
 * Checkpoints kept apart from the file being verified: the body of `GET /v1/audit/checkpoints`
 * (`{"checkpoints": [{time, jws, chains}]}`), or compact JWS, one a line.
 */
export function parseCheckpoints (text: string, source: string): CheckpointInput[] {
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    let body: { checkpoints?: unknown }
    try {
      body = JSON.parse(trimmed) as { checkpoints?: unknown }
    } catch {
      throw new StatedError(`${source} is neither JSON from GET /v1/audit/checkpoints nor compact JWS`)
    }
    if (!Array.isArray(body.checkpoints) || !body.checkpoints.every((c) => typeof (c as CheckpointInput)?.jws === 'string')) {
      throw new StatedError(`${source} has no "checkpoints" list of {time, jws} as GET /v1/audit/checkpoints answers`)
    }
    return (body.checkpoints as CheckpointInput[]).map((c) => ({ jws: c.jws, ...(typeof c.time === 'string' ? { time: c.time } : {}) }))
  }
  const jws = trimmed.split(/\s+/).filter((part) => part !== '')
  if (jws.length === 0 || !jws.every((part) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(part))) {
    throw new StatedError(`${source} is neither JSON from GET /v1/audit/checkpoints nor compact JWS`)
  }
  return jws.map((part) => ({ jws: part }))
}

function classify (text: string): Line {
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch {
    return { kind: 'unreadable', why: 'the line is not JSON: altered or cut' }
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return { kind: 'unreadable', why: 'the line is not a JSON object' }
  const r = record as Record<string, unknown>
  // the log's envelopes first: a pino record with an `audit` or a `checkpoint` member
  if ('audit' in r) {
    return typeof r.audit === 'object' && r.audit !== null ? { kind: 'event', event: r.audit as AuditEvent } : { kind: 'unreadable', why: 'its `audit` member is not an event' }
  }
  if ('checkpoint' in r) {
    const checkpoint = r.checkpoint as Partial<CheckpointInput> | null
    if (typeof checkpoint?.jws !== 'string') return { kind: 'unreadable', why: 'its `checkpoint` member has no JWS' }
    // only the log's own records say which process wrote them; an export's checkpoints may come from any
    const inLog = typeof r.level === 'number' && typeof r.msg === 'string'
    return { kind: 'checkpoint', checkpoint: { jws: checkpoint.jws, ...(typeof checkpoint.time === 'string' ? { time: checkpoint.time } : {}), ...(inLog ? { inLog } : {}) } }
  }
  // another record of the log (which may name a chain, as the error about a store that lost events does)
  if (typeof r.level === 'number' && typeof r.msg === 'string') return { kind: 'other' }
  // an export line: the event itself
  if ('hash' in r || 'prevHash' in r || 'chain' in r || 'seq' in r) return { kind: 'event', event: r as unknown as AuditEvent }
  return { kind: 'unreadable', why: 'the line is neither an audit event, a checkpoint nor a log record' }
}

async function * lines (path: string): AsyncGenerator<Line & { n: number }> {
  const reader = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })
  let n = 0
  for await (const line of reader) {
    n++
    if (line.trim() === '') continue
    yield { ...classify(line), n }
  }
}
