import autocannon from 'autocannon'
import { bodyOptions } from './bodies.js'

/**
 * The load generator, in a process of its own (pinned to another CPU than the server where
 * taskset exists). Reads its plan as JSON from argv, prints its figures as JSON.
 * With `bodiesFile`, each request takes the next line of that file as its body (tokens need a
 * fresh client assertion each). With `rate`, the requests of all connections together are paced
 * at that many a second (an open load: latency is then the server's, not the queue's).
 */
interface Plan { url: string, method: 'GET' | 'POST', headers: Record<string, string>, body?: string, bodiesFile?: string, seconds: number, connections: number, rate?: number }
const plan = JSON.parse(process.argv[2] as string) as Plan
const result = await autocannon({
  url: plan.url,
  method: plan.method,
  headers: plan.headers,
  duration: plan.seconds,
  connections: plan.connections,
  ...(plan.rate ? { overallRate: plan.rate } : {}),
  ...bodyOptions(plan.method, plan.body, plan.bodiesFile)
})
process.stdout.write(JSON.stringify({
  requestsPerSecond: result.requests.average,
  requests: result.requests.total,
  p50: result.latency.p50,
  p99: result.latency.p99,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx
}) + '\n')
