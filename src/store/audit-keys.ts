import type { AuditIndex, StoredAuditEvent } from './audit.js'

/** An index entry: the index's name and the entry's score (0 in the time indexes, ordered by id). */
export interface AuditIndexEntry {
  name: string
  score: number
}

/**
 * Whether the subject of an event sees it in its access history: a reuse query that released
 * something, at once, or from its hidden-until date (Vietnam) on when an agency was allowed by
 * law to keep it hidden. A hidden one without a readable date is never shown (fail closed).
 * Decided here, once, as the event is appended: the history index then holds nothing the
 * citizen may not see, so its pages and cursors cannot hint at hidden accesses.
 */
export function historyVisibility (event: StoredAuditEvent): 'visible' | { from: string } | undefined {
  if (!event.subject || event.action !== 'reuse.queried' || event.outcome !== 'granted') return undefined
  const detail = (event.detail ?? {}) as Record<string, unknown>
  if (!detail.hidden) return 'visible'
  const until = detail.hiddenUntil
  return typeof until === 'string' && /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(until) ? { from: until } : undefined
}

/** A calendar day as a sortable number (2026-11-01 → 20261101): the score of a hidden access. */
export function dayScore (day: string): number {
  return Number(day.replaceAll('-', ''))
}

/**
 * Where an event is indexed when appended: all events, its actor, its subject, each document;
 * and, for its subject's access history, either the history itself or, while hidden, the
 * subject's hidden accesses scored by the day they become visible (moved to the history from
 * that day on: AuditStore.revealAuditHistory).
 */
export function auditIndexEntries (event: StoredAuditEvent): AuditIndexEntry[] {
  const names = ['all']
  if (event.actor) names.push(`agency:${event.actor}`)
  if (event.subject) names.push(`subject:${event.subject}`)
  for (const document of event.documents ?? []) names.push(`document:${document.id}`)
  const entries = [...new Set(names)].map((name) => ({ name, score: 0 }))
  const history = historyVisibility(event)
  if (history === 'visible') entries.push({ name: `history:${event.subject as string}`, score: 0 })
  else if (history) entries.push({ name: hiddenIndexName(event.subject as string), score: dayScore(history.from) })
  return entries
}

/** Every index an event may be in by now (a hidden access moves to the history once revealed): what retention removes it from. */
export function auditIndexNames (event: StoredAuditEvent): string[] {
  const names = auditIndexEntries(event).map((entry) => entry.name)
  if (historyVisibility(event) !== undefined) names.push(`history:${event.subject as string}`)
  return [...new Set(names)]
}

export function auditIndexName (index: AuditIndex): string {
  return index.kind === 'all' ? 'all' : `${index.kind}:${index.value}`
}

/** the subject's accesses still hidden from it */
export function hiddenIndexName (subjectHash: string): string {
  return `hidden:${subjectHash}`
}
