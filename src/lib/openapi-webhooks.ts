/**
 * The `webhooks` section of the published contract: what the outbox (services/outbox.ts) POSTs
 * to the portal and to agencies. The bodies' schemas are schemas/webhook-*.json.
 */

interface HeaderParameter { name: string, in: 'header', required: boolean, description: string, schema: Record<string, unknown> }

const header = (name: string, description: string, schema: Record<string, unknown>, required = true): HeaderParameter =>
  ({ name, in: 'header', required, description, schema })

export const WEBHOOK_PARAMETERS = {
  ReuseSignature: header('Reuse-Signature', 'A JWS by the gateway over the body bytes with the payload detached (RFC 7515 Appendix F): `<protected header>..<signature>`, header `typ: reuse-webhook+jws` and the signing key\'s `kid`. To verify, put the base64url (no padding) of the body bytes exactly as received between the two dots and check the compact JWS with /.well-known/jwks.json (e.g. jose\'s `compactVerify`).', { type: 'string', pattern: '^[A-Za-z0-9_-]+\\.\\.[A-Za-z0-9_-]+$' }),
  ReuseEventId: header('Reuse-Event-Id', 'the body\'s `id`: the same across retries and replays', { type: 'string' }),
  ReuseEventCursor: header('Reuse-Event-Cursor', 'the body\'s `cursor`', { type: 'integer', minimum: 1 }),
  ReuseDeliveryAttempt: header('Reuse-Delivery-Attempt', '1 for the first attempt, then 2, 3… up to OUTBOX_MAX_ATTEMPTS (a replay counts on)', { type: 'integer', minimum: 1 }),
  Traceparent: header('traceparent', 'With tracing on (OpenTelemetry, docs/tracing.md): the W3C Trace Context of this delivery, in the trace of the request that made the change, for a receiver that traces to continue', { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' }, false)
}

const parameters = Object.keys(WEBHOOK_PARAMETERS).map((name) => ({ $ref: `#/components/parameters/${name}` }))

const responses = {
  '2XX': { description: 'Acknowledged: the delivery is settled (its body is not read)' },
  '4XX': { description: 'Not acknowledged: retried with exponential back-off and jitter, then dead-lettered after OUTBOX_MAX_ATTEMPTS (as is any other answer that is not 2xx, a timeout after WEBHOOK_TIMEOUT_MS, or a refused connection)' },
  '5XX': { description: 'Not acknowledged: retried, as a 4XX is' }
}

const delivery = (operationId: string, summary: string, description: string, schema: string): Record<string, unknown> => ({
  post: {
    operationId,
    summary,
    description: `${description} Delivered at least once, one at a time and in order per receiver and document; every attempt is audited (webhook.delivered, webhook.failed, webhook.dead). GET /v1/webhooks/deliveries shows them, POST /v1/webhooks/replay sends them again from a cursor.`,
    tags: ['webhooks'],
    // the receiver authenticates the gateway by Reuse-Signature, not by a token
    security: [],
    parameters,
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } },
    responses
  }
})

export const WEBHOOKS = {
  documentAnnouncement: delivery(
    'receiveDocumentAnnouncement',
    'To the national portal: a result was indexed, amended, revoked or expired',
    'POSTed to PORTAL_WEBHOOK_URL for every change to an indexed result, with its subject, so that the portal keeps the citizen\'s view current.',
    'WebhookAnnouncement'
  ),
  reuseNotice: delivery(
    'receiveReuseNotice',
    'To an agency that reused a result: it was amended or revoked',
    'POSTed to the `webhookUrl` of each agency that received an affected version, naming the dossiers it used it for, so that it can re-examine them.',
    'WebhookNotice'
  )
}
