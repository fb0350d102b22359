import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedDelivery {
  headers: IncomingHttpHeaders
  raw: string
  body: Record<string, unknown> & { id: string, type: string, cursor: number }
  at: number
}

/**
 * A webhook receiver on loopback, as an agency or the portal would run one. `behaviour` decides
 * each answer: a status code, 'hang' (never answers), or a delay before a 204. It can go down
 * (connections refused) and come back on the same port.
 */
export interface WebhookReceiver {
  url: string
  /** every request that reached it, acknowledged or not */
  received: ReceivedDelivery[]
  /** the requests it answered with a 2xx */
  acknowledged(): ReceivedDelivery[]
  behaviour: (delivery: ReceivedDelivery) => number | 'hang' | { delayMs: number }
  down(): Promise<void>
  up(): Promise<void>
  close(): Promise<void>
  /** resolves once `predicate` holds on what was acknowledged, or rejects after `ms` */
  until(predicate: (acknowledged: ReceivedDelivery[]) => boolean, ms?: number): Promise<ReceivedDelivery[]>
}

export async function startReceiver (): Promise<WebhookReceiver> {
  const acknowledged = new Set<ReceivedDelivery>()
  const hanging = new Set<ServerResponse>()
  let server: Server
  let port = 0
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    acknowledged: () => receiver.received.filter((d) => acknowledged.has(d)),
    behaviour: () => 204,
    async down () {
      for (const res of hanging) res.destroy()
      hanging.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
    async up () { await listen() },
    async close () { await receiver.down().catch(() => {}) },
    async until (predicate, ms = 20_000) {
      const deadline = Date.now() + ms
      while (!predicate(receiver.acknowledged())) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met within ${ms} ms; acknowledged ${receiver.acknowledged().map((d) => d.body.id).join(', ')}`)
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      return receiver.acknowledged()
    }
  }
  const listen = async (): Promise<void> => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        const delivery: ReceivedDelivery = { headers: req.headers, raw, body: JSON.parse(raw), at: Date.now() }
        receiver.received.push(delivery)
        const answer = receiver.behaviour(delivery)
        if (answer === 'hang') { hanging.add(res); return }
        const send = (status: number): void => {
          if (status >= 200 && status < 300) acknowledged.add(delivery)
          res.writeHead(status).end()
        }
        if (typeof answer === 'number') send(answer)
        else setTimeout(() => send(204), answer.delayMs)
      })
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()))
    port = (server.address() as AddressInfo).port
    receiver.url = `http://127.0.0.1:${port}/hook`
  }
  await listen()
  return receiver
}
