/**
 * The agent's Tpm (agent/tpm/index.ts) backed by a SoftTpm (test/sim/soft-tpm.ts):
 * the simulator holds the EK and AK private keys and does the TPM's side in
 * software, so the agent's own attestation code (agent/steps/attest.ts prepareKeys,
 * attestStep) runs unchanged for 10,000 nodes without 10,000 swtpm processes.
 * Only the calls that code makes exist: readEk, createAk, activateCredential,
 * quote, pcrRead. Handles are fake (0x80xxxxxx); no EK certificate.
 */
import { createHash, type KeyObject } from 'node:crypto'
import type { AttestationKey, EndorsementKey, KeyAlg, PcrBank, Quote, Tpm } from '../../agent/tpm/index.js'
import { SoftTpm } from '../sim/soft-tpm.js'

/** TPM2B_PUBLIC → Name: nameAlg (SHA-256, 0x000b) ‖ SHA-256(TPMT_PUBLIC) (TPM 2.0 Part 1 §16). */
function nameOf (tpm2bPublic: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x0b]), createHash('sha256').update(tpm2bPublic.subarray(2)).digest()])
}

export class SoftAgentTpm {
  /**
   * `spareAks`: AK private keys made before the storm, used (once each) by the
   * next createAk calls before any is generated. A real TPM makes the AK in its own
   * silicon (TPM2_Create), not on the node's CPU; the simulator's one process stands
   * for 10,000 of them, so the key generation is done before the storm's clock, like
   * the EK's. The AK is still a new key at each boot.
   */
  constructor (readonly soft: SoftTpm, readonly kind: KeyAlg, private readonly spareAks: KeyObject[] = []) {}

  async readEk (opts: { alg: KeyAlg }): Promise<EndorsementKey> {
    if (opts.alg !== this.kind) throw new Error(`TPM_RC_HANDLE: no ${opts.alg} EK on this soft TPM (it has ${this.kind})`)
    return { public: this.soft.ekPublic, name: nameOf(this.soft.ekPublic), certIndex: 0x01c0000a, handle: 'created', tpmHandle: 0x80000000 }
  }

  async createAk (opts: { alg: KeyAlg; ek?: KeyAlg }): Promise<AttestationKey> {
    const spare = this.spareAks.shift()
    this.soft.createAk(opts.alg, spare !== undefined && spare.asymmetricKeyType === (opts.alg === 'rsa' ? 'rsa' : 'ec') ? spare : undefined)
    return { public: this.soft.akPublic, name: this.soft.akName, handle: 0x80000001, alg: opts.alg, ek: this.kind }
  }

  async activateCredential (opts: { credentialBlob: Uint8Array; secret: Uint8Array }): Promise<Buffer> {
    return this.soft.activateCredential(opts.credentialBlob, opts.secret)
  }

  async quote (opts: { nonce: Uint8Array; pcrs: readonly number[]; bank: PcrBank }): Promise<Quote> {
    const q = this.soft.quote(opts.nonce, opts.pcrs, opts.bank)
    return { attest: q.attest, signature: q.signature }
  }

  async pcrRead (opts: { pcrs: readonly number[]; bank: PcrBank }): Promise<Map<number, Buffer>> {
    return this.soft.pcrValues(opts.bank, opts.pcrs)
  }

  /** As the agent's type: Tpm is a class with private fields, so only a cast makes this structural stand-in one. */
  asTpm (): Tpm { return this as unknown as Tpm }
}
