import Fastify from 'fastify'

/** The baseline: a bare Fastify route answering a constant JSON object, in its own process. */
const app = Fastify({ logger: false })
app.post('/bare', async () => ({ queryId: '01JBASELINE000000000000000', results: [{ documentType: 'giay-khai-sinh', found: true, documents: [] }] }))
const address = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`${address}\n`)
