import { connect } from 'node:net'

export interface RawAnswer {
  raw: string
  status: number
  /** header names in lower case */
  headers: Record<string, string>
  body: string
}

/**
 * Sends `request` as it is on a fresh connection to 127.0.0.1:`port` and reads one answer, for
 * what `inject` cannot show (Node's HTTP parser limits, answers written on the socket itself).
 * Bounded: no answer within 10 s rejects.
 */
export async function rawRequest (port: number, request: string): Promise<RawAnswer> {
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let data = ''
    const done = (): void => { clearTimeout(timer); socket.destroy(); resolve(data) }
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no answer within 10 s')) }, 10_000)
    socket.on('data', (chunk) => {
      data += chunk.toString()
      // a kept-alive connection does not end: one whole answer is enough
      const end = data.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1]
      if (end >= 0 && length !== undefined && Buffer.byteLength(data.slice(end + 4)) >= Number(length)) done()
    })
    socket.on('end', done)
    socket.on('error', (err) => { clearTimeout(timer); reject(err) })
    socket.write(request)
  })
  const end = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
  }
  return { raw, status: Number(statusLine.split(' ')[1]), headers, body: raw.slice(end + 4) }
}
