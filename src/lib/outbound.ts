import { lookup as dnsLookup } from 'node:dns'
import type { LookupAddress, LookupAllOptions, LookupOptions } from 'node:dns'
import { request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP } from 'node:net'
import { Readable } from 'node:stream'

/**
 * Where the gateway may send requests of its own: agencies' `jwksUri` and webhook URLs, and the
 * portal's webhook. An agency administrator types those URLs, so without a check the gateway
 * would fetch whatever they point at: its own Redis, the cloud metadata service, an intranet.
 *
 * The rules, checked when a URL is registered and again on every connection (a name may
 * resolve elsewhere by then — DNS rebinding — so the address actually connected to is the one
 * checked):
 * - https only, unless http is allowed (outside production by default);
 * - no credentials in the URL;
 * - when an allow-list is configured, the host must be on it: a name (`jwks.example.gov.vn`), a
 *   suffix pattern (`*.gov.vn`, any name below it), or an address or CIDR block;
 * - a name must not resolve to a loopback, private, link-local (169.254.169.254, the metadata
 *   service), shared, multicast or reserved address unless an address or CIDR entry of the list
 *   covers it: listing a name never lets it point inside; an IPv6 address that carries an IPv4
 *   one is judged as that IPv4 address, and IPv6 outside global unicast is never called;
 * - redirects are not followed.
 */
export interface OutboundPolicy {
  /** names and suffix patterns (lower case, `*.` kept); undefined: any name */
  hosts: string[] | undefined
  /** addresses and CIDR blocks allowed even when special (and the only IP literals allowed when a list is set) */
  addresses: BlockList
  /** whether any address or CIDR entry exists (an empty BlockList cannot tell) */
  hasAddresses: boolean
  allowHttp: boolean
  /** where names are resolved: the system's resolver (a test gives its own) */
  resolve: Resolve
}

/** dns.lookup with `all: true` */
export type Resolve = (hostname: string, options: LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void

export interface OutboundSettings {
  /** OUTBOUND_ALLOWED_HOSTS, split; undefined when not set */
  allowedHosts: string[] | undefined
  allowHttp: boolean
  /** loopback is allowed when no list is set (development and test) */
  defaultLoopback: boolean
}

/** A refused outbound URL; `code` is stable, `message` says why without echoing resolved addresses. */
export class OutboundRefusedError extends Error {
  readonly code = 'outbound_refused'
  constructor (message: string) {
    super(message)
    this.name = 'OutboundRefusedError'
  }
}

/** IPv4 addresses that are never the public Internet (IANA IPv4 special-purpose registry). */
const SPECIAL_V4 = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24], ['192.52.193.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['192.175.48.0', 24], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) SPECIAL_V4.addSubnet(net, prefix, 'ipv4')

/**
 * IPv6: only global unicast (2000::/3) is the public Internet; everything outside it is
 * loopback, unspecified, IPv4-compatible (::a.b.c.d), link- or site-local, unique local,
 * multicast, discard or reserved. Inside it, the special-purpose blocks: IETF protocol
 * assignments (Teredo among them), documentation, and 6to4, which carries any IPv4 address.
 */
const GLOBAL_UNICAST_V6 = new BlockList()
GLOBAL_UNICAST_V6.addSubnet('2000::', 3, 'ipv6')
const SPECIAL_V6 = new BlockList()
for (const [net, prefix] of [['2001::', 23], ['2001:db8::', 32], ['2002::', 16], ['3fff::', 20]] as const) SPECIAL_V6.addSubnet(net, prefix, 'ipv6')

/** The first six groups of the IPv6 forms whose last 32 bits are an IPv4 address the connection reaches. */
const IPV4_CARRIERS = [
  [0, 0, 0, 0, 0, 0xffff], // IPv4-mapped, ::ffff:a.b.c.d: a dual-stack socket connects to a.b.c.d
  [0, 0, 0, 0, 0xffff, 0], // IPv4-translated, ::ffff:0:a.b.c.d (SIIT)
  [0x64, 0xff9b, 0, 0, 0, 0] // NAT64 well-known prefix, 64:ff9b::a.b.c.d
]

/** The eight 16-bit groups of an IPv6 address (one isIP() accepts), without its zone. */
function ipv6Groups (address: string): number[] {
  let text = address.split('%')[0] as string
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const groups = (part: string): number[] => part === '' ? [] : part.split(':').map((group) => parseInt(group, 16))
  const [head = '', tail] = text.split('::')
  if (tail === undefined) return groups(head)
  const before = groups(head)
  const after = groups(tail)
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after]
}

/** The IPv4 address an IPv6 address carries in one of the forms above, or undefined. */
function carriedIpv4 (address: string): string | undefined {
  const groups = ipv6Groups(address)
  if (!IPV4_CARRIERS.some((prefix) => prefix.every((group, i) => groups[i] === group))) return undefined
  const [high = 0, low = 0] = groups.slice(6)
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
}

/**
 * Whether an address is outside the public Internet. An IPv6 address that carries an IPv4
 * address is judged as that IPv4 address, however it is written (::ffff:7f00:1,
 * ::ffff:0:127.0.0.1, 64:ff9b::a9fe:a9fe); anything else not known to be global is special.
 */
function isSpecial (address: string): boolean {
  const version = isIP(address)
  if (version === 4) return SPECIAL_V4.check(address, 'ipv4')
  if (version !== 6) return true
  const ipv4 = carriedIpv4(address)
  if (ipv4 !== undefined) return SPECIAL_V4.check(ipv4, 'ipv4')
  return !GLOBAL_UNICAST_V6.check(address, 'ipv6') || SPECIAL_V6.check(address, 'ipv6')
}

const HOST_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

const family = (address: string): 'ipv4' | 'ipv6' => isIP(address) === 6 ? 'ipv6' : 'ipv4'

/** One OUTBOUND_ALLOWED_HOSTS entry: what is wrong with it, or undefined when it is fine. */
export function allowEntryProblem (entry: string): string | undefined {
  const [address, prefix, extra] = entry.split('/')
  if (address !== undefined && isIP(address) !== 0) {
    if (extra !== undefined) return `"${entry}" is not an address or CIDR block`
    if (prefix === undefined) return undefined
    const bits = Number(prefix)
    const max = isIP(address) === 6 ? 128 : 32
    return /^[0-9]{1,3}$/.test(prefix) && bits <= max ? undefined : `"${entry}" has a prefix length outside 0-${max}`
  }
  return HOST_NAME.test(entry.toLowerCase()) ? undefined : `"${entry}" is not a host name, *.suffix pattern, address or CIDR block`
}

export function outboundPolicy (settings: OutboundSettings, resolve: Resolve = dnsLookup): OutboundPolicy {
  const addresses = new BlockList()
  let hasAddresses = false
  let hosts: string[] | undefined
  if (settings.allowedHosts === undefined) {
    if (settings.defaultLoopback) {
      addresses.addSubnet('127.0.0.0', 8, 'ipv4')
      addresses.addAddress('::1', 'ipv6')
      hasAddresses = true
    }
  } else {
    hosts = []
    for (const entry of settings.allowedHosts) {
      const [address, prefix] = entry.split('/')
      if (address !== undefined && isIP(address) !== 0) {
        if (prefix === undefined) addresses.addAddress(address, family(address))
        else addresses.addSubnet(address, Number(prefix), family(address))
        hasAddresses = true
      } else {
        hosts.push(entry.toLowerCase())
      }
    }
  }
  return { hosts, addresses, hasAddresses, allowHttp: settings.allowHttp, resolve }
}

/** Is this (resolved or literal) address one the gateway may connect to? */
function addressAllowed (policy: OutboundPolicy, address: string): boolean {
  const type = family(address)
  if (policy.hasAddresses && policy.addresses.check(address, type)) return true
  return !isSpecial(address)
}

function hostListed (policy: OutboundPolicy, host: string): boolean {
  if (policy.hosts === undefined) return true
  return policy.hosts.some((pattern) => pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern)
}

/** `[::1]` → `::1`, `example.org.` → `example.org` */
function bareHost (url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase()
}

/**
 * The checks that need no DNS: scheme, credentials, the allow-list, an IP literal's address.
 * Returns the parsed URL; throws OutboundRefusedError.
 */
export function checkOutboundUrl (policy: OutboundPolicy, value: string | URL): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new OutboundRefusedError('is not a URL')
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new OutboundRefusedError(policy.allowHttp ? 'must be an http or https URL' : 'must be an https URL')
  }
  if (url.username !== '' || url.password !== '') throw new OutboundRefusedError('must not carry credentials')
  const host = bareHost(url)
  if (isIP(host) !== 0) {
    const listed = policy.hosts === undefined || (policy.hasAddresses && policy.addresses.check(host, family(host)))
    if (!listed || !addressAllowed(policy, host)) throw new OutboundRefusedError(`points at an address the gateway does not call (${host}); see OUTBOUND_ALLOWED_HOSTS`)
    return url
  }
  if (!hostListed(policy, host)) throw new OutboundRefusedError(`host ${host} is not in OUTBOUND_ALLOWED_HOSTS`)
  return url
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** A dns.lookup for sockets that refuses a name whose addresses are not all allowed. */
function guardedLookup (policy: OutboundPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    policy.resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) { callback(err, []); return }
      const refused = addresses.find((entry) => !addressAllowed(policy, entry.address))
      if (refused !== undefined || addresses.length === 0) {
        const error: NodeJS.ErrnoException = new OutboundRefusedError(`host ${hostname} resolves to an address the gateway does not call; see OUTBOUND_ALLOWED_HOSTS`)
        error.code = 'outbound_refused'
        callback(error, [])
        return
      }
      if (options.all === true) callback(null, addresses)
      else callback(null, (addresses[0] as LookupAddress).address, (addresses[0] as LookupAddress).family)
    })
  }
}

/** Registration-time check: the static rules, then where the name resolves now. */
export async function checkOutboundTarget (policy: OutboundPolicy, value: string): Promise<void> {
  const url = checkOutboundUrl(policy, value)
  const host = bareHost(url)
  if (isIP(host) !== 0) return
  await new Promise<void>((resolve, reject) => {
    guardedLookup(policy)(host, { all: true }, (err) => {
      if (!err) { resolve(); return }
      reject(err instanceof OutboundRefusedError ? err : new OutboundRefusedError(`host ${host} does not resolve`))
    })
  })
}

export interface OutboundRequestInit {
  method?: string
  headers?: Record<string, string> | Headers
  body?: string
  signal?: AbortSignal
  /** a larger response body fails the request (default 1 MiB) */
  maxResponseBytes?: number
}

export type OutboundFetch = (url: string | URL, init?: OutboundRequestInit) => Promise<Response>

/**
 * A fetch that only reaches what the policy allows: the URL is checked, every address the name
 * resolves to is checked at connect time, and redirects are answered as they are (a 3xx), never
 * followed. Failures reject as fetch does (TypeError "fetch failed" with the reason as `cause`,
 * or the signal's reason when aborted), so callers treat it as fetch.
 */
export function outboundFetcher (policy: OutboundPolicy): OutboundFetch {
  const lookup = guardedLookup(policy)
  return async (input, init = {}) => {
    const url = (() => {
      try {
        return checkOutboundUrl(policy, input)
      } catch (err) {
        throw new TypeError('fetch failed', { cause: Object.assign(err as Error, { code: 'outbound_refused' }) })
      }
    })()
    const signal = init.signal
    signal?.throwIfAborted()
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((value, name) => { headers[name] = value })
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body))
    const maxBytes = init.maxResponseBytes ?? 1024 * 1024
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    return await new Promise<Response>((resolve, reject) => {
      const request = send(url, { method: init.method ?? 'GET', headers, lookup, ...(signal ? { signal } : {}) }, (response: IncomingMessage) => {
        const status = response.statusCode ?? 502
        const responseHeaders = new Headers()
        for (let i = 0; i < response.rawHeaders.length; i += 2) responseHeaders.append(response.rawHeaders[i] as string, response.rawHeaders[i + 1] as string)
        let seen = 0
        response.on('data', (chunk: Buffer) => {
          seen += chunk.length
          if (seen > maxBytes) response.destroy(new TypeError(`response body over ${maxBytes} bytes`))
        })
        const empty = status === 204 || status === 304 || (status >= 100 && status < 200) || (init.method ?? 'GET') === 'HEAD'
        resolve(new Response(empty ? null : Readable.toWeb(response) as ReadableStream, { status, headers: responseHeaders }))
      })
      request.on('error', (err) => {
        if (signal?.aborted) reject(signal.reason)
        else reject(new TypeError('fetch failed', { cause: err }))
      })
      request.end(init.body)
    })
  }
}
