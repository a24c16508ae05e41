/**
 * Step `discover` (netboot.mode=discover, a MAC the inventory does not know): report
 * the machine — every NIC's MAC, the DMI identity and the TPM's EK with its
 * certificate — through an attestation start (proto/attest.proto AttestStart
 * `hardware`). The server records it as a pending discovery and answers
 * ATTEST_UNKNOWN_NODE, then ATTEST_PENDING while no admin has decided; the agent
 * waits in `pending` (steps/attest.ts waitForDecision). Once an admin has accepted
 * the TPM for a node that owns one of these MACs, the server answers with a
 * challenge: the machine is known, and it reboots to get its own boot script (the
 * discovery image's kernel is not the node's).
 *
 * The EK fingerprint printed on the console is the server's identity key
 * (`netboot enroll list` shows it), so an admin at the console can match the two.
 */
import { isPendingRefusal, refusalError, start, type AttestDeps, type TpmKeys } from './attest.js'
import type { ServerRefusal } from '../http.js'

/**
 * The `discover` step: reports the machine (MACs, DMI, EK and its certificate) with
 * an attestation start. A challenge means the server already knows this machine
 * and its TPM is enrolled: it should reboot into its own boot.
 */
export async function discoverStep (d: AttestDeps, keys: TpmKeys): Promise<{ kind: 'known' } | { kind: 'pending'; refusal: ServerRefusal }> {
  const hw = d.facts.hardware
  const dmi = [hw.vendor, hw.product, hw.serial !== undefined ? `serial ${hw.serial}` : undefined, hw.systemUuid !== undefined ? `uuid ${hw.systemUuid}` : undefined].filter((x) => x !== undefined).join(', ')
  d.log.info('discover', `reporting MACs ${d.facts.macs.join(' ')}; ${dmi !== '' ? dmi : 'no DMI data'}; EK sha256:${keys.ekSha256}${keys.ek.cert !== undefined ? ' with certificate' : ''}`)
  const s = await start(d, keys, 'refused')
  if (s.kind === 'challenge') {
    d.log.info('discover', 'the server knows this machine and its TPM is enrolled: rebooting into its own boot')
    return { kind: 'known' }
  }
  if (isPendingRefusal(s.refusal)) return { kind: 'pending', refusal: s.refusal }
  throw refusalError('discovery report', s.refusal)
}
