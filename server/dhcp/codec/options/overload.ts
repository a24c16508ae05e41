/**
 * Option 52, option overload (RFC 2132 §9.3): 1 = `file` holds options,
 * 2 = `sname` holds options, 3 = both. The packet decoder consumes it (it is
 * framing); the reply encoder emits it when it needs the space.
 */
import { optionError, type OptionCodec } from './types.js'

export const OVERLOAD_FILE = 1
export const OVERLOAD_SNAME = 2

export const overload: OptionCodec<1 | 2 | 3> = {
  code: 52,
  name: 'overload',
  decode(data) {
    if (data.length !== 1) return optionError(overload, 'invalid-overload', `length ${data.length}, want 1`)
    const v = data[0]!
    if (v !== 1 && v !== 2 && v !== 3) return optionError(overload, 'invalid-overload', `value ${v}, want 1, 2 or 3`)
    return { ok: true, value: v }
  },
  encode: (v) => Uint8Array.of(v),
  format: formatOverload,
}

export function formatOverload(v: number): string {
  if (v === 0) return 'none'
  const parts: string[] = []
  if (v & OVERLOAD_FILE) parts.push('file')
  if (v & OVERLOAD_SNAME) parts.push('sname')
  return parts.join('+')
}
