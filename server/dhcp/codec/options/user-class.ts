/**
 * Option 77, user class.
 *
 * Two forms exist on the wire:
 *  - RFC 3004 §4: a list of instances, each `len (>=1), data`; the lengths
 *    chain exactly to the end of the option.
 *  - legacy: the whole value is one opaque string (iPXE sends "iPXE",
 *    isc-dhclient `send user-class "x"` sends the bare string).
 * Detection: RFC 3004 when the length chain consumes the value exactly, legacy
 * otherwise. The rule is ambiguous only for a legacy string whose first byte
 * happens to equal the remaining length (e.g. "\x03abc"), which no known
 * firmware sends.
 */
import { latin1, optionError, quoted, type OptionCodec } from './types.js'

export interface UserClass {
  format: 'rfc3004' | 'legacy'
  /** The instances (RFC 3004) or the single legacy string. */
  classes: string[]
}

export function isRfc3004UserClass(data: Uint8Array): boolean {
  let p = 0
  while (p < data.length) {
    const len = data[p]!
    if (len === 0) return false
    p += 1 + len
  }
  return p === data.length && data.length > 0
}

export const userClass: OptionCodec<UserClass> = {
  code: 77,
  name: 'user-class',
  decode(data) {
    if (data.length === 0) return optionError(userClass, 'invalid-option-length', 'empty')
    if (!isRfc3004UserClass(data)) return { ok: true, value: { format: 'legacy', classes: [latin1(data)] } }
    const classes: string[] = []
    let p = 0
    while (p < data.length) {
      const len = data[p]!
      classes.push(latin1(data.subarray(p + 1, p + 1 + len)))
      p += 1 + len
    }
    return { ok: true, value: { format: 'rfc3004', classes } }
  },
  encode(v) {
    if (v.format === 'legacy') return Uint8Array.from(v.classes.join(''), (c) => c.charCodeAt(0) & 0xff)
    const parts = v.classes.filter((c) => c.length > 0).map((c) => c.slice(0, 255))
    const out = new Uint8Array(parts.reduce((n, c) => n + 1 + c.length, 0))
    let p = 0
    for (const c of parts) {
      out[p++] = c.length
      for (let i = 0; i < c.length; i++) out[p++] = c.charCodeAt(i) & 0xff
    }
    return out
  },
  format: (v) => `${v.format} ${v.classes.map(quoted).join(', ')}`,
}
