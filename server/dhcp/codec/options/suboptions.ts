/**
 * Encapsulated sub-option lists (code, length, value), used by option 43 (PXE
 * spec 2.1 §2.4, RFC 2132 §8.4), 82 (RFC 3046 §2.0) and 175 (iPXE).
 *
 * With `padEnd`, sub-option 0 is a single PAD byte and 255 ends the list
 * (43 and 175 follow that convention); without it every code has a length
 * byte (82). Sub-options are kept raw and in order.
 */
import { decodeError, type DecodeResult } from '../errors.js'
import { hex } from './types.js'

export interface SubOption {
  code: number
  data: Uint8Array
}

export function decodeSubOptions(data: Uint8Array, padEnd: boolean): DecodeResult<SubOption[]> {
  const out: SubOption[] = []
  let p = 0
  while (p < data.length) {
    const code = data[p]!
    if (padEnd && code === 0) {
      p++
      continue
    }
    if (padEnd && code === 255) break
    if (p + 1 >= data.length) return decodeError('option-overrun', `sub-option ${code} has no length byte`, p)
    const len = data[p + 1]!
    if (p + 2 + len > data.length) return decodeError('option-overrun', `sub-option ${code} length ${len} runs past its option`, p)
    out.push({ code, data: data.subarray(p + 2, p + 2 + len) })
    p += 2 + len
  }
  return { ok: true, value: out }
}

/** Sub-option values longer than 255 bytes are truncated to 255; `end` appends the 255 terminator. */
export function encodeSubOptions(subs: readonly SubOption[], end: boolean): Uint8Array {
  let n = end ? 1 : 0
  for (const s of subs) n += 2 + Math.min(s.data.length, 255)
  const out = new Uint8Array(n)
  let p = 0
  for (const s of subs) {
    const len = Math.min(s.data.length, 255)
    out[p] = s.code
    out[p + 1] = len
    out.set(s.data.subarray(0, len), p + 2)
    p += 2 + len
  }
  if (end) out[p] = 255
  return out
}

export function formatSubOptions(subs: readonly SubOption[], name: (code: number) => string = (c) => String(c)): string {
  return subs.map((s) => `${name(s.code)}=${hex(s.data)}`).join(' ')
}
