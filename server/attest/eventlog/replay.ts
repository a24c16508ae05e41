/**
 * Event-log replay into PCR banks and comparison with quoted PCR values.
 *
 * Extend (TPM 2.0 Library Part 3 §22.2, TPM2_PCR_Extend): PCR_new = H(PCR_old ‖ digest).
 * Reset values (PC Client Platform TPM Profile): PCRs 0-16 and 23 are zero; 17-22
 * (dynamic-launch PCRs) are all ones until a dynamic launch. PCR 0 may instead start
 * at 0…0‖locality as announced by a StartupLocality EV_NO_ACTION event (PFP
 * §10.4.5.3). EV_NO_ACTION events are never extended (PFP §10.4.1).
 */
import * as nodeCrypto from 'node:crypto'
import { algName, hashInfo, type HashName } from '../tpm/alg.js'
import type { PcrBanks } from '../tpm/pcr.js'
import { PCR_COUNT, type TcgEvent } from './parse.js'
import { EV, STARTUP_LOCALITY } from './types.js'

/** node:crypto's one-shot hash (Node ≥ 20.12): a third of the cost of a Hash object for the 64-byte inputs of an extend. */
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash

/** PCR_new = H(PCR_old ‖ digest); `scratch` holds the input (2 × digest size). */
function extend(hash: HashName, old: Buffer, digest: Buffer, scratch: Buffer): Buffer {
  if (oneShot === undefined) return nodeCrypto.createHash(hash).update(old).update(digest).digest()
  old.copy(scratch, 0)
  digest.copy(scratch, old.length)
  return oneShot(hash, scratch, 'buffer')
}

/** PCR reset value for `pcr` in a bank of `size`-byte digests. */
export function pcrResetValue(pcr: number, size: number): Buffer {
  return Buffer.alloc(size, pcr >= 17 && pcr <= 22 ? 0xff : 0x00)
}

/**
 * The locality of a StartupLocality event (PFP §10.4.5.3: EV_NO_ACTION in PCR 0 with
 * data "StartupLocality\0" ‖ UINT8 locality), or undefined for any other event.
 */
export function startupLocality(e: TcgEvent): number | undefined {
  if (e.type !== EV.NO_ACTION || e.pcr !== 0 || e.data.length !== STARTUP_LOCALITY.length + 1) return undefined
  if (e.data.subarray(0, STARTUP_LOCALITY.length).toString('latin1') !== STARTUP_LOCALITY) return undefined
  return e.data[STARTUP_LOCALITY.length]
}

/**
 * Replays `events` into one bank per digest algorithm that node:crypto can compute
 * and that every extending event carries (a bank missing from any extending event is
 * left out), or only into the banks of `algs` (a verifier needs the quoted bank, not
 * every bank the firmware logged). Returns PCR_COUNT values per bank, keyed by
 * TPM_ALG_ID. A StartupLocality event counts only before the first PCR 0 extend.
 */
export function replay(events: readonly TcgEvent[], algs?: readonly number[]): Map<number, Buffer[]> {
  const extending = events.filter((e) => e.type !== EV.NO_ACTION)
  const candidates = new Set<number>()
  for (const e of events) for (const alg of e.digests.keys()) candidates.add(alg)
  const banks = new Map<number, Buffer[]>()
  for (const alg of [...candidates].sort((a, b) => a - b)) {
    if (algs !== undefined && !algs.includes(alg)) continue
    const h = hashInfo(alg)
    if (h === undefined) continue
    if (!extending.every((e) => e.digests.get(alg)?.length === h.size)) continue
    const pcrs = Array.from({ length: PCR_COUNT }, (_, i) => pcrResetValue(i, h.size))
    const scratch = Buffer.alloc(2 * h.size)
    let pcr0Extended = false
    for (const e of events) {
      if (e.type === EV.NO_ACTION) {
        const loc = startupLocality(e)
        if (loc !== undefined && !pcr0Extended) {
          const v = Buffer.alloc(h.size)
          v[h.size - 1] = loc
          pcrs[0] = v
        }
        continue
      }
      if (e.pcr === 0) pcr0Extended = true
      pcrs[e.pcr] = extend(h.name, pcrs[e.pcr]!, e.digests.get(alg)!, scratch)
    }
    banks.set(alg, pcrs)
  }
  return banks
}

export interface PcrRef {
  readonly alg: number
  readonly pcr: number
}

export interface PcrMismatch extends PcrRef {
  readonly replayed: Buffer
  readonly quoted: Buffer
}

export interface PcrComparison {
  /** True when every quoted PCR has a replayed bank and matches it. */
  readonly ok: boolean
  readonly matched: readonly PcrRef[]
  readonly mismatched: readonly PcrMismatch[]
  /** Quoted banks the log could not replay. */
  readonly missingBanks: readonly number[]
}

/**
 * Compares every quoted PCR (bank × index) with the replayed value. Only PCRs present
 * in `quoted` are compared; pass the PCR values the quote verified (verifyQuote).
 */
export function compareToQuoted(replayed: ReadonlyMap<number, readonly Buffer[]>, quoted: PcrBanks): PcrComparison {
  const matched: PcrRef[] = []
  const mismatched: PcrMismatch[] = []
  const missingBanks: number[] = []
  for (const [alg, values] of [...quoted].sort((a, b) => a[0] - b[0])) {
    const bank = replayed.get(alg)
    if (bank === undefined) {
      missingBanks.push(alg)
      continue
    }
    for (const [pcr, q] of [...values].sort((a, b) => a[0] - b[0])) {
      const r = bank[pcr]
      if (r !== undefined && Buffer.from(q).equals(r)) matched.push({ alg, pcr })
      else mismatched.push({ alg, pcr, replayed: r ?? Buffer.alloc(0), quoted: Buffer.from(q) })
    }
  }
  return { ok: mismatched.length === 0 && missingBanks.length === 0, matched, mismatched, missingBanks }
}

/** "sha256 PCR 4" style label for messages. */
export function pcrLabel(ref: PcrRef): string {
  return `${algName(ref.alg)} PCR ${ref.pcr}`
}
