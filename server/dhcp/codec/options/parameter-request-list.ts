/** Option 55, parameter request list (RFC 2132 §9.8): one code per byte, at least one. */
import { optionName } from './names.js'
import { optionError, type OptionCodec } from './types.js'

export const parameterRequestList: OptionCodec<number[]> = {
  code: 55,
  name: 'parameter-request-list',
  decode(data) {
    if (data.length === 0) return optionError(parameterRequestList, 'invalid-option-length', 'empty')
    return { ok: true, value: Array.from(data) }
  },
  encode: (codes) => Uint8Array.from(codes, (c) => c & 0xff),
  format: (codes) => codes.map((c) => `${c} ${optionName(c)}`).join(', '),
}
