/**
 * TPM 2.0 key derivation functions (TPM 2.0 Library Part 1 §11.4.10).
 *
 * Both are counter-mode KDFs over a node:crypto hash. `label` is given without its
 * terminating NUL: the KDFs append the single 0x00 octet the specification requires
 * after the label (Part 1 §11.4.10.1, "the octet after the label is 0").
 *
 * When `bits` is not a multiple of 8 the result has ceil(bits/8) octets and the
 * unused high-order bits of the first octet are cleared (as in the reference
 * implementation's CryptKDFa / CryptKDFe).
 */
import { createHash, createHmac } from 'node:crypto'
import type { HashName } from './alg.js'

/** Derivations above this many bits are a programming error. */
const MAX_BITS = 1 << 16

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

function finish(out: Buffer, bits: number): Buffer {
  const bytes = (bits + 7) >>> 3
  const r = Buffer.from(out.subarray(0, bytes))
  if (bits % 8 !== 0 && r.length > 0) r[0] = r[0]! & ((1 << (bits % 8)) - 1)
  return r
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits <= 0 || bits > MAX_BITS) throw new RangeError(`KDF bit count ${bits}`)
}

/**
 * KDFa (Part 1 §11.4.10.2, SP 800-108 counter mode with HMAC):
 * K(i) = HMAC_hash(key, [i]32 ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]32).
 */
export function kdfa(
  hash: HashName,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer {
  checkBits(bits)
  const labelBytes = Buffer.from(label, 'latin1')
  const parts: Buffer[] = []
  let have = 0
  for (let i = 1; have * 8 < bits; i++) {
    const h = createHmac(hash, key)
    h.update(u32(i))
    h.update(labelBytes)
    h.update(Buffer.of(0))
    h.update(contextU)
    h.update(contextV)
    h.update(u32(bits))
    const d = h.digest()
    parts.push(d)
    have += d.length
  }
  return finish(Buffer.concat(parts), bits)
}

/**
 * KDFe (Part 1 §11.4.10.3, SP 800-56A concatenation KDF):
 * K(i) = H_hash([i]32 ‖ Z ‖ label ‖ 0x00 ‖ partyUInfo ‖ partyVInfo).
 */
export function kdfe(
  hash: HashName,
  z: Uint8Array,
  label: string,
  partyUInfo: Uint8Array,
  partyVInfo: Uint8Array,
  bits: number,
): Buffer {
  checkBits(bits)
  const labelBytes = Buffer.from(label, 'latin1')
  const parts: Buffer[] = []
  let have = 0
  for (let i = 1; have * 8 < bits; i++) {
    const h = createHash(hash)
    h.update(u32(i))
    h.update(z)
    h.update(labelBytes)
    h.update(Buffer.of(0))
    h.update(partyUInfo)
    h.update(partyVInfo)
    const d = h.digest()
    parts.push(d)
    have += d.length
  }
  return finish(Buffer.concat(parts), bits)
}
