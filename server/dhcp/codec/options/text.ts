/**
 * Text options (RFC 2132 §3.14, §3.17, §9.4, §9.5): NVT ASCII, at least one
 * byte. The value excludes trailing NULs that some clients append; bytes are
 * mapped 1:1 (latin1), so nothing is lost.
 */
import { latin1, optionError, quoted, type OptionCodec } from './types.js'

function text(code: number, name: string): OptionCodec<string> {
  const codec: OptionCodec<string> = {
    code,
    name,
    decode(data) {
      if (data.length === 0) return optionError(codec, 'invalid-option-length', 'empty')
      let end = data.length
      while (end > 0 && data[end - 1] === 0) end--
      return { ok: true, value: latin1(data.subarray(0, end)) }
    },
    encode: textBytes,
    format: quoted,
  }
  return codec
}

/** Latin-1 bytes; characters above U+00FF become '?'. */
export function textBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out[i] = c > 0xff ? 0x3f : c
  }
  return out
}

/** RFC 2132 §3.14 */
export const hostName = text(12, 'host-name')
/** RFC 2132 §3.17 */
export const domainName = text(15, 'domain-name')
/** RFC 2132 §9.4 */
export const tftpServerName = text(66, 'tftp-server-name')
/** RFC 2132 §9.5 */
export const bootfileName = text(67, 'bootfile-name')
