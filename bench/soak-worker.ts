import autocannon from 'autocannon'
import { bodyOptions } from './bodies.js'

/**
 * One stretch of the soak's mixed load: several request streams at once, each at a fixed rate,
 * from one process (pinned to the load CPU where taskset exists). Reads the streams as JSON from
 * argv, prints per stream the counts by status class as JSON.
 */
export interface SoakStream {
  name: string
  url: string
  method: 'GET' | 'POST'
  headers: Record<string, string>
  /** one body for every request, or a file whose lines are taken in turn */
  body?: string
  bodiesFile?: string
  /** requests per second over all of the stream's connections */
  rate: number
  connections: number
}

export interface SoakStreamFigures { name: string, requests: number, s2xx: number, s4xx: number, s5xx: number, errors: number, p99: number }

const { streams, seconds } = JSON.parse(process.argv[2] as string) as { streams: SoakStream[], seconds: number }

async function run (stream: SoakStream): Promise<SoakStreamFigures> {
  const result = await autocannon({
    url: stream.url,
    method: stream.method,
    headers: stream.headers,
    duration: seconds,
    connections: stream.connections,
    overallRate: stream.rate,
    ...bodyOptions(stream.method, stream.body, stream.bodiesFile)
  })
  return {
    name: stream.name,
    requests: result.requests.total,
    s2xx: result['2xx'],
    s4xx: result['4xx'],
    s5xx: result['5xx'],
    errors: result.errors + result.timeouts,
    p99: result.latency.p99
  }
}

process.stdout.write(JSON.stringify(await Promise.all(streams.map(run))) + '\n')
