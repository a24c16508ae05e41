/**
 * The EK certificate as stored in its NV index → the DER certificate. Pure: no
 * addon, no I/O.
 *
 * TCG EK Credential Profile 2.x §2.2.1.5 stores the certificate as DER in the NV
 * index, but indices are often defined larger than the certificate and padded
 * (0x00 or 0xFF), and some TPMs prefix it with a `10 01 00 ‖ u16 length` header
 * (see reference/TPM.md). The DER's own outer SEQUENCE length (X.690 §8.1.3)
 * says where the certificate ends.
 */

export type EkCertNv =
  | { readonly ok: true; readonly der: Buffer; readonly prefixed: boolean; readonly padding: number }
  | { readonly ok: false; readonly reason: string }

const PREFIX = [0x10, 0x01, 0x00] as const

/** Length of the DER TLV at `at` (tag SEQUENCE, definite length), or a reason it is not one. */
function derSequenceLength(b: Buffer, at: number): number | string {
  if (b.length < at + 2) return 'shorter than a DER header'
  if (b[at] !== 0x30) return `starts with 0x${(b[at] ?? 0).toString(16).padStart(2, '0')}, not a DER SEQUENCE (0x30)`
  const first = b[at + 1]!
  if (first < 0x80) return 2 + first
  const n = first & 0x7f
  if (n === 0) return 'uses the indefinite length form, which DER forbids'
  if (n > 3) return `has a ${n}-byte length field`
  if (b.length < at + 2 + n) return 'ends inside the DER length field'
  let len = 0
  for (let i = 0; i < n; i++) len = len * 256 + b[at + 2 + i]!
  return 2 + n + len
}

/** Strips the optional NV header and trailing padding; the DER must be complete. */
export function ekCertFromNv(nv: Uint8Array): EkCertNv {
  const b = Buffer.from(nv.buffer, nv.byteOffset, nv.byteLength)
  let at = 0
  let limit = b.length
  const prefixed = b.length >= 5 && PREFIX.every((v, i) => b[i] === v)
  if (prefixed) {
    at = 5
    limit = Math.min(b.length, 5 + b.readUInt16BE(3))
  }
  const len = derSequenceLength(b.subarray(0, limit), at)
  if (typeof len === 'string') return { ok: false, reason: `EK certificate ${len}` }
  if (at + len > limit) return { ok: false, reason: `EK certificate claims ${len} bytes but ${limit - at} are stored` }
  return { ok: true, der: Buffer.from(b.subarray(at, at + len)), prefixed, padding: b.length - at - len }
}
