/**
 * PCR selections and values shared by the quote verifier and the event-log replay.
 */
import { createHash } from 'node:crypto'
import { MAX, hashInfo, algName, type HashName } from './alg.js'
import { Reader, Writer, err, ok, type Result } from './marshal.js'

/** One TPMS_PCR_SELECTION (Part 2 §10.6.2), PCR indices ascending. */
export interface PcrSelection {
  readonly hashAlg: number
  /** sizeofSelect as received. */
  readonly sizeofSelect: number
  readonly pcrs: readonly number[]
}

/** PCR values by bank (TPM_ALG_ID) and PCR index. */
export type PcrBanks = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>

/**
 * TPML_PCR_SELECTION (Part 2 §10.9.7): count ‖ count × (hash ‖ sizeofSelect ‖
 * pcrSelect[sizeofSelect]); PCR i is bit (i mod 8) of octet ⌊i/8⌋ (Part 2 §10.6.1).
 * count is bounded by MAX.PCR_BANKS and sizeofSelect by MAX.PCR_SELECT.
 */
export function readPcrSelection(r: Reader): PcrSelection[] {
  const start = r.offset
  const count = r.u32()
  if (r.failed) return []
  if (count > MAX.PCR_BANKS) {
    r.fail('too-large', `TPML_PCR_SELECTION count ${count} exceeds ${MAX.PCR_BANKS}`, start)
    return []
  }
  const out: PcrSelection[] = []
  for (let i = 0; i < count && !r.failed; i++) {
    const at = r.offset
    const hashAlg = r.u16()
    const sizeofSelect = r.u8()
    if (r.failed) break
    if (sizeofSelect > MAX.PCR_SELECT) {
      r.fail('too-large', `sizeofSelect ${sizeofSelect} exceeds ${MAX.PCR_SELECT}`, at + 2)
      break
    }
    const bitmap = r.bytes(sizeofSelect)
    const pcrs: number[] = []
    for (let b = 0; b < bitmap.length; b++) {
      for (let bit = 0; bit < 8; bit++) if ((bitmap[b]! >> bit) & 1) pcrs.push(b * 8 + bit)
    }
    out.push({ hashAlg, sizeofSelect, pcrs })
  }
  return out
}

/** Encodes a TPML_PCR_SELECTION; sizeofSelect defaults to 3 (24 PCRs). */
export function encodePcrSelection(sel: readonly { hashAlg: number; pcrs: readonly number[]; sizeofSelect?: number }[]): Buffer {
  const w = new Writer().u32(sel.length)
  for (const s of sel) {
    const size = s.sizeofSelect ?? Math.max(3, ...s.pcrs.map((p) => (p >> 3) + 1))
    const bitmap = Buffer.alloc(size)
    for (const p of s.pcrs) bitmap[p >> 3] = bitmap[p >> 3]! | (1 << (p & 7))
    w.u16(s.hashAlg).u8(size).bytes(bitmap)
  }
  return w.finish()
}

export type PcrDigestErrorCode = 'pcr-value-missing' | 'unsupported-alg'

/**
 * H_hash of the selected PCR values concatenated in selection order: banks in list
 * order, PCRs ascending within a bank (Part 3 §18.4 TPM2_Quote, pcrDigest; the
 * PCR numbering of TPMS_PCR_SELECT per Part 2 §10.6.1).
 */
export function computePcrDigest(hash: HashName, selection: readonly PcrSelection[], values: PcrBanks): Result<Buffer, PcrDigestErrorCode> {
  const h = createHash(hash)
  for (const s of selection) {
    const bank = values.get(s.hashAlg)
    const info = hashInfo(s.hashAlg)
    if (info === undefined) return err('unsupported-alg', `PCR bank ${algName(s.hashAlg)} is not supported`)
    for (const p of s.pcrs) {
      const v = bank?.get(p)
      if (v === undefined || v.length !== info.size) {
        return err('pcr-value-missing', `no ${info.size}-byte value for ${algName(s.hashAlg)} PCR ${p}`)
      }
      h.update(v)
    }
  }
  return ok(h.digest())
}

/** Builds a PcrBanks map from `[alg, [[index, value], …]]` pairs. */
export function pcrBanks(entries: Iterable<readonly [number, Iterable<readonly [number, Uint8Array]>]>): PcrBanks {
  const m = new Map<number, Map<number, Uint8Array>>()
  for (const [alg, vals] of entries) m.set(alg, new Map(vals))
  return m
}
