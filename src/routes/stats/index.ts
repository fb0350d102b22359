import type { FastifyInstance } from 'fastify'
import { problemResponses, requires } from '../../lib/openapi.js'
import { callOf } from '../../plugins/audit.js'
import { DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, STATS_GROUPINGS, STATS_INTERVALS } from '../../services/stats.js'
import type { StatsGrouping, StatsInterval } from '../../services/stats.js'

/** Reuse statistics for auditors: the figures a province reports on. */
const day = { type: 'string', format: 'date', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', title: 'a date as YYYY-MM-DD', examples: ['2023-04-15'] }

export default async function statsRoutes (app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: { from?: string, to?: string, groupBy: StatsGrouping, interval?: StatsInterval } }>('/v1/stats/reuse', {
    schema: {
      operationId: 'getReuseStats',
      tags: ['stats'],
      summary: 'Reuse statistics: queries, results found, refusals, downloads and the reuse rate',
      description: [
        `Over the Vietnam calendar days \`from\` to \`to\`, both inclusive (default: the last ${DEFAULT_RANGE_DAYS} days up to today; at most ${MAX_RANGE_DAYS} days), in total and per procedure code, requesting agency or document type.`,
        'The reuse rate is found / queries: the share of answered reuse queries that found a valid result, the figure a province reports on.',
        'With `interval` (`day` or `month`), `series` gives the same figures for each Vietnam calendar day or calendar month of the period, in order (a month cut by the period counts its days inside it only).',
        'Counted as queries, refusals and downloads happen, with codes only: no personal data.'
      ].join(' '),
      security: requires('audit:read'),
      querystring: {
        type: 'object',
        properties: {
          from: { ...day, description: 'first day (YYYY-MM-DD), inclusive' },
          to: { ...day, description: 'last day (YYYY-MM-DD), inclusive' },
          groupBy: { type: 'string', enum: [...STATS_GROUPINGS], default: 'procedure' },
          interval: { type: 'string', enum: [...STATS_INTERVALS], description: 'also answer a series: the figures of each day or month' }
        },
        additionalProperties: false
      },
      response: { 200: { $ref: 'ReuseStats#' }, ...problemResponses(400, 401, 403, 503) }
    }
  }, async (request) => await app.reuseStats.reportFor(callOf(request), request.query))
}
