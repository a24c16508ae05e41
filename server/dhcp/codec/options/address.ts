/**
 * IPv4 address options (RFC 2132): single address (1, 28, 50, 54) and address
 * lists (3, 6, 42). Lists must hold at least one address and a multiple of 4
 * bytes (RFC 2132 §3.5, §3.8, §8.3).
 */
import { ipv4At, parseIpv4 } from '../ipv4.js'
import { optionError, type OptionCodec } from './types.js'

function single(code: number, name: string): OptionCodec<string> {
  const codec: OptionCodec<string> = {
    code,
    name,
    decode(data) {
      if (data.length !== 4) return optionError(codec, 'invalid-option-length', `length ${data.length}, want 4`)
      return { ok: true, value: ipv4At(data, 0) }
    },
    encode(value) {
      return addressBytes([value])
    },
    format: (v) => v,
  }
  return codec
}

function list(code: number, name: string): OptionCodec<string[]> {
  const codec: OptionCodec<string[]> = {
    code,
    name,
    decode(data) {
      if (data.length === 0 || data.length % 4 !== 0) {
        return optionError(codec, 'invalid-option-length', `length ${data.length}, want a positive multiple of 4`)
      }
      const out: string[] = []
      for (let i = 0; i < data.length; i += 4) out.push(ipv4At(data, i))
      return { ok: true, value: out }
    },
    encode: addressBytes,
    format: (v) => v.join(', '),
  }
  return codec
}

/** Addresses that are not dotted-quad encode as 0.0.0.0; callers validate configuration at start-up. */
function addressBytes(values: readonly string[]): Uint8Array {
  const out = new Uint8Array(values.length * 4)
  values.forEach((s, i) => {
    const n = Math.max(parseIpv4(s), 0)
    out[i * 4] = n >>> 24
    out[i * 4 + 1] = (n >>> 16) & 0xff
    out[i * 4 + 2] = (n >>> 8) & 0xff
    out[i * 4 + 3] = n & 0xff
  })
  return out
}

/** RFC 2132 §3.3 */
export const subnetMask = single(1, 'subnet-mask')
/** RFC 2132 §3.5 */
export const routers = list(3, 'routers')
/** RFC 2132 §3.8 */
export const dnsServers = list(6, 'dns-servers')
/** RFC 2132 §5.3 */
export const broadcastAddress = single(28, 'broadcast-address')
/** RFC 2132 §8.3 */
export const ntpServers = list(42, 'ntp-servers')
/** RFC 2132 §9.1 */
export const requestedIp = single(50, 'requested-ip')
/** RFC 2132 §9.7 */
export const serverId = single(54, 'server-id')
