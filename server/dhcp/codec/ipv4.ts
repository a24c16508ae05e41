/** Dotted-quad IPv4 helpers shared by the header and address options. */

export const IPV4_ZERO = '0.0.0.0'
export const IPV4_BROADCAST = '255.255.255.255'

/** Formats the 4 bytes at `off` as dotted quad; the caller guarantees bounds. */
export function ipv4At(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`
}

/** Parses strict dotted-quad (no leading zeros beyond "0", no spaces) into a uint32, or -1. */
export function parseIpv4(s: string): number {
  const parts = s.split('.')
  if (parts.length !== 4) return -1
  let n = 0
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p[0] === '0')) return -1
    let v = 0
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i) - 48
      if (c < 0 || c > 9) return -1
      v = v * 10 + c
    }
    if (v > 255) return -1
    n = n * 256 + v
  }
  return n
}

export function isIpv4(s: string): boolean {
  return parseIpv4(s) >= 0
}

/** Writes a dotted quad at `off`; returns false (writing nothing) if `s` is not IPv4. */
export function writeIpv4(buf: Uint8Array, off: number, s: string): boolean {
  const n = parseIpv4(s)
  if (n < 0) return false
  buf[off] = n >>> 24
  buf[off + 1] = (n >>> 16) & 0xff
  buf[off + 2] = (n >>> 8) & 0xff
  buf[off + 3] = n & 0xff
  return true
}

export function ipv4Bytes(s: string): Uint8Array | undefined {
  const b = new Uint8Array(4)
  return writeIpv4(b, 0, s) ? b : undefined
}

export function isZeroIpv4(s: string): boolean {
  return s === IPV4_ZERO
}
