/**
 * Stable, readable text form of a decoded packet for golden tests and
 * debugging: one line per header field, then one line per option in packet
 * order as `option <code> <name>: <value>`. Options the codec types are shown
 * decoded; a malformed typed option shows its error code and raw hex; other
 * options show raw hex. Changing this format means regenerating the *.dump
 * fixtures.
 */
import { FLAG_BROADCAST } from './constants.js'
import { formatOverload } from './options/overload.js'
import { optionName } from './options/names.js'
import { codecFor } from './options/registry.js'
import { colonHex, hex } from './options/types.js'
import type { DhcpPacket } from './packet.js'

const OPS: Record<number, string> = { 1: 'BOOTREQUEST', 2: 'BOOTREPLY' }
const HTYPES: Record<number, string> = { 1: 'ethernet', 6: 'ieee802', 32: 'infiniband' }

export function dumpPacket(p: DhcpPacket): string {
  const lines: string[] = []
  const hw = Math.min(p.hlen, p.chaddr.length)
  const pad = p.chaddr.subarray(hw)
  lines.push(`op: ${OPS[p.op] ?? 'unknown'} (${p.op})`)
  lines.push(`htype: ${HTYPES[p.htype] ?? 'other'} (${p.htype})`)
  lines.push(`hlen: ${p.hlen}`)
  lines.push(`hops: ${p.hops}`)
  lines.push(`xid: 0x${p.xid.toString(16).padStart(8, '0')}`)
  lines.push(`secs: ${p.secs}`)
  lines.push(`flags: 0x${p.flags.toString(16).padStart(4, '0')}${p.flags & FLAG_BROADCAST ? ' broadcast' : ''}`)
  lines.push(`ciaddr: ${p.ciaddr}`)
  lines.push(`yiaddr: ${p.yiaddr}`)
  lines.push(`siaddr: ${p.siaddr}`)
  lines.push(`giaddr: ${p.giaddr}`)
  lines.push(`chaddr: ${colonHex(p.chaddr.subarray(0, hw))}${pad.some((b) => b !== 0) ? ` padding ${hex(pad)}` : ''}`)
  lines.push(`sname: ${JSON.stringify(p.sname)}`)
  lines.push(`file: ${JSON.stringify(p.file)}`)
  lines.push(`overload: ${formatOverload(p.overload)}`)
  for (const [code, data] of p.options) lines.push(`option ${code} ${optionName(code)}: ${formatOption(code, data)}`)
  return lines.join('\n') + '\n'
}

export function formatOption(code: number, data: Uint8Array): string {
  const codec = codecFor(code)
  if (!codec) return `${hex(data)} (${data.length} bytes)`
  const r = codec.decode(data)
  if (!r.ok) return `invalid ${r.error.code} ${hex(data)} (${data.length} bytes)`
  return codec.format(r.value)
}
