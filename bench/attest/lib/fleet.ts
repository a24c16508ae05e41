/**
 * The node side of the benchmark: a fleet of software TPMs (test/sim/soft-tpm.ts)
 * and the agent's steps around the server's two calls, exactly as
 * test/attest/tools-agent.ts drives them: AttestStart → AttestChallenge;
 * ActivateCredential; a quote over SHA-256(nonce ‖ boot key JWK bytes);
 * AttestFinish with the PCR values, the event log and the boot key.
 */
import { createHash, generateKeyPairSync } from 'node:crypto'
import { publicJwkOf } from '../../../test/attest/helpers.js'
import { RsaKeyFactory, SoftTpm, type KeyKind } from '../../../test/sim/soft-tpm.js'
import type { AttestFinishRequest, AttestStartRequest } from '../../../server/attest/wire.js'
import type { Challenge } from '../../../server/attest/service.js'

export interface SimNode {
  readonly name: string
  readonly mac: string
  readonly tpm: SoftTpm
}

/** What the firmware of every simulated node measures: a UEFI-sized log in two banks. */
export const FIRMWARE = { firmware: 'bench firmware 1.0', banks: ['sha1', 'sha256'] as const, firmwareEvents: 100, eventBytes: 300 }

export function macOf (i: number): string {
  return `02:be:${[(i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
}

/** `n` nodes with a TPM each (EK and AK of `kind`); RSA keys come from a shared-prime factory. */
export function makeFleet (kind: KeyKind, n: number, prefix: string, rounds = 1): SimNode[] {
  const rsaKeys = kind === 'rsa' ? new RsaKeyFactory((2 + rounds) * n) : undefined
  return Array.from({ length: n }, (_, i) => ({
    name: `${prefix}${String(i + 1).padStart(5, '0')}`,
    mac: macOf((kind === 'rsa' ? 0x100000 : 0x200000) + i),
    // each machine measures its own platform configuration (PCR 1), as real ones do
    tpm: SoftTpm.create({ ek: kind, ak: kind, ...(rsaKeys !== undefined ? { rsaKeys } : {}), ...FIRMWARE, banks: [...FIRMWARE.banks], platform: macOf(i) }),
  }))
}

/** A reboot of every node: a platform reset, and the agent creates a new AK (agent/tpm createAk). */
export function rebootAll (fleet: readonly SimNode[]): void {
  for (const n of fleet) {
    n.tpm.reboot()
    n.tpm.createAk()
  }
}

export function startRequest (n: SimNode): AttestStartRequest {
  return { macs: [n.mac], ekPublic: n.tpm.ekPublic, ekCert: Buffer.alloc(0), akPublic: n.tpm.akPublic, hardware: {} }
}

/** A fresh boot key (P-256 public JWK as UTF-8 JSON, what the agent sends). */
export function bootKeyBytes (): Buffer {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { kty, crv, x, y } = publicJwkOf(publicKey)
  return Buffer.from(JSON.stringify({ kty, crv, x, y }))
}

/** The TPM side between start and finish: ActivateCredential, a boot key, the quote. */
export function agentFinish (n: SimNode, ch: Pick<Challenge, 'session' | 'credentialBlob' | 'encryptedSecret' | 'nonce' | 'pcrs' | 'bank'>): AttestFinishRequest {
  const credential = n.tpm.activateCredential(ch.credentialBlob, ch.encryptedSecret)
  const bootKey = bootKeyBytes()
  const q = n.tpm.quote(createHash('sha256').update(ch.nonce).update(bootKey).digest(), ch.pcrs, ch.bank as 'sha256')
  return { session: ch.session, credential, attest: q.attest, signature: q.signature, pcrValues: q.pcrValues, eventLog: n.tpm.eventLog, bootKey }
}
