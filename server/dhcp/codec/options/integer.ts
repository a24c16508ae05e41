/** Fixed-width integer options (RFC 2132 §5.1, §9.2, §9.10, §9.11, §9.12). */
import { optionError, type OptionCodec } from './types.js'

function u16(code: number, name: string, min: number): OptionCodec<number> {
  const codec: OptionCodec<number> = {
    code,
    name,
    decode(data) {
      if (data.length !== 2) return optionError(codec, 'invalid-option-length', `length ${data.length}, want 2`)
      const v = (data[0]! << 8) | data[1]!
      if (v < min) return optionError(codec, 'invalid-option-value', `${v} is below the minimum ${min}`)
      return { ok: true, value: v }
    },
    encode(v) {
      return Uint8Array.of((v >>> 8) & 0xff, v & 0xff)
    },
    format: (v) => String(v),
  }
  return codec
}

function u32(code: number, name: string): OptionCodec<number> {
  const codec: OptionCodec<number> = {
    code,
    name,
    decode(data) {
      if (data.length !== 4) return optionError(codec, 'invalid-option-length', `length ${data.length}, want 4`)
      return { ok: true, value: ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0 }
    },
    encode(v) {
      return Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff)
    },
    format: (v) => (v === 0xffffffff ? 'infinite' : `${v}s`),
  }
  return codec
}

/** RFC 2132 §5.1: minimum legal MTU 68. */
export const interfaceMtu = u16(26, 'interface-mtu', 68)
/** RFC 2132 §9.2: seconds; 0xffffffff is infinite. */
export const leaseTime = u32(51, 'lease-time')
/**
 * RFC 2132 §9.10: maximum DHCP message the client accepts. The minimum legal
 * value is 576; smaller values decode as invalid-option-value and are then
 * ignored by the reply encoder (which falls back to 576).
 */
export const maxMessageSize = u16(57, 'max-message-size', 576)
/** RFC 2132 §9.11 (T1) */
export const renewalTime = u32(58, 'renewal-time')
/** RFC 2132 §9.12 (T2) */
export const rebindingTime = u32(59, 'rebinding-time')
