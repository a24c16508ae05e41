/**
 * Option 60, vendor class identifier (RFC 2132 §9.13), and the structured
 * forms boot firmware sends in it:
 *   PXEClient:Arch:xxxxx:UNDI:yyyzzz   (PXE spec 2.1 client DHCP options; arch is RFC 4578 type, decimal)
 *   HTTPClient:Arch:xxxxx:UNDI:yyyzzz  (UEFI spec 2.10 §24.7, HTTP Boot)
 */
import { latin1, optionError, quoted, type OptionCodec } from './types.js'
import { textBytes } from './text.js'

export const vendorClass: OptionCodec<string> = {
  code: 60,
  name: 'vendor-class',
  decode(data) {
    if (data.length === 0) return optionError(vendorClass, 'invalid-option-length', 'empty')
    return { ok: true, value: latin1(data) }
  },
  encode: textBytes,
  format: quoted,
}

export interface BootVendorClass {
  kind: 'PXEClient' | 'HTTPClient'
  /** RFC 4578 architecture type, when the string carries `:Arch:xxxxx`. */
  arch?: number
  /** UNDI major/minor, when the string carries `:UNDI:yyyzzz`. */
  undi?: { major: number; minor: number }
}

const BOOT_VENDOR_CLASS = /^(PXEClient|HTTPClient)(?::Arch:(\d{5}))?(?::UNDI:(\d{3})(\d{3}))?/

/** Parses the PXE / HTTP-boot form; undefined for any other vendor class. */
export function parseBootVendorClass(s: string): BootVendorClass | undefined {
  const m = BOOT_VENDOR_CLASS.exec(s)
  if (!m) return undefined
  const out: BootVendorClass = { kind: m[1] as BootVendorClass['kind'] }
  if (m[2] !== undefined) {
    const arch = Number(m[2])
    if (arch <= 0xffff) out.arch = arch
  }
  if (m[3] !== undefined && m[4] !== undefined) out.undi = { major: Number(m[3]), minor: Number(m[4]) }
  return out
}
