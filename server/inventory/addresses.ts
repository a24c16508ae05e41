/**
 * Parsing of the identifiers nodes are known by: MAC addresses, IPv4 addresses,
 * xnames and host names. Each parser returns the canonical form or `undefined`;
 * callers decide which error to raise.
 */

const HEX12 = /^[0-9a-f]{12}$/

/**
 * Canonical MAC: lower-case, colon-separated (`ec:e7:a7:05:a1:fc`). Accepts the usual
 * spellings: colons or dashes per octet (one-digit octets allowed, as `ip` prints
 * none but some BMCs do), Cisco dotted (`ece7.a705.a1fc`) and bare hex.
 */
export function parseMac (input: string): string | undefined {
  const s = input.trim().toLowerCase()
  let hex: string
  if (/^[0-9a-f]{1,2}([:-][0-9a-f]{1,2}){5}$/.test(s)) {
    const sep = s.includes(':') ? ':' : '-'
    if (s.includes(':') && s.includes('-')) return undefined
    hex = s.split(sep).map((o) => o.padStart(2, '0')).join('')
  } else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) {
    hex = s.replaceAll('.', '')
  } else {
    hex = s
  }
  if (!HEX12.test(hex)) return undefined
  return hex.match(/../g)!.join(':')
}

export function macToBytes (mac: string): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex')
}

/** Canonical dotted-quad IPv4 (no leading zeros, which some tools read as octal). */
export function parseIPv4 (input: string): string | undefined {
  const s = input.trim()
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s)
  if (m === null) return undefined
  const octets = m.slice(1).map((o) => (o.length > 1 && o.startsWith('0') ? NaN : Number(o)))
  if (octets.some((o) => !(o >= 0 && o <= 255))) return undefined
  return octets.join('.')
}

export function ipv4ToInt (ip: string): number {
  return ip.split('.').reduce((acc, o) => (acc * 256) + Number(o), 0)
}

export function intToIPv4 (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

export interface Cidr { readonly network: string; readonly prefix: number; readonly first: number; readonly last: number }

/** `172.16.0.0/24` → network bounds. The address must be the network address. */
export function parseCidr (input: string): Cidr | undefined {
  const [addr, len, extra] = input.trim().split('/')
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) return undefined
  const ip = parseIPv4(addr)
  const prefix = Number(len)
  if (ip === undefined || prefix > 32) return undefined
  const size = 2 ** (32 - prefix)
  const first = ipv4ToInt(ip)
  if (first % size !== 0) return undefined
  return { network: ip, prefix, first, last: first + size - 1 }
}

export function cidrContains (c: Cidr, ip: string): boolean {
  const n = ipv4ToInt(ip)
  return n >= c.first && n <= c.last
}

/**
 * HPE/Cray component names (xnames) for cabinets down to nodes:
 * `x<cabinet>[c<chassis>[s<slot>[b<bmc>[n<node>]]]]`, e.g. `x1000c1s7b0n0`.
 */
const XNAME = /^x\d{1,4}(c\d{1,2}(s\d{1,3}(b\d{1,2}(n\d{1,2})?)?)?)?$/

export function parseXname (input: string): string | undefined {
  const s = input.trim().toLowerCase()
  return XNAME.test(s) ? s : undefined
}

/** Node and group names: one DNS label (RFC 1123 §2.1), lower-cased. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

export function parseName (input: string): string | undefined {
  const s = input.trim().toLowerCase()
  return LABEL.test(s) ? s : undefined
}
