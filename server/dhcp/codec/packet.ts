/**
 * BOOTP/DHCPv4 message codec (RFC 2131 §2 header, RFC 2132 options, RFC 3396
 * long options, RFC 2132 §9.3 overload). Pure: no I/O, no logging.
 *
 * decodePacket never throws and never trusts a length byte: every read is
 * bounded by the input, and input longer than `maxLength` is refused before
 * anything is read. encodePacket lays options out in the options field and,
 * when allowed and needed, in unused `file`/`sname` fields (option 52).
 * Options longer than 255 bytes are split into 255-byte instances (RFC 3396);
 * shorter ones are never split to fill space (RFC 3396 allows it, but a
 * client without RFC 3396 support would then see a truncated option), so an
 * instance that does not fit the rest of a field moves whole to the next one.
 */
import {
  BOOTP_MIN_PACKET_SIZE,
  CHADDR_LENGTH,
  DHCP_MAX_PACKET_SIZE,
  FILE_LENGTH,
  HTYPE_ETHERNET,
  HTYPE_IEEE802,
  HTYPE_INFINIBAND,
  MAGIC_COOKIE,
  MIN_PACKET_SIZE,
  OFF,
  Opt,
  SNAME_LENGTH,
} from './constants.js'
import { Reader, Writer } from './cursor.js'
import { decodeError, encodeError, type DecodeResult, type EncodeResult } from './errors.js'
import { ipv4At, writeIpv4 } from './ipv4.js'
import { DhcpOptions } from './option-list.js'
import { messageType as messageTypeCodec } from './options/message-type.js'
import { OVERLOAD_FILE, OVERLOAD_SNAME } from './options/overload.js'

export interface DhcpPacket {
  op: number
  htype: number
  hlen: number
  hops: number
  xid: number
  secs: number
  flags: number
  ciaddr: string
  yiaddr: string
  siaddr: string
  giaddr: string
  /** The 16-byte chaddr field as on the wire (hlen bytes of address, then padding). */
  chaddr: Uint8Array
  /** sname up to its first NUL, bytes mapped 1:1 (latin1); '' when the field carried options. */
  sname: string
  /** file up to its first NUL, bytes mapped 1:1 (latin1); '' when the field carried options. */
  file: string
  /** Logical options (RFC 3396-aggregated), without PAD/END/52. */
  options: DhcpOptions
  /** Option 52 as decoded (0 = none). The encoder ignores it and decides overload itself. */
  overload: 0 | 1 | 2 | 3
}

export interface DecodeLimits {
  /** Largest accepted input in bytes; default DHCP_MAX_PACKET_SIZE (1500). */
  maxLength?: number
}

const Region = { Options: 0, File: 1, Sname: 2 } as const
type Region = (typeof Region)[keyof typeof Region]
const REGION_NAMES = ['options', 'file', 'sname'] as const

/** Scratch for aggregation; decodePacket is synchronous, so reuse is safe. */
const firstSeen = new Int16Array(256).fill(-1)
const seenCount = new Uint16Array(256)

function scanRegion(
  buf: Uint8Array,
  start: number,
  end: number,
  region: Region,
  codes: number[],
  starts: number[],
  lens: number[],
): DecodeResult<true> {
  let p = start
  while (p < end) {
    const code = buf[p]!
    if (code === Opt.PAD) {
      p++
      continue
    }
    if (code === Opt.END) return { ok: true, value: true }
    if (p + 1 >= end) return decodeError('option-overrun', `option ${code} in ${REGION_NAMES[region]} has no length byte`, p)
    const len = buf[p + 1]!
    if (p + 2 + len > end) {
      return decodeError('option-overrun', `option ${code} in ${REGION_NAMES[region]} claims ${len} bytes, ${end - p - 2} remain`, p)
    }
    if (code === Opt.OVERLOAD && region !== Region.Options) {
      return decodeError('invalid-overload', `option 52 inside ${REGION_NAMES[region]} (RFC 2132 §9.3)`, p)
    }
    codes.push(code)
    starts.push(p + 2)
    lens.push(len)
    p += 2 + len
  }
  return decodeError('missing-end', `${REGION_NAMES[region]} area has no END option`, end)
}

function cString(buf: Uint8Array, start: number, len: number): string {
  let s = ''
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!
    if (c === 0) break
    s += String.fromCharCode(c)
  }
  return s
}

/** Expected hlen for hardware types whose address length is fixed. */
function fixedHlen(htype: number): number {
  if (htype === HTYPE_ETHERNET || htype === HTYPE_IEEE802) return 6
  if (htype === HTYPE_INFINIBAND) return 0 // RFC 4390 §2.1
  return -1
}

export function decodePacket(input: Uint8Array, limits: DecodeLimits = {}): DecodeResult<DhcpPacket> {
  const maxLength = limits.maxLength ?? DHCP_MAX_PACKET_SIZE
  if (input.length > maxLength) return decodeError('too-long', `${input.length} bytes exceeds the ${maxLength}-byte limit`)
  if (input.length < MIN_PACKET_SIZE) {
    return decodeError('too-short', `${input.length} bytes, need at least ${MIN_PACKET_SIZE} (header + magic cookie)`, input.length)
  }
  // One private copy (new Uint8Array copies even for a Node Buffer, whose slice() is a view):
  // option values are views into it and never alias the caller's buffer.
  const buf = new Uint8Array(input)

  const r = new Reader(buf, 0, MIN_PACKET_SIZE)
  const op = r.u8()
  const htype = r.u8()
  const hlen = r.u8()
  const hops = r.u8()
  const xid = r.u32()
  const secs = r.u16()
  const flags = r.u16()
  r.skip(16) // ciaddr, yiaddr, siaddr, giaddr: formatted below
  const chaddr = r.bytes(CHADDR_LENGTH)
  r.skip(SNAME_LENGTH + FILE_LENGTH)
  const cookie = r.u32()
  if (!r.ok) return decodeError('too-short', 'header underrun', r.underrunAt)

  if (cookie !== MAGIC_COOKIE) {
    return decodeError('bad-magic-cookie', `magic cookie 0x${cookie.toString(16).padStart(8, '0')}, want 0x63825363`, OFF.cookie)
  }
  if (hlen > CHADDR_LENGTH) return decodeError('bad-hlen', `hlen ${hlen} exceeds the 16-byte chaddr field`, OFF.hlen)
  const want = fixedHlen(htype)
  if (want >= 0 && hlen !== want) return decodeError('htype-hlen-mismatch', `htype ${htype} requires hlen ${want}, got ${hlen}`, OFF.hlen)

  const codes: number[] = []
  const starts: number[] = []
  const lens: number[] = []
  const main = scanRegion(buf, OFF.options, buf.length, Region.Options, codes, starts, lens)
  if (!main.ok) return main

  let overload: 0 | 1 | 2 | 3 = 0
  let overloadAt = -1
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] !== Opt.OVERLOAD) continue
    if (overloadAt >= 0) return decodeError('invalid-overload', 'option 52 appears more than once', starts[i]! - 2)
    overloadAt = i
    const v = lens[i] === 1 ? buf[starts[i]!]! : -1
    if (v !== 1 && v !== 2 && v !== 3) return decodeError('invalid-overload', `option 52 must be one byte of 1, 2 or 3`, starts[i]! - 2)
    overload = v
  }
  // RFC 3396 (decoding agent): aggregation order is options, then file, then sname.
  if (overload & OVERLOAD_FILE) {
    const res = scanRegion(buf, OFF.file, OFF.file + FILE_LENGTH, Region.File, codes, starts, lens)
    if (!res.ok) return res
  }
  if (overload & OVERLOAD_SNAME) {
    const res = scanRegion(buf, OFF.sname, OFF.sname + SNAME_LENGTH, Region.Sname, codes, starts, lens)
    if (!res.ok) return res
  }

  const options = aggregate(buf, codes, starts, lens)

  const mt = options.get(Opt.MESSAGE_TYPE)
  if (mt === undefined) return decodeError('missing-message-type', 'no option 53: BOOTP is not served')
  const mtr = messageTypeCodec.decode(mt)
  if (!mtr.ok) return decodeError(mtr.error.code, mtr.error.message, starts[codes.indexOf(Opt.MESSAGE_TYPE)]! - 2)

  return {
    ok: true,
    value: {
      op,
      htype,
      hlen,
      hops,
      xid,
      secs,
      flags,
      ciaddr: ipv4At(buf, OFF.ciaddr),
      yiaddr: ipv4At(buf, OFF.yiaddr),
      siaddr: ipv4At(buf, OFF.siaddr),
      giaddr: ipv4At(buf, OFF.giaddr),
      chaddr,
      sname: overload & OVERLOAD_SNAME ? '' : cString(buf, OFF.sname, SNAME_LENGTH),
      file: overload & OVERLOAD_FILE ? '' : cString(buf, OFF.file, FILE_LENGTH),
      options,
      overload,
    },
  }
}

/** RFC 3396 (decoding agent): one entry per code, first-appearance order, instances concatenated. 52 is dropped. */
function aggregate(buf: Uint8Array, codes: number[], starts: number[], lens: number[]): DhcpOptions {
  const n = codes.length
  for (let i = 0; i < n; i++) {
    const c = codes[i]!
    if (seenCount[c] === 0) firstSeen[c] = i
    seenCount[c]!++
  }
  const out = new DhcpOptions()
  for (let i = 0; i < n; i++) {
    const c = codes[i]!
    if (firstSeen[c] !== i || c === Opt.OVERLOAD) continue
    const count = seenCount[c]!
    if (count === 1) {
      out.pushUnique(c, buf.subarray(starts[i]!, starts[i]! + lens[i]!))
      continue
    }
    let total = 0
    for (let j = i; j < n; j++) if (codes[j] === c) total += lens[j]!
    const joined = new Uint8Array(total)
    let p = 0
    for (let j = i; j < n; j++) {
      if (codes[j] !== c) continue
      joined.set(buf.subarray(starts[j]!, starts[j]! + lens[j]!), p)
      p += lens[j]!
    }
    out.pushUnique(c, joined)
  }
  for (let i = 0; i < n; i++) {
    const c = codes[i]!
    seenCount[c] = 0
    firstSeen[c] = -1
  }
  return out
}

export interface EncodeLayout {
  /** Largest encoded size in bytes (the DHCP payload). Default DHCP_MAX_PACKET_SIZE. */
  maxSize?: number
  /** Zero-pad the result to at least this size, capped by maxSize. Default 300 (RFC 951 64-byte vend field). */
  minSize?: number
  /** Use option 52 to spill options into an empty `file`, then an empty `sname`. Default true. */
  allowOverload?: boolean
  /** Codes to emit first, in this order. */
  first?: readonly number[]
  /** Codes to emit last, in this order (after all others). */
  last?: readonly number[]
}

function u(v: number, bits: 8 | 16 | 32): boolean {
  return Number.isInteger(v) && v >= 0 && v < 2 ** bits
}

function latin1Field(s: string, max: number): Uint8Array | undefined {
  if (s.length > max) return undefined
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0 || c > 0xff) return undefined
    out[i] = c
  }
  return out
}

/** Option order: `first`, then remaining in list order, then `last`. */
function orderedIndices(options: DhcpOptions, first: readonly number[], last: readonly number[]): number[] {
  const codes = options.codes()
  const out: number[] = []
  for (const c of first) {
    const i = codes.indexOf(c)
    if (i >= 0) out.push(i)
  }
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!
    if (!first.includes(c) && !last.includes(c)) out.push(i)
  }
  for (const c of last) {
    const i = codes.indexOf(c)
    if (i >= 0 && !first.includes(c)) out.push(i)
  }
  return out
}

/** Wire size of one logical option after RFC 3396 splitting into ≤255-byte instances. */
function wireSize(len: number): number {
  return len === 0 ? 2 : len + 2 * Math.ceil(len / 255)
}

interface Chunk {
  code: number
  data: Uint8Array
}

export function encodePacket(pkt: DhcpPacket, layout: EncodeLayout = {}): EncodeResult {
  const maxSize = layout.maxSize ?? DHCP_MAX_PACKET_SIZE
  const minSize = Math.min(layout.minSize ?? BOOTP_MIN_PACKET_SIZE, maxSize)
  const allowOverload = layout.allowOverload ?? true

  if (!u(pkt.op, 8) || !u(pkt.htype, 8) || !u(pkt.hlen, 8) || !u(pkt.hops, 8)) {
    return encodeError('invalid-field', 'op, htype, hlen and hops must be integers 0..255')
  }
  if (pkt.hlen > CHADDR_LENGTH) return encodeError('invalid-field', `hlen ${pkt.hlen} exceeds 16`)
  if (!u(pkt.xid, 32)) return encodeError('invalid-field', 'xid must be an integer 0..2^32-1')
  if (!u(pkt.secs, 16) || !u(pkt.flags, 16)) return encodeError('invalid-field', 'secs and flags must be integers 0..65535')
  if (pkt.chaddr.length > CHADDR_LENGTH) return encodeError('invalid-field', `chaddr is ${pkt.chaddr.length} bytes, max 16`)
  const sname = latin1Field(pkt.sname, SNAME_LENGTH - 1)
  if (!sname) return encodeError('field-too-long', `sname must be at most ${SNAME_LENGTH - 1} latin1 characters without NUL`)
  const file = latin1Field(pkt.file, FILE_LENGTH - 1)
  if (!file) return encodeError('field-too-long', `file must be at most ${FILE_LENGTH - 1} latin1 characters without NUL`)
  if (maxSize < MIN_PACKET_SIZE + 1) return encodeError('reply-too-large', `maxSize ${maxSize} cannot hold a header and END`)

  const w = new Writer(maxSize)
  w.u8(pkt.op)
  w.u8(pkt.htype)
  w.u8(pkt.hlen)
  w.u8(pkt.hops)
  w.u32(pkt.xid)
  w.u16(pkt.secs)
  w.u16(pkt.flags)
  for (const [name, off] of [
    ['ciaddr', OFF.ciaddr],
    ['yiaddr', OFF.yiaddr],
    ['siaddr', OFF.siaddr],
    ['giaddr', OFF.giaddr],
  ] as const) {
    if (!writeIpv4(w.buf, off, pkt[name])) return encodeError('invalid-field', `${name} ${JSON.stringify(pkt[name])} is not dotted-quad IPv4`)
  }
  w.buf.set(pkt.chaddr, OFF.chaddr)
  w.buf.set(sname, OFF.sname)
  w.buf.set(file, OFF.file)
  w.pos = OFF.cookie
  w.u32(MAGIC_COOKIE)

  const order = orderedIndices(pkt.options, layout.first ?? [], layout.last ?? [])
  let total = 0
  for (const i of order) total += wireSize(pkt.options.valueAt(i)!.length)

  const optionsCap = maxSize - MIN_PACKET_SIZE
  if (total + 1 <= optionsCap) {
    for (const i of order) writeSplit(w, pkt.options.codeAt(i), pkt.options.valueAt(i)!)
    w.u8(Opt.END)
    if (w.pos < minSize) w.zeros(minSize - w.pos)
    return { ok: true, value: w.finish() }
  }

  const fileFree = pkt.file === ''
  const snameFree = pkt.sname === ''
  if (!allowOverload || (!fileFree && !snameFree)) {
    return encodeError('reply-too-large', `options need ${total + 1} bytes, ${optionsCap} available and overload is not possible`)
  }

  const chunks: Chunk[] = []
  for (const i of order) splitInto(chunks, pkt.options.codeAt(i), pkt.options.valueAt(i)!)
  // Regions in RFC 3396 (decoding agent) aggregation order; each keeps one byte for END, options also 3 for option 52.
  const regions: { cap: number; start: number; items: Chunk[] }[] = [{ cap: optionsCap - 4, start: OFF.options, items: [] }]
  if (fileFree) regions.push({ cap: FILE_LENGTH - 1, start: OFF.file, items: [] })
  if (snameFree) regions.push({ cap: SNAME_LENGTH - 1, start: OFF.sname, items: [] })
  let ri = 0
  let used = 0
  for (const ch of chunks) {
    const need = 2 + ch.data.length
    while (ri < regions.length && used + need > regions[ri]!.cap) {
      ri++
      used = 0
    }
    if (ri === regions.length) {
      return encodeError('reply-too-large', `options need ${total + 1} bytes; options field, ${fileFree ? 'file, ' : ''}${snameFree ? 'sname ' : ''}overload is not enough`)
    }
    regions[ri]!.items.push(ch)
    used += need
  }

  let ov = 0
  for (const reg of regions.slice(1)) {
    if (reg.items.length === 0) continue
    ov |= reg.start === OFF.file ? OVERLOAD_FILE : OVERLOAD_SNAME
    const fw = new Writer(reg.start === OFF.file ? FILE_LENGTH : SNAME_LENGTH)
    for (const ch of reg.items) writeChunk(fw, ch)
    fw.u8(Opt.END) // remaining bytes stay 0 = PAD (RFC 2132 §9.3)
    w.buf.set(fw.buf, reg.start)
  }
  for (const ch of regions[0]!.items) writeChunk(w, ch)
  if (ov !== 0) {
    w.u8(Opt.OVERLOAD)
    w.u8(1)
    w.u8(ov)
  }
  w.u8(Opt.END)
  if (w.pos < minSize) w.zeros(minSize - w.pos)
  if (!w.ok) return encodeError('reply-too-large', 'layout overflowed maxSize')
  return { ok: true, value: w.finish() }
}

/** RFC 3396 (encoding agent): values over 255 bytes go out as consecutive instances of the same code. */
function writeSplit(w: Writer, code: number, data: Uint8Array): void {
  if (data.length === 0) {
    w.u8(code)
    w.u8(0)
    return
  }
  for (let p = 0; p < data.length; p += 255) {
    const n = Math.min(255, data.length - p)
    w.u8(code)
    w.u8(n)
    w.bytes(data.subarray(p, p + n))
  }
}

function splitInto(out: Chunk[], code: number, data: Uint8Array): void {
  if (data.length === 0) out.push({ code, data })
  for (let p = 0; p < data.length; p += 255) out.push({ code, data: data.subarray(p, Math.min(p + 255, data.length)) })
}

function writeChunk(w: Writer, ch: Chunk): void {
  w.u8(ch.code)
  w.u8(ch.data.length)
  w.bytes(ch.data)
}

/** Client hardware address as lowercase colon hex of the first hlen bytes of chaddr. */
export function macOf(pkt: Pick<DhcpPacket, 'chaddr' | 'hlen'>): string {
  const n = Math.min(pkt.hlen, CHADDR_LENGTH, pkt.chaddr.length)
  let s = ''
  for (let i = 0; i < n; i++) s += (i ? ':' : '') + pkt.chaddr[i]!.toString(16).padStart(2, '0')
  return s
}

/** The option 53 value; decodePacket guarantees it is present and valid. */
export function messageTypeOf(pkt: Pick<DhcpPacket, 'options'>): number | undefined {
  const v = pkt.options.get(Opt.MESSAGE_TYPE)
  return v !== undefined && v.length === 1 ? v[0] : undefined
}
