/**
 * Router Solicitation and Router Advertisement messages (RFC 4861 §4.1, §4.2) and
 * the Neighbor Discovery options netboot reads or writes (§4.6.1 source link-layer
 * address, §4.6.2 prefix information, §4.6.4 MTU). Pure: bytes in, values out.
 *
 * The bytes are the ICMPv6 message as a raw ICMPv6 socket carries it (no IPv6
 * header). The checksum is the kernel's business on such sockets (RFC 3542 §3.1):
 * the encoder leaves it zero and the decoder does not check it.
 *
 * The decoder never throws and never trusts a length: every option length is
 * checked against what is left, at most MAX_OPTIONS options are read, and a
 * problem is returned as a typed error naming the offset.
 */

export const ICMP6_ROUTER_SOLICITATION = 133
export const ICMP6_ROUTER_ADVERTISEMENT = 134

export const OPT_SOURCE_LL = 1
export const OPT_PREFIX_INFO = 3
export const OPT_MTU = 5

/** More options than any sane ND message carries (an MTU-sized packet holds at most 181). */
export const MAX_OPTIONS = 64
/** RFC 4861 §6.1: larger than any link MTU we serve; longer input is refused unread. */
export const MAX_MESSAGE = 1500

export interface NdOption { readonly type: number; readonly data: Uint8Array }

export interface PrefixInfo {
  /** e.g. fd00:96::, with `length` bits significant. */
  readonly prefix: string
  readonly length: number
  readonly onLink: boolean
  readonly autonomous: boolean
  readonly validLifetime: number
  readonly preferredLifetime: number
}

export interface RouterSolicitation {
  readonly type: 'rs'
  /** Source link-layer address option (aa:bb:…), if present. */
  readonly sourceLinkLayer?: string
  readonly options: readonly NdOption[]
}

export interface RouterAdvertisement {
  readonly type: 'ra'
  /** 0 = unspecified (§4.2 Cur Hop Limit). */
  readonly curHopLimit: number
  /** M: addresses from DHCPv6. */
  readonly managed: boolean
  /** O: other configuration from DHCPv6. */
  readonly other: boolean
  /** Seconds; 0 = not a default router (§4.2, §6.3.4). */
  readonly routerLifetime: number
  readonly reachableTime: number
  readonly retransTimer: number
  readonly sourceLinkLayer?: string
  readonly mtu?: number
  readonly prefixes: readonly PrefixInfo[]
  readonly options: readonly NdOption[]
}

export type NdMessage = RouterSolicitation | RouterAdvertisement

export type DecodeError =
  | { readonly code: 'TOO_SHORT'; readonly detail: string }
  | { readonly code: 'TOO_LONG'; readonly detail: string }
  | { readonly code: 'NOT_RS_OR_RA'; readonly detail: string }
  | { readonly code: 'BAD_CODE'; readonly detail: string }
  | { readonly code: 'BAD_OPTION'; readonly detail: string }

export type DecodeResult = { readonly ok: true; readonly message: NdMessage } | { readonly ok: false; readonly error: DecodeError }

const fail = (code: DecodeError['code'], detail: string): DecodeResult => ({ ok: false, error: { code, detail } as DecodeError })

/** Fixed part before the options: RS 8 bytes (§4.1), RA 16 bytes (§4.2). */
const HEADER = { [ICMP6_ROUTER_SOLICITATION]: 8, [ICMP6_ROUTER_ADVERTISEMENT]: 16 } as const

function macText (b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':')
}

/** Text form of 16 bytes, RFC 5952 (lower case, longest zero run of ≥2 groups compressed). */
export function ipv6Text (b: Uint8Array): string {
  const g: number[] = []
  for (let i = 0; i < 16; i += 2) g.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0))
  let bestAt = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { bestAt = i; bestLen = j - i }
    i = j
  }
  const hex = g.map((x) => x.toString(16))
  if (bestAt < 0) return hex.join(':')
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`
}

/** Parses an IPv6 address in text form (no zone, no embedded IPv4); undefined when malformed. */
export function parseIpv6 (s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 39 || !/^[0-9a-fA-F:]+$/.test(s)) return undefined
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const part = (x: string): number[] | undefined => {
    if (x === '') return []
    const out: number[] = []
    for (const h of x.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) return undefined
      out.push(parseInt(h, 16))
    }
    return out
  }
  const head = part(halves[0]!)
  const tail = halves.length === 2 ? part(halves[1]!) : []
  if (head === undefined || tail === undefined) return undefined
  const groups = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head
  if (groups.length !== 8 || (halves.length === 2 && head.length + tail.length > 7)) return undefined
  const b = new Uint8Array(16)
  groups.forEach((x, i) => { b[2 * i] = x >> 8; b[2 * i + 1] = x & 0xff })
  return b
}

/** Decodes an RS or an RA (RFC 4861 §4.1/§4.2) with its options (§4.6). */
export function decodeNd (buf: Uint8Array): DecodeResult {
  if (buf.length < 4) return fail('TOO_SHORT', `${buf.length} bytes, an ICMPv6 header is 4`)
  if (buf.length > MAX_MESSAGE) return fail('TOO_LONG', `${buf.length} bytes, at most ${MAX_MESSAGE} accepted`)
  const type = buf[0]!
  if (type !== ICMP6_ROUTER_SOLICITATION && type !== ICMP6_ROUTER_ADVERTISEMENT) return fail('NOT_RS_OR_RA', `ICMPv6 type ${type}`)
  // §6.1.1/§6.1.2: ICMP Code is 0.
  if (buf[1] !== 0) return fail('BAD_CODE', `ICMP code ${buf[1]!}, must be 0`)
  const header = HEADER[type]
  if (buf.length < header) return fail('TOO_SHORT', `${buf.length} bytes, a ${type === ICMP6_ROUTER_SOLICITATION ? 'router solicitation' : 'router advertisement'} is at least ${header}`)

  const options: NdOption[] = []
  let off = header
  while (off < buf.length) {
    if (options.length >= MAX_OPTIONS) return fail('BAD_OPTION', `more than ${MAX_OPTIONS} options`)
    if (buf.length - off < 2) return fail('BAD_OPTION', `option at offset ${off}: truncated header`)
    const optType = buf[off]!
    const len8 = buf[off + 1]!
    // §4.6: "The value 0 is invalid. Nodes MUST silently discard an ND packet that contains an option with length zero."
    if (len8 === 0) return fail('BAD_OPTION', `option ${optType} at offset ${off}: length 0`)
    const len = len8 * 8
    if (off + len > buf.length) return fail('BAD_OPTION', `option ${optType} at offset ${off}: ${len} bytes, ${buf.length - off} left`)
    options.push({ type: optType, data: buf.subarray(off + 2, off + len) })
    off += len
  }

  const sll = options.find((o) => o.type === OPT_SOURCE_LL)
  // Ethernet: 6 address bytes in an 8-byte option (RFC 2464 §6); other links pad differently, keep the bytes.
  const sourceLinkLayer = sll === undefined ? undefined : macText(sll.data.length === 6 ? sll.data : sll.data.subarray(0, 6))

  if (type === ICMP6_ROUTER_SOLICITATION) {
    return { ok: true, message: { type: 'rs', ...(sourceLinkLayer !== undefined ? { sourceLinkLayer } : {}), options } }
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const prefixes: PrefixInfo[] = []
  let mtu: number | undefined
  for (const o of options) {
    if (o.type === OPT_PREFIX_INFO) {
      // §4.6.2: length 4 (32 bytes): prefix length, flags L|A, valid, preferred, reserved, prefix.
      if (o.data.length !== 30) return fail('BAD_OPTION', `prefix information option of ${o.data.length + 2} bytes, must be 32`)
      const d = new DataView(o.data.buffer, o.data.byteOffset, o.data.byteLength)
      const length = d.getUint8(0)
      if (length > 128) return fail('BAD_OPTION', `prefix length ${length} > 128`)
      prefixes.push({
        prefix: ipv6Text(o.data.subarray(14, 30)),
        length,
        onLink: (d.getUint8(1) & 0x80) !== 0,
        autonomous: (d.getUint8(1) & 0x40) !== 0,
        validLifetime: d.getUint32(2),
        preferredLifetime: d.getUint32(6),
      })
    } else if (o.type === OPT_MTU) {
      // §4.6.4: length 1: reserved (2), MTU (4).
      if (o.data.length !== 6) return fail('BAD_OPTION', `MTU option of ${o.data.length + 2} bytes, must be 8`)
      mtu = new DataView(o.data.buffer, o.data.byteOffset, 6).getUint32(2)
    }
  }
  const flags = buf[5]!
  return {
    ok: true,
    message: {
      type: 'ra',
      curHopLimit: buf[4]!,
      managed: (flags & 0x80) !== 0,
      other: (flags & 0x40) !== 0,
      routerLifetime: view.getUint16(6),
      reachableTime: view.getUint32(8),
      retransTimer: view.getUint32(12),
      ...(sourceLinkLayer !== undefined ? { sourceLinkLayer } : {}),
      ...(mtu !== undefined ? { mtu } : {}),
      prefixes,
      options,
    },
  }
}

export interface RaFields {
  readonly curHopLimit?: number
  readonly managed?: boolean
  readonly other?: boolean
  readonly routerLifetime?: number
  readonly reachableTime?: number
  readonly retransTimer?: number
  /** The advertising interface's MAC; §4.2: a router SHOULD include it (hosts then skip resolving us). */
  readonly sourceLinkLayer?: string
  readonly mtu?: number
  readonly prefixes?: readonly PrefixInfo[]
}

function macBytes (mac: string): Uint8Array {
  const parts = mac.split(':')
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`not a MAC address: ${mac}`)
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)))
}

/** Encodes a Router Advertisement (§4.2); checksum zero (the kernel fills it). Throws RangeError on out-of-range fields. */
export function encodeRa (f: RaFields): Buffer {
  const u = (v: number | undefined, bits: number, what: string): number => {
    const x = v ?? 0
    if (!Number.isInteger(x) || x < 0 || x >= 2 ** bits) throw new RangeError(`${what} ${x} does not fit ${bits} bits`)
    return x
  }
  const parts: Buffer[] = []
  const head = Buffer.alloc(16)
  head[0] = ICMP6_ROUTER_ADVERTISEMENT
  head[4] = u(f.curHopLimit, 8, 'cur hop limit')
  head[5] = (f.managed === true ? 0x80 : 0) | (f.other === true ? 0x40 : 0)
  head.writeUInt16BE(u(f.routerLifetime, 16, 'router lifetime'), 6)
  head.writeUInt32BE(u(f.reachableTime, 32, 'reachable time'), 8)
  head.writeUInt32BE(u(f.retransTimer, 32, 'retrans timer'), 12)
  parts.push(head)
  if (f.sourceLinkLayer !== undefined) {
    const o = Buffer.alloc(8)
    o[0] = OPT_SOURCE_LL
    o[1] = 1
    o.set(macBytes(f.sourceLinkLayer), 2)
    parts.push(o)
  }
  if (f.mtu !== undefined) {
    const o = Buffer.alloc(8)
    o[0] = OPT_MTU
    o[1] = 1
    o.writeUInt32BE(u(f.mtu, 32, 'MTU'), 4)
    parts.push(o)
  }
  for (const p of f.prefixes ?? []) {
    const bytes = parseIpv6(p.prefix)
    if (bytes === undefined) throw new RangeError(`not an IPv6 prefix: ${p.prefix}`)
    if (!Number.isInteger(p.length) || p.length < 0 || p.length > 128) throw new RangeError(`prefix length ${p.length}`)
    const o = Buffer.alloc(32)
    o[0] = OPT_PREFIX_INFO
    o[1] = 4
    o[2] = p.length
    o[3] = (p.onLink ? 0x80 : 0) | (p.autonomous ? 0x40 : 0)
    o.writeUInt32BE(u(p.validLifetime, 32, 'valid lifetime'), 4)
    o.writeUInt32BE(u(p.preferredLifetime, 32, 'preferred lifetime'), 8)
    o.set(bytes, 16)
    parts.push(o)
  }
  return Buffer.concat(parts)
}

/** Encodes a Router Solicitation (§4.1), for tests and tools; checksum zero. */
export function encodeRs (sourceLinkLayer?: string): Buffer {
  const head = Buffer.alloc(8)
  head[0] = ICMP6_ROUTER_SOLICITATION
  if (sourceLinkLayer === undefined) return head
  const o = Buffer.alloc(8)
  o[0] = OPT_SOURCE_LL
  o[1] = 1
  o.set(macBytes(sourceLinkLayer), 2)
  return Buffer.concat([head, o])
}

/**
 * `fd00:96::/64` → the prefix, for the configuration. Only /64 with no bits set
 * past the prefix: SLAAC on Ethernet forms 64-bit interface identifiers
 * (RFC 4862 §5.5.3 d, RFC 4291 §2.5.1), and any other length is ignored by hosts.
 */
export function parseIpv6Prefix (s: string): { readonly prefix: string; readonly length: number } | undefined {
  const m = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(s)
  if (m === null || m[2] !== '64') return undefined
  const b = parseIpv6(m[1]!)
  if (b === undefined || b.subarray(8).some((x) => x !== 0)) return undefined
  return { prefix: ipv6Text(b), length: 64 }
}
