/**
 * The PCR 4 rule for unified kernel images (docs/uki.md): a node whose image has a
 * UKI and whose firmware is UEFI must show, in the replayed event log, that the last
 * thing its firmware started was that UKI.
 *
 * Facts it rests on:
 * - UEFI firmware measures every EFI application it starts into PCR 4 as
 *   EV_EFI_BOOT_SERVICES_APPLICATION whose digest is the image's Authenticode hash
 *   (TCG PC Client Platform Firmware Profile (PFP) §3.3.4.4 and §10.4.4).
 * - Before it calls the first boot option, UEFI firmware measures into PCR 4 the
 *   EV_EFI_ACTION string "Calling EFI Application from Boot Option" (PFP §3.3.4.4,
 *   §10.4.4 "EV_EFI_ACTION event strings"), whose digest is the hash of that string.
 *   BIOS firmware never does. Only digests are bound by the PCR (an event's type and
 *   data are not), so the rule tells UEFI from BIOS by that digest, never by the
 *   event types a log claims: a log that replays to the quoted PCR 4 cannot lose it.
 * - Debian's systemd-stub (252.39) starts the kernel in its .linux section with
 *   LoadImage, so the firmware adds one more PCR 4 event: the kernel's own
 *   Authenticode hash (seen in a real OVMF boot, test/fixtures/uki/). That one
 *   event, and nothing else, may follow the UKI; a stub that jumps to the kernel
 *   through the EFI handover entry point adds none.
 *
 * Pure: replayed events in, a verdict out. The caller has already checked that the
 * log replays to the quoted PCR 4.
 */
import { createHash } from 'node:crypto'
import type { TcgEvent } from './eventlog/index.js'
import { EV } from './eventlog/types.js'
import { algName, hashInfo } from './tpm/alg.js'

export const UEFI_BOOT_OPTION_ACTION = 'Calling EFI Application from Boot Option'
/** PFP §10.4.4: measured into PCR 4 when a boot option's application returns (the firmware then tries the next one). */
export const UEFI_BOOT_OPTION_RETURN = 'Returning from EFI Application from Boot Device'
/** The PCR UEFI firmware measures boot applications into (PFP §3.3.4.4). */
export const BOOT_APPLICATION_PCR = 4
/** The PCR systemd-stub (252) measures a command line passed by its loader into (TPM_PCR_INDEX_KERNEL_PARAMETERS). */
export const KERNEL_PARAMETERS_PCR = 12

export interface UkiExpectation {
  /** The served UKI's Authenticode digest in the quoted bank. */
  readonly uki: Buffer
  /** The Authenticode digest of the kernel in its .linux section, same bank. */
  readonly linux?: Buffer
  /**
   * The boot applications that may run before the UKI, same bank: the iPXE
   * binaries netboot serves (UEFI PXE chainloads one over TFTP) and those an admin
   * lists. When given, every other PCR 4 extension before the UKI must be a
   * boot-option action (call or return) or the PCR 0-7 separator: an application
   * that ran before the UKI could have changed what the UKI does, so an unknown one
   * is refused. Undefined: not checked.
   */
  readonly before?: readonly Buffer[]
}

export type UkiVerdict =
  | { readonly ok: true; readonly basis: 'uki-measured' | 'not-uefi' }
  | { readonly ok: false; readonly why: string; readonly expected: string; readonly actual: readonly string[] }

/**
 * Judges the PCR 4 events of a replayed log in bank `bankAlg` (TPM_ALG_ID).
 *   not-uefi      PCR 4 never received the UEFI boot-option action: BIOS firmware.
 *   uki-measured  PCR 4 has an EV_EFI_BOOT_SERVICES_APPLICATION with the UKI's digest,
 *                 nothing after it but, at most, the UKI's own kernel, and (when
 *                 `expect.before` is given) nothing before it but known applications.
 * Otherwise a refusal naming the expected digest and the boot applications PCR 4 shows.
 */
export function checkUkiMeasurement (events: readonly TcgEvent[], bankAlg: number, expect: UkiExpectation): UkiVerdict {
  const info = hashInfo(bankAlg)
  if (info === undefined) throw new Error(`checkUkiMeasurement: ${algName(bankAlg)} is not a hash node:crypto computes`)
  const pcr4 = events.filter((e) => e.pcr === BOOT_APPLICATION_PCR && e.type !== EV.NO_ACTION)
  const digest = (e: TcgEvent): Buffer | undefined => e.digests.get(bankAlg)
  const action = createHash(info.name).update(UEFI_BOOT_OPTION_ACTION, 'latin1').digest()
  const expected = expect.uki.toString('hex')
  const apps = pcr4.filter((e) => e.type === EV.EFI_BOOT_SERVICES_APPLICATION).map((e) => digest(e)?.toString('hex') ?? '-')
  if (!pcr4.some((e) => digest(e)?.equals(action) === true)) return { ok: true, basis: 'not-uefi' }

  let at = -1
  for (let i = pcr4.length - 1; i >= 0; i--) {
    const e = pcr4[i]!
    if (e.type === EV.EFI_BOOT_SERVICES_APPLICATION && digest(e)?.equals(expect.uki) === true) { at = i; break }
  }
  if (at < 0) return { ok: false, why: `PCR 4 has no ${algName(bankAlg)} EV_EFI_BOOT_SERVICES_APPLICATION event with the served UKI's Authenticode digest ${expected}: the firmware started something else`, expected, actual: apps }
  if (expect.before !== undefined) {
    // the UKI itself may appear before its last event: iPXE's efi_image_probe() calls
    // LoadImage (measured) and UnloadImage to test that an image is EFI before it
    // loads it again to start it (seen in OVMF + iPXE ROM boots: the same digest twice)
    const known = [action, createHash(info.name).update(UEFI_BOOT_OPTION_RETURN, 'latin1').digest(), createHash(info.name).update(Buffer.alloc(4)).digest(), expect.uki, ...expect.before]
    const unknown = pcr4.slice(0, at).map(digest).filter((d) => d === undefined || !known.some((k) => k.equals(d)))
    if (unknown.length > 0) {
      return { ok: false, why: `PCR 4 shows ${unknown.length} boot application(s) before the UKI that netboot does not serve and attestation.boot_applications does not list (${unknown.map((d) => d?.toString('hex') ?? '-').join(', ')}): something else ran before it`, expected, actual: apps }
    }
  }
  const after = pcr4.slice(at + 1)
  const allowed = after.length === 0 || (after.length === 1 && expect.linux !== undefined && digest(after[0]!)?.equals(expect.linux) === true)
  if (!allowed) {
    const next = after.map((e) => digest(e)?.toString('hex') ?? '-')
    return { ok: false, why: `PCR 4 was extended ${after.length} more time(s) after the UKI (${next.join(', ')}): something else ran after it`, expected, actual: apps }
  }
  return { ok: true, basis: 'uki-measured' }
}

export type CmdlineVerdict =
  | { readonly ok: true; readonly basis: 'matches' | 'built-in' }
  | { readonly ok: false; readonly why: string; readonly expected: string; readonly actual: readonly string[] }

/**
 * The command line check for a UKI node whose log passed checkUkiMeasurement, for
 * when PCR 12 is quoted. systemd-stub 252 with Secure Boot off replaces its built-in
 * .cmdline with the LoadOptions its loader passed and measures them into PCR 12 as
 * EV_IPL, digest = H(UTF-16LE text ‖ NUL) (stub.c, measure.c tpm_log_load_options;
 * seen in a real OVMF boot). iPXE passes `<image name> <command line>`
 * (efi_image.c efi_image_cmdline). So PCR 12 must hold exactly one event, with the
 * digest of the LoadOptions the server served (`loadOptions`), or none at all (the
 * stub used the built-in .cmdline, which PCR 4 already covers).
 */
export function checkUkiCmdline (events: readonly TcgEvent[], bankAlg: number, loadOptions: string): CmdlineVerdict {
  const info = hashInfo(bankAlg)
  if (info === undefined) throw new Error(`checkUkiCmdline: ${algName(bankAlg)} is not a hash node:crypto computes`)
  const expected = createHash(info.name).update(Buffer.from(`${loadOptions}\0`, 'utf16le')).digest()
  const pcr12 = events.filter((e) => e.pcr === KERNEL_PARAMETERS_PCR && e.type !== EV.NO_ACTION)
  if (pcr12.length === 0) return { ok: true, basis: 'built-in' }
  const actual = pcr12.map((e) => e.digests.get(bankAlg)?.toString('hex') ?? '-')
  if (pcr12.length === 1 && pcr12[0]!.digests.get(bankAlg)?.equals(expected) === true) return { ok: true, basis: 'matches' }
  return { ok: false, why: `PCR ${KERNEL_PARAMETERS_PCR} shows another kernel command line than the one served (${pcr12.length} event(s))`, expected: expected.toString('hex'), actual }
}
