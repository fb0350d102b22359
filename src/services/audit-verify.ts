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

interface ChainState { lastSeq: number, lastHash: string, lastId: string }

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
  } = {}
): Promise<VerifyResult> {
  const anchors = new Map<string, Map<number, string>>()
  const ownChains = new Set<string>()
  for (const [i, checkpoint] of checkpoints.entries()) {
    let chains: Array<{ chain: string, seq: number, hash: string }>
    try {
      const { payload } = await jwtVerify(checkpoint.jws, keys, { typ: CHECKPOINT_TYP, ...(options.issuer ? { issuer: options.issuer } : {}) })
      chains = payload.chains as typeof chains
      if (!Array.isArray(chains)) throw new StatedError('no chains')
      if (checkpoint.inLog === true && typeof payload.writer === 'string') ownChains.add(payload.writer)
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
    if (typeof event?.chain !== 'string' || typeof event.seq !== 'number') return bad(String(event?.id ?? 'unreadable'), 'an event lacks its chain position')
    if (eventHash(event) !== event.hash) return bad(event, `event ${event.chain}#${event.seq} has been altered: its content does not match its hash`)
    const state = states.get(event.chain)
    const chainAnchors = anchors.get(event.chain)
    if (!state) {
      if (event.seq === 1) {
        if (event.prevHash !== GENESIS_HASH) return bad(event, 'the first event of a chain must link to the genesis hash')
      } else if (chainAnchors?.get(event.seq - 1) !== event.prevHash) {
        return bad(event, `events ${event.chain}#1..${event.seq - 1} are missing and no signed checkpoint vouches for where this chain resumes`)
      }
    } else {
      if (event.seq <= state.lastSeq) return bad(event, `event ${event.chain}#${event.seq} is out of order or repeated (after #${state.lastSeq})`)
      if (event.seq > state.lastSeq + 1) return bad(event, `event(s) ${event.chain}#${state.lastSeq + 1}..${event.seq - 1} are missing before this one`)
      if (event.prevHash !== state.lastHash) return bad(event, `event ${event.chain}#${event.seq} does not link to its predecessor (the previous event was altered or replaced)`)
    }
    const pinned = chainAnchors?.get(event.seq)
    if (pinned !== undefined && pinned !== event.hash) return bad(event, `event ${event.chain}#${event.seq} differs from what a signed checkpoint recorded`)
    states.set(event.chain, { lastSeq: event.seq, lastHash: event.hash, lastId: event.id })
    if (!options.count || options.count(event)) checked++
  }

  for (const [chain, byChain] of anchors) {
    if (!options.requireAllChains && !ownChains.has(chain) && !states.has(chain)) continue
    const highest = Math.max(...byChain.keys())
    const reached = states.get(chain)?.lastSeq ?? 0
    if (highest > reached) {
      return bad(`${chain}#${reached + 1}`, `chain ${chain} ends at #${reached} but a signed checkpoint shows it reached #${highest}: events were cut off its end`)
    }
  }
  return { ok: true, checked, chains: states.size, checkpoints: checkpoints.length }
}

export interface AuditLogContents {
  events: () => AsyncGenerator<AuditEvent>
  checkpoints: CheckpointInput[]
}

/**
 * Reads an audit log (pino JSON lines; other lines are ignored). Checkpoints are collected
 * first (they are few); events are streamed on a second pass, so memory stays flat.
 */
export async function readAuditLog (path: string): Promise<AuditLogContents> {
  const checkpoints: CheckpointInput[] = []
  for await (const record of lines(path)) {
    const checkpoint = (record as { checkpoint?: CheckpointInput }).checkpoint
    if (checkpoint && typeof checkpoint.jws === 'string') checkpoints.push({ jws: checkpoint.jws, inLog: true, ...(checkpoint.time ? { time: checkpoint.time } : {}) })
  }
  return {
    checkpoints,
    events: async function * () {
      for await (const record of lines(path)) {
        const event = (record as { audit?: AuditEvent }).audit
        if (event) yield event
      }
    }
  }
}

async function * lines (path: string): AsyncGenerator<unknown> {
  const reader = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })
  let n = 0
  for await (const line of reader) {
    n++
    if (line.trim() === '') continue
    let record: unknown
    try {
      record = JSON.parse(line)
    } catch {
      // an audit line that no longer parses is tampering; anything else is not ours
      if (line.includes('"audit"')) yield { audit: { id: `line ${n}`, chain: undefined } }
      continue
    }
    yield record
  }
}
