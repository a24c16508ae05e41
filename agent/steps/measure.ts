/**
 * Step `measure`: extend ROOTFS_PCR with the verified root image's digest, so every
 * later quote of that PCR shows which root this boot runs (TPM2_PCR_Extend, TPM 2.0
 * Part 3 §22.2: PCR_new = H(PCR_old ‖ digest) in each bank extended).
 *
 * Why PCR 14 — the TCG PC Client Platform Firmware Profile's PCR usage:
 *   0-7    firmware and boot manager (the server's policy quotes these)
 *   8-15   "for use by the static OS": reset only by a platform reset, never by
 *          TPM2_PCR_Reset — a value there can only have been reached by extending
 *   16     debug, and 23 "application support": resettable from locality 0, so any
 *          root process could reset them and replay a good-looking value — a quote
 *          of PCR 23 proves nothing about what booted
 *   17-22  dynamic launch (DRTM), locality 4 only
 * Inside 8-15, the Linux conventions (UAPI Group, "Linux TPM PCR Registry"): 8 and
 * 9 boot loaders and the EFI stub's initrd/command line, 10 IMA, 11-13
 * systemd-stub (unified kernel images, which netboot plans for UEFI), 15 systemd in
 * the booted system (machine-id, file systems, LUKS keys), 14 shim's MOK lists.
 * netboot's chain (firmware → iPXE → kernel) runs no shim, and where a site adds
 * one, shim extends PCR 14 before the kernel and logs it in the firmware event log,
 * so a verifier replays those events and then this one. Nothing after the initramfs
 * extends PCR 14. So: PCR 14, this one event, event data = the root image.
 *
 * Banks: every active bank is extended (SHA-256 always; SHA-1 when the TPM has it
 * active), each with the image's digest in that bank's algorithm — a bank left out
 * could be extended to anything later. The PCR is read before and after: the value
 * after must be H(before ‖ digest), or something else extended it in between.
 */
import { createHash } from 'node:crypto'
import type { Tpm } from '../tpm/index.js'
import { TpmError } from '../tpm/index.js'
import { AgentError } from '../errors.js'
import type { AgentLog } from '../log.js'

export const ROOTFS_PCR = 14

export interface Measurement {
  readonly pcr: number
  /** hex digests extended, per bank. */
  readonly digests: { readonly sha256: string; readonly sha1?: string }
  /** PCR values before and after, per bank, hex. */
  readonly before: { readonly sha256: string; readonly sha1?: string }
  readonly after: { readonly sha256: string; readonly sha1?: string }
}

/** What PCR_Extend makes of `old` with `digest` in `bank`. */
export function extendValue (bank: 'sha256' | 'sha1', old: Buffer, digest: Buffer): Buffer {
  return createHash(bank).update(old).update(digest).digest()
}

function fail (why: string, e?: unknown): AgentError {
  return new AgentError('AGENT_MEASURE', 'measure', `PCR ${ROOTFS_PCR}: ${why}${e !== undefined ? `: ${(e as Error).message ?? String(e)}` : ''}`, e !== undefined ? { cause: e } : {})
}

async function readOne (tpm: Tpm, bank: 'sha256' | 'sha1'): Promise<Buffer | undefined> {
  try {
    return (await tpm.pcrRead({ pcrs: [ROOTFS_PCR], bank })).get(ROOTFS_PCR)
  } catch (e) {
    if (e instanceof TpmError && e.code === 'ERR_TPM_PCR_UNAVAILABLE') return undefined
    throw fail(`reading the ${bank} bank`, e)
  }
}

export async function measureRootfs (d: { tpm: Tpm; log: AgentLog }, image: { sha256: Buffer; sha1: Buffer }): Promise<Measurement> {
  const { tpm } = d
  const before256 = await readOne(tpm, 'sha256')
  if (before256 === undefined) throw fail('the TPM has no active SHA-256 bank')
  const before1 = await readOne(tpm, 'sha1')
  try {
    await tpm.pcrExtend({ pcr: ROOTFS_PCR, digests: { sha256: image.sha256, ...(before1 !== undefined ? { sha1: image.sha1 } : {}) } })
  } catch (e) {
    throw fail('TPM2_PCR_Extend', e)
  }
  const after256 = await readOne(tpm, 'sha256')
  const after1 = before1 !== undefined ? await readOne(tpm, 'sha1') : undefined
  const want256 = extendValue('sha256', before256, image.sha256)
  if (after256 === undefined || !after256.equals(want256)) {
    throw fail(`after the extend it holds ${after256?.toString('hex') ?? 'nothing'}, not H(before ‖ rootfs digest) = ${want256.toString('hex')}: something else extended it`)
  }
  if (before1 !== undefined && (after1 === undefined || !after1.equals(extendValue('sha1', before1, image.sha1)))) {
    throw fail('the SHA-1 bank did not end at H(before ‖ SHA-1 of the image)')
  }
  const m: Measurement = {
    pcr: ROOTFS_PCR,
    digests: { sha256: image.sha256.toString('hex'), ...(before1 !== undefined ? { sha1: image.sha1.toString('hex') } : {}) },
    before: { sha256: before256.toString('hex'), ...(before1 !== undefined ? { sha1: before1.toString('hex') } : {}) },
    after: { sha256: after256.toString('hex'), ...(after1 !== undefined ? { sha1: after1.toString('hex') } : {}) },
  }
  d.log.info('measure', `PCR ${ROOTFS_PCR} extended with the rootfs digest (${before1 !== undefined ? 'sha256 and sha1 banks' : 'sha256 bank'}): now ${m.after.sha256.slice(0, 16)}…`)
  return m
}
