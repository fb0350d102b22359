import type { AuditIndex, StoredAuditEvent } from './store.js'

/** The index names an event belongs to: all events, its actor, its subject, each document. */
export function auditIndexNames (event: StoredAuditEvent): string[] {
  const names = ['all']
  if (event.actor) names.push(`agency:${event.actor}`)
  if (event.subject) names.push(`subject:${event.subject}`)
  for (const document of event.documents ?? []) names.push(`document:${document.id}`)
  return [...new Set(names)]
}

export function auditIndexName (index: AuditIndex): string {
  return index.kind === 'all' ? 'all' : `${index.kind}:${index.value}`
}
