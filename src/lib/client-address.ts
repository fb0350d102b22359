import { createHmac } from 'node:crypto'
import { normalizeIP } from '@fastify/rate-limit'

/**
 * The network a client address counts for: an IPv4 address itself, an IPv6 address's /64 (one
 * host is commonly given a whole /64, so counting single IPv6 addresses would let it start a
 * fresh count with each of its 2^64 addresses).
 */
export function clientNetwork (ip: string): string {
  return normalizeIP(ip, 64)
}

/**
 * What counters and in-process tallies are keyed by: the client's network, hashed with the
 * pepper, because an address is personal data for a person's machine and must not sit in clear
 * in a Redis key.
 */
export function clientAddressKey (pepper: string, ip: string): string {
  return createHmac('sha256', pepper).update(`rl\n${clientNetwork(ip)}`).digest('base64url').slice(0, 22)
}
