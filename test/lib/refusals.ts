/**
 * How many refusals a list of `access.refused` or `token.refused` events puts on record: a
 * summary counts its interval's refusals, its first (recorded on its own, `firstEvent`) included.
 */
export function refusalsOnRecord (events: Array<{ id: string, detail?: Record<string, unknown> }>): number {
  const summaries = events.filter((e) => e.detail?.count !== undefined)
  const summarized = new Set(summaries.map((e) => e.detail?.firstEvent))
  const alone = events.filter((e) => e.detail?.count === undefined && !summarized.has(e.id))
  return alone.length + summaries.reduce((sum, e) => sum + Number(e.detail?.count), 0)
}
