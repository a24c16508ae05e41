/**
 * The client side of DHCP as the simulated nodes speak it: a small, independent
 * codec (it does not use server/dhcp/codec, so a bug there cannot hide itself on
 * both ends). Pure: bytes in, bytes out.
 *
 * Three clients, as one real node is three clients in turn (DESIGN.md "The boot path"):
 *  - 'firmware'  PXE ROM: option 93 client arch (RFC 4578 §2.1), 94 NII, 97 UUID,
 *                60 "PXEClient:Arch:00000:UNDI:002001" (PXE spec 2.1 §2.2)
 *  - 'ipxe'      iPXE: the same plus option 77 "iPXE" (raw, as iPXE sends it) and
 *                175 (iPXE's encapsulated options: HTTP 19, bzImage 24, PXE ext 16)
 *  - 'linux'     dhclient-like: no vendor class, hostname 12, its own parameter list
 * Every request sets the BOOTP broadcast flag (RFC 2131 §4.1: the server then
 * broadcasts its replies), as PXE ROMs and iPXE do: the client has no address yet.
 */

export type DhcpClientKind = 'firmware' | 'ipxe' | 'linux'

export const DHCPDISCOVER = 1
export const DHCPOFFER = 2
export const DHCPREQUEST = 3
export const DHCPACK = 5
export const DHCPNAK = 6

const MAGIC = 0x63825363

export interface ClientRequest {
  kind: DhcpClientKind
  type: typeof DHCPDISCOVER | typeof DHCPREQUEST
  xid: number
  mac: Buffer
  /** RFC 2131 §4.3.2 SELECTING: option 54 and option 50 */
  serverId?: string
  requestedIp?: string
  /** seconds since the client began (RFC 2131 `secs`) */
  secs: number
  /** RFC 4578 §2.1 arch type: 0 BIOS, 7 x64 UEFI */
  arch: number
  hostname?: string
}

function ipBytes (ip: string): number[] {
  const p = ip.split('.').map(Number)
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`)
  return p
}

export function macBytes (mac: string): Buffer {
  const b = Buffer.from(mac.replace(/:/g, ''), 'hex')
  if (b.length !== 6) throw new Error(`not a MAC address: ${mac}`)
  return b
}

/** A DISCOVER or REQUEST (RFC 2131 §4.4.1, table 5), padded to 300 bytes (RFC 1542 §3.1.1 BOOTP minimum). */
export function encodeRequest (r: ClientRequest): Buffer {
  const opts: number[] = []
  const opt = (code: number, data: readonly number[] | Buffer): void => {
    if (data.length > 255) throw new Error(`option ${code} longer than 255 bytes`)
    opts.push(code, data.length, ...data)
  }
  opt(53, [r.type])
  if (r.kind !== 'linux') {
    opt(57, [0x05, 0xc0]) // max message size 1472
    opt(93, [r.arch >> 8, r.arch & 0xff])
    opt(94, [1, 2, 1]) // UNDI 2.1
    opt(97, [0, ...r.mac, ...r.mac, 0, 0, 0, 0]) // type 0 + 16-byte machine UUID
    opt(60, Buffer.from(`PXEClient:Arch:${String(r.arch).padStart(5, '0')}:UNDI:002001`))
  }
  if (r.kind === 'ipxe') {
    opt(77, Buffer.from('iPXE'))
    opt(175, [19, 1, 1, 24, 1, 1, 16, 1, 2])
  }
  if (r.kind === 'linux' && r.hostname !== undefined) opt(12, Buffer.from(r.hostname))
  if (r.requestedIp !== undefined) opt(50, ipBytes(r.requestedIp))
  if (r.serverId !== undefined) opt(54, ipBytes(r.serverId))
  opt(55, r.kind === 'linux' ? [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42] : [1, 3, 6, 12, 15, 17, 43, 60, 66, 67, 128, 129, 175])
  opts.push(255)
  const b = Buffer.alloc(Math.max(300, 240 + opts.length))
  b[0] = 1 // BOOTREQUEST
  b[1] = 1 // Ethernet
  b[2] = 6
  b.writeUInt32BE(r.xid >>> 0, 4)
  b.writeUInt16BE(Math.min(0xffff, r.secs), 8)
  b.writeUInt16BE(0x8000, 10) // broadcast flag
  r.mac.copy(b, 28)
  b.writeUInt32BE(MAGIC, 236)
  Buffer.from(opts).copy(b, 240)
  return b
}

export interface ServerReply {
  xid: number
  mac: string
  type: number
  yiaddr: string
  siaddr: string
  serverId?: string
  /** option 67, else the `file` field (RFC 2132 §9.5) */
  bootfile?: string
  /** option 66, else siaddr when a bootfile is named */
  tftpServer?: string
}

const ip = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`
const cstr = (b: Buffer): string => { const z = b.indexOf(0); return (z < 0 ? b : b.subarray(0, z)).toString('latin1') }

/** A BOOTREPLY, or a reason it is not one we can use. Never throws; trusts no length. */
export function decodeReply (b: Buffer): { ok: true; reply: ServerReply } | { ok: false; why: string } {
  if (b.length < 240) return { ok: false, why: `short packet (${b.length} bytes)` }
  if (b[0] !== 2) return { ok: false, why: 'not a BOOTREPLY' }
  if (b.readUInt32BE(236) !== MAGIC) return { ok: false, why: 'no magic cookie' }
  const options = new Map<number, Buffer>()
  for (let o = 240; o < b.length;) {
    const code = b[o]!
    if (code === 255) break
    if (code === 0) { o++; continue }
    if (o + 1 >= b.length) return { ok: false, why: `option ${code} truncated` }
    const len = b[o + 1]!
    if (o + 2 + len > b.length) return { ok: false, why: `option ${code} runs past the packet` }
    const prev = options.get(code)
    const v = b.subarray(o + 2, o + 2 + len)
    options.set(code, prev === undefined ? v : Buffer.concat([prev, v])) // RFC 3396 concatenation
    o += 2 + len
  }
  const type = options.get(53)?.[0]
  if (type === undefined) return { ok: false, why: 'no message type' }
  const overload = options.get(52)?.[0] ?? 0
  const fileField = (overload & 1) === 0 ? cstr(b.subarray(108, 236)) : ''
  const sid = options.get(54)
  const o67 = options.get(67)
  const o66 = options.get(66)
  const bootfile = o67 !== undefined ? cstr(o67) : fileField !== '' ? fileField : undefined
  const siaddr = ip(b, 20)
  return {
    ok: true,
    reply: {
      xid: b.readUInt32BE(4), mac: b.subarray(28, 34).toString('hex').replace(/(..)(?!$)/g, '$1:'), type, yiaddr: ip(b, 16), siaddr,
      ...(sid !== undefined && sid.length === 4 ? { serverId: ip(sid, 0) } : {}),
      ...(bootfile !== undefined ? { bootfile } : {}),
      ...(o66 !== undefined ? { tftpServer: cstr(o66) } : bootfile !== undefined && siaddr !== '0.0.0.0' ? { tftpServer: siaddr } : {}),
    },
  }
}
