/**
 * Readable descriptions of event data for dumps and audit views. The event type and
 * most event data are not covered by the measured digest (PFP §10.2: the digest is
 * the measurement, the data is only a hint), so everything here is informational;
 * `dataMatchesDigest` tells whether a given event's data hashes to its digests.
 *
 * Structures decoded (all little-endian, PFP §10.2 / UEFI 2.x):
 * UEFI_VARIABLE_DATA, UEFI_IMAGE_LOAD_EVENT (with a minimal device-path rendering),
 * UEFI_PLATFORM_FIRMWARE_BLOB, UEFI_GPT_DATA header, UEFI_HANDOFF_TABLE_POINTERS,
 * TCG_EfiSpecIDEvent, StartupLocality and ASCII / UCS-2 strings.
 */
import { createHash } from 'node:crypto'
import { algName, hashInfo } from '../tpm/alg.js'
import { Reader } from '../tpm/marshal.js'
import { decodeSpecIdEvent, type EventLog, type TcgEvent } from './parse.js'
import { replay, startupLocality } from './replay.js'
import { EV, SPEC_ID_EVENT02, SPEC_ID_EVENT03, eventTypeName } from './types.js'

/** True when H_alg(data) equals the event's digest for every bank it carries. */
export function dataMatchesDigest(e: TcgEvent): boolean {
  if (e.digests.size === 0) return false
  for (const [alg, d] of e.digests) {
    const h = hashInfo(alg)
    if (h === undefined || !createHash(h.name).update(e.data).digest().equals(d)) return false
  }
  return true
}

/** EFI_GUID in registry format (first three fields little-endian). */
export function guidString(b: Buffer): string {
  if (b.length !== 16) return '?'
  const h = (s: Buffer) => s.toString('hex')
  const le = (s: Buffer) => Buffer.from(s).reverse().toString('hex')
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`
}

const KNOWN_GUIDS: ReadonlyMap<string, string> = new Map([
  ['8be4df61-93ca-11d2-aa0d-00e098032b8c', 'EFI_GLOBAL_VARIABLE'],
  ['d719b2cb-3d3a-4596-a3bc-dad00e67656f', 'EFI_IMAGE_SECURITY_DATABASE'],
  ['605dab50-e046-4300-abb6-3dd810dd8b23', 'SHIM_LOCK'],
])

function printable(b: Buffer): boolean {
  for (const c of b) if (c < 0x20 || c > 0x7e) return false
  return true
}

/** ASCII text with trailing NULs removed, or undefined if not printable. */
function asciiText(b: Buffer): string | undefined {
  let end = b.length
  while (end > 0 && b[end - 1] === 0) end--
  const s = b.subarray(0, end)
  return s.length > 0 && printable(s) ? s.toString('latin1') : undefined
}

/** UCS-2 text (NUL-terminated or whole buffer), or undefined if not printable. */
function ucs2Text(b: Buffer): string | undefined {
  if (b.length < 2 || b.length % 2 !== 0) return undefined
  let s = ''
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b.readUInt16LE(i)
    if (c === 0) break
    if (c < 0x20 || c > 0x7e) return undefined
    s += String.fromCharCode(c)
  }
  return s.length > 0 ? s : undefined
}

function hexPreview(b: Buffer, max = 32): string {
  return b.length <= max ? b.toString('hex') : `${b.subarray(0, max).toString('hex')}… (${b.length} bytes)`
}

function quote(s: string): string {
  return JSON.stringify(s)
}

/** UEFI device path (UEFI spec §10.3) rendered from its node types; bounded to 64 nodes. */
export function devicePathText(b: Buffer): string {
  const r = new Reader(b, true)
  const parts: string[] = []
  for (let n = 0; n < 64 && r.remaining >= 4; n++) {
    const type = r.u8()
    const sub = r.u8()
    const len = r.u16()
    if (len < 4 || len - 4 > r.remaining) {
      parts.push('<bad node>')
      break
    }
    const body = r.bytes(len - 4)
    if (type === 0x7f) break
    if (type === 0x04 && sub === 0x04) parts.push(ucs2Text(body) ?? 'File(?)')
    else if (type === 0x04 && sub === 0x01 && body.length >= 4) parts.push(`HD(${body.readUInt32LE(0)})`)
    else if (type === 0x01 && sub === 0x01 && body.length >= 2) parts.push(`Pci(${body[1]},${body[0]})`)
    else if (type === 0x02 && sub === 0x01 && body.length >= 8) parts.push(`Acpi(0x${body.readUInt32LE(0).toString(16)},${body.readUInt32LE(4)})`)
    else if (type === 0x04 && sub === 0x06 && body.length === 16) parts.push(`FvFile(${guidString(body)})`)
    else if (type === 0x04 && sub === 0x07 && body.length === 16) parts.push(`Fv(${guidString(body)})`)
    else parts.push(`Node(${type},${sub})`)
  }
  return parts.join('/')
}

/** UEFI_VARIABLE_DATA: VariableName GUID, UnicodeNameLength u64, VariableDataLength u64, name, data. */
function describeVariable(data: Buffer): string {
  const r = new Reader(data, true)
  const guid = r.bytes(16)
  const nameLen = r.u64()
  const dataLen = r.u64()
  if (r.failed || nameLen > 1024n || dataLen > BigInt(r.remaining)) return `<bad UEFI_VARIABLE_DATA> ${hexPreview(data)}`
  const name = ucs2Text(r.bytes(Number(nameLen) * 2)) ?? '?'
  const value = r.bytes(Number(dataLen))
  if (r.failed) return `<bad UEFI_VARIABLE_DATA> ${hexPreview(data)}`
  const g = guidString(guid)
  const vendor = KNOWN_GUIDS.get(g) ?? g
  let shown: string
  if (name === 'BootOrder' && value.length % 2 === 0) {
    const order: string[] = []
    for (let i = 0; i < value.length; i += 2) order.push(value.readUInt16LE(i).toString(16).padStart(4, '0'))
    shown = order.join(',')
  } else if (/^Boot[0-9A-F]{4}$/.test(name) && value.length >= 6) {
    // EFI_LOAD_OPTION: Attributes u32, FilePathListLength u16, Description (UCS-2, NUL), FilePathList.
    const fpLen = value.readUInt16LE(4)
    let end = 6
    while (end + 1 < value.length && value.readUInt16LE(end) !== 0) end += 2
    const desc = ucs2Text(value.subarray(6, end)) ?? ''
    const fp = value.subarray(end + 2, end + 2 + fpLen)
    shown = `${quote(desc)} ${devicePathText(fp)}`
  } else if (value.length <= 4) {
    shown = value.toString('hex') || '(empty)'
  } else {
    shown = `${value.length} bytes`
  }
  return `${vendor}:${name} = ${shown}`
}

/** UEFI_IMAGE_LOAD_EVENT: location u64, length u64, link-time address u64, device path length u64, device path. */
function describeImageLoad(data: Buffer): string {
  const r = new Reader(data, true)
  r.u64()
  const length = r.u64()
  r.u64()
  const dpLen = r.u64()
  if (r.failed || dpLen > BigInt(r.remaining)) return `<bad UEFI_IMAGE_LOAD_EVENT> ${hexPreview(data)}`
  const dp = r.bytes(Number(dpLen))
  return `image ${length} bytes ${devicePathText(dp) || '(no device path)'}`
}

/** One-line description of an event's data. */
export function describeEventData(e: TcgEvent): string {
  const d = e.data
  switch (e.type) {
    case EV.NO_ACTION: {
      const sig = d.subarray(0, 16).toString('latin1')
      if (sig === SPEC_ID_EVENT03 || sig === SPEC_ID_EVENT02) {
        const s = decodeSpecIdEvent(d)
        if (!s.ok) return `<bad Spec ID event>`
        const v = s.value
        return `${sig.replace(/\0+$/, '')}: platformClass ${v.platformClass}, spec ${v.specVersionMajor}.${v.specVersionMinor} errata ${v.specErrata}, uintnSize ${v.uintnSize}, algorithms ${v.algorithms.map((a) => `${algName(a.alg)}/${a.digestSize}`).join(' ')}`
      }
      const loc = startupLocality(e)
      if (loc !== undefined) return `StartupLocality ${loc}`
      const text = asciiText(d.subarray(0, 16))
      return text !== undefined ? `${quote(text)} ${hexPreview(d.subarray(16))}` : hexPreview(d)
    }
    case EV.EFI_VARIABLE_DRIVER_CONFIG:
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2:
    case EV.EFI_VARIABLE_AUTHORITY:
      return describeVariable(d)
    case EV.EFI_BOOT_SERVICES_APPLICATION:
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER:
      return describeImageLoad(d)
    case EV.EFI_PLATFORM_FIRMWARE_BLOB:
      if (d.length === 16) return `blob base 0x${d.readBigUInt64LE(0).toString(16)} length ${d.readBigUInt64LE(8)}`
      break
    case EV.EFI_GPT_EVENT:
      if (d.length >= 92 + 8 && d.subarray(0, 8).toString('latin1') === 'EFI PART') return `GPT, ${d.readBigUInt64LE(92)} partition(s)`
      break
    case EV.EFI_HANDOFF_TABLES:
      if (d.length >= 8) return `${d.readBigUInt64LE(0)} configuration table(s)`
      break
    case EV.SEPARATOR:
      return d.length === 4 ? `0x${d.toString('hex')}` : hexPreview(d)
    case EV.POST_CODE:
      if (d.length === 16 && asciiText(d) === undefined) return `blob base 0x${d.readBigUInt64LE(0).toString(16)} length ${d.readBigUInt64LE(8)}`
      break
  }
  const text = asciiText(d) ?? ucs2Text(d)
  if (text !== undefined) return quote(text.length > 200 ? `${text.slice(0, 200)}…` : text)
  return hexPreview(d)
}

/**
 * Deterministic multi-line dump of a parsed log: a header, one block per event
 * (index, PCR, type, size, whether the data hashes to the digests, each digest and a
 * description) and the replayed PCR values per bank.
 */
export function dumpEventLog(log: EventLog): string {
  const lines: string[] = []
  const algs = log.algorithms.map((a) => `${algName(a.alg)}/${a.digestSize}`).join(' ')
  lines.push(`format: ${log.format}`, `algorithms: ${algs}`, `events: ${log.events.length}`, '')
  for (const e of log.events) {
    const verified = e.type === EV.NO_ACTION ? '' : dataMatchesDigest(e) ? ' digest=H(data)' : ''
    lines.push(`#${e.index} @${e.offset} PCR ${e.pcr} ${eventTypeName(e.type)} size ${e.data.length}${verified}`)
    for (const [alg, d] of e.digests) lines.push(`  ${algName(alg).padEnd(6)} ${d.toString('hex')}`)
    lines.push(`  ${describeEventData(e)}`)
  }
  lines.push('')
  for (const [alg, pcrs] of replay(log.events)) {
    lines.push(`replay ${algName(alg)}:`)
    pcrs.forEach((v, i) => lines.push(`  ${String(i).padStart(2)} ${v.toString('hex')}`))
  }
  return `${lines.join('\n')}\n`
}
