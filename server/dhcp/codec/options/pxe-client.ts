/**
 * PXE client options of RFC 4578 §2: 93 client system architecture (list of
 * u16, even length > 0), 94 client network device interface (type 1 = UNDI,
 * major, minor), 97 client machine identifier (type 0 + 16-byte GUID).
 */
import { optionError, type OptionCodec } from './types.js'

/** RFC 4578 §2.1 */
export const clientArch: OptionCodec<number[]> = {
  code: 93,
  name: 'client-arch',
  decode(data) {
    if (data.length === 0 || data.length % 2 !== 0) {
      return optionError(clientArch, 'invalid-option-length', `length ${data.length}, want a positive even number`)
    }
    const out: number[] = []
    for (let i = 0; i < data.length; i += 2) out.push((data[i]! << 8) | data[i + 1]!)
    return { ok: true, value: out }
  },
  encode(archs) {
    const out = new Uint8Array(archs.length * 2)
    archs.forEach((a, i) => {
      out[i * 2] = (a >>> 8) & 0xff
      out[i * 2 + 1] = a & 0xff
    })
    return out
  },
  format: (archs) => archs.join(', '),
}

export interface ClientNdi {
  type: number
  major: number
  minor: number
}

/** RFC 4578 §2.2 */
export const clientNdi: OptionCodec<ClientNdi> = {
  code: 94,
  name: 'client-ndi',
  decode(data) {
    if (data.length !== 3) return optionError(clientNdi, 'invalid-option-length', `length ${data.length}, want 3`)
    return { ok: true, value: { type: data[0]!, major: data[1]!, minor: data[2]! } }
  },
  encode: (v) => Uint8Array.of(v.type, v.major, v.minor),
  format: (v) => `${v.type === 1 ? 'UNDI' : `type-${v.type}`} ${v.major}.${v.minor}`,
}

export interface ClientGuid {
  type: number
  /** 16 bytes exactly as sent. */
  guid: Uint8Array
}

/**
 * RFC 4578 §2.3. The GUID bytes are kept exactly as sent. PXE firmware copies
 * the SMBIOS system UUID, whose first three fields are little-endian
 * (SMBIOS 2.6+ §7.2.1), so `format` byte-swaps those fields to print the UUID
 * the way dmidecode and Wireshark do.
 */
export const clientGuid: OptionCodec<ClientGuid> = {
  code: 97,
  name: 'client-guid',
  decode(data) {
    if (data.length !== 17) return optionError(clientGuid, 'invalid-option-length', `length ${data.length}, want 17`)
    if (data[0] !== 0) return optionError(clientGuid, 'invalid-option-value', `type ${data[0]}, want 0`)
    return { ok: true, value: { type: 0, guid: data.subarray(1) } }
  },
  encode(v) {
    const out = new Uint8Array(17)
    out[0] = v.type
    out.set(v.guid.subarray(0, 16), 1)
    return out
  },
  format: (v) => guidString(v.guid),
}

/** SMBIOS-order UUID text of a 16-byte GUID (first three fields little-endian). */
export function guidString(g: Uint8Array): string {
  const h = (i: number): string => (g[i] ?? 0).toString(16).padStart(2, '0')
  const run = (from: number, to: number): string => {
    let s = ''
    for (let i = from; i < to; i++) s += h(i)
    return s
  }
  return `${h(3)}${h(2)}${h(1)}${h(0)}-${h(5)}${h(4)}-${h(7)}${h(6)}-${run(8, 10)}-${run(10, 16)}`
}
