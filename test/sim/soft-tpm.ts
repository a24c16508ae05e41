/**
 * A software TPM model for tests, benchmarks and the boot-storm simulator: the
 * operations an attestation agent performs, with real keys and real TPM 2.0
 * structures, so that what it produces is what a TPM would send.
 *
 *   EK      TCG default template L-1 (RSA-2048) or L-2 (ECC P-256): nameAlg SHA-256,
 *           attributes 0x000300B2, authPolicy PolicySecret(TPM_RH_ENDORSEMENT),
 *           AES-128-CFB, scheme NULL (reference/TPM.md "Endorsement key");
 *           optionally an EK certificate from a SoftCa.
 *   AK      restricted signing key under the EK: attributes 0x00050072, RSASSA-SHA256
 *           (RSA-2048) or ECDSA-SHA256 (P-256).
 *   PCRs    24 per active bank, reset values per the PC Client profile; firmware
 *           measurements into PCRs 0-7 recorded in a crypto-agile event log
 *           (Spec ID Event03 header + TCG_PCR_EVENT2 records, PFP §10.2.2) whose
 *           replay equals the PCRs.
 *   ActivateCredential (Part 3 §12.5), Quote (Part 3 §18.4: TPMS_ATTEST with
 *           clockInfo, qualifiedSigner = the AK's qualified name, TPMT_SIGNATURE).
 *
 * The TPM-side cryptography is test/attest/helpers.ts's (softwareActivate,
 * encodePublic, encodeAttest, signTpm); test/sim/soft-tpm.test.ts proves the
 * outputs against the server's verifier and against tpm2-tools.
 *
 * RSA key generation costs node:crypto 100-200 ms per key; a simulation of
 * thousands of RSA TPMs takes its keys from an RsaKeyFactory (keys built from a
 * shared pool of primes: distinct moduli at ~1 ms each; factorable by anyone holding
 * two of them, so for simulations only).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, generatePrimeSync, type KeyObject } from 'node:crypto'
import { TPM_ALG, hashInfo } from '../../server/attest/tpm/alg.js'
import { decodeTpm2bPublic, type TpmtPublic } from '../../server/attest/tpm/public.js'
import { EV } from '../../server/attest/eventlog/types.js'
import { AK_ATTRS, EK_ATTRS, EK_POLICY, encodeAttest, encodePublic, signTpm, softwareActivate, tpm2bOf } from '../attest/helpers.js'
import type { SoftCa } from './soft-ca.js'

export type KeyKind = 'rsa' | 'ecc'
export type BankName = 'sha1' | 'sha256' | 'sha384'

const BANK_ALG: Record<BankName, number> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384 }
/** TPM_RH_ENDORSEMENT: a hierarchy's qualified name is its handle (Part 1 §16). */
const TPM_RH_ENDORSEMENT = 0x4000000b
const PCR_COUNT = 24
const FIRMWARE_VERSION = 0x2023012000010000n

/** Where RSA-2048 private keys come from. */
export interface RsaKeySource { next (): KeyObject }

export interface SoftTpmOptions {
  readonly ek: KeyKind
  readonly ak: KeyKind
  /** Private keys to use instead of new ones (RSA-2048 or P-256, matching `ek` / `ak`). */
  readonly ekKey?: KeyObject
  readonly akKey?: KeyObject
  /** Source of new RSA keys (EK, AK, later AKs); default: generateKeyPairSync (slow, see the header). */
  readonly rsaKeys?: RsaKeySource
  /** Issue an EK certificate from this CA. */
  readonly ca?: SoftCa
  /** Active PCR banks, all recorded in the event log (default sha256). */
  readonly banks?: readonly BankName[]
  /**
   * What the firmware measures at every reset: a label that changes the measured
   * contents (machines with equal labels have equal PCRs 0-7), or false for a TPM
   * with no firmware measurements and no event log.
   */
  readonly firmware?: string | false
  /**
   * What makes this machine's platform configuration (PCR 1) its own, e.g. its MAC
   * (reference/TPM.md: PCR 1 changes with the NIC); default: nothing.
   */
  readonly platform?: string
  /**
   * Extra firmware events per reset, spread over PCRs 0-7, each with `eventBytes`
   * of data (default 0 and 64): a real UEFI log has about 100 events in 20-60 KB.
   */
  readonly firmwareEvents?: number
  readonly eventBytes?: number
  readonly resetCount?: number
  readonly restartCount?: number
}

export interface Quote {
  /** TPMS_ATTEST bytes, as `tpm2_quote -m` writes them. */
  readonly attest: Buffer
  /** TPMT_SIGNATURE bytes, as `tpm2_quote -s` writes them. */
  readonly signature: Buffer
  /** The selected PCR values, as PCR_Read returns them. */
  readonly pcrValues: Map<number, Buffer>
}

/** An error the way a TPM reports one: a response code name. */
export class SoftTpmError extends Error {
  constructor (readonly rc: string, message: string) {
    super(`${rc}: ${message}`)
    this.name = 'SoftTpmError'
  }
}

interface LoggedEvent { readonly pcr: number; readonly type: number; readonly digests: ReadonlyMap<number, Buffer>; readonly data: Buffer }

interface Ak { readonly key: KeyObject; readonly public: Buffer; readonly name: Buffer; readonly qualifiedName: Buffer }

export class SoftTpm {
  /** TPM2B_PUBLIC of the EK. */
  readonly ekPublic: Buffer
  /** DER EK certificate, when created with a CA. */
  readonly ekCert?: Buffer
  readonly banks: readonly BankName[]

  private readonly ek: TpmtPublic
  private readonly ekQualifiedName: Buffer
  private ak: Ak
  private readonly pcrs = new Map<number, Buffer[]>()
  private readonly events: LoggedEvent[] = []
  private logBytes?: Buffer
  private resets: number
  private restarts: number
  private readonly bootedAt = Date.now()
  private readonly firmware: string | false
  private readonly platform?: string
  private readonly firmwareEvents: number
  private readonly eventBytes: number
  private readonly rsaKeys?: RsaKeySource

  private constructor (private readonly ekPrivate: KeyObject, akPrivate: KeyObject, o: SoftTpmOptions) {
    this.firmware = o.firmware ?? 'soft-tpm firmware 1.0'
    if (o.platform !== undefined) this.platform = o.platform
    if (o.rsaKeys !== undefined) this.rsaKeys = o.rsaKeys
    this.firmwareEvents = o.firmwareEvents ?? 0
    this.eventBytes = o.eventBytes ?? 64
    this.banks = [...new Set<BankName>(o.banks ?? ['sha256'])].sort((a, b) => BANK_ALG[a] - BANK_ALG[b])
    const ekSym = { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }
    this.ekPublic = tpm2bOf(encodePublic(ekPrivate, {
      attributes: EK_ATTRS, authPolicy: EK_POLICY, symmetric: ekSym, scheme: { scheme: TPM_ALG.NULL, hashAlg: 0 },
      ...(o.ek === 'ecc' ? { kdf: { scheme: TPM_ALG.NULL, hashAlg: 0 } } : {}),
    }))
    const ek = decodeTpm2bPublic(this.ekPublic)
    if (!ek.ok) throw new Error(`soft TPM: EK public area does not decode: ${ek.error.message}`)
    this.ek = ek.value
    const handle = Buffer.alloc(4)
    handle.writeUInt32BE(TPM_RH_ENDORSEMENT)
    this.ekQualifiedName = qualify(handle, objectName(this.ekPublic))
    this.ak = this.loadAk(akPrivate)
    if (o.ca !== undefined) this.ekCert = o.ca.issueEkCert(createPublicKey(ekPrivate))
    this.resets = o.resetCount ?? 1
    this.restarts = o.restartCount ?? 0
    this.powerOn()
  }

  static create (o: SoftTpmOptions): SoftTpm {
    const key = (kind: KeyKind, given: KeyObject | undefined): KeyObject => {
      if (given !== undefined) {
        if (given.type !== 'private' || given.asymmetricKeyType !== (kind === 'rsa' ? 'rsa' : 'ec')) throw new Error(`soft TPM: a ${kind} private key is needed`)
        return given
      }
      return newKey(kind, o.rsaKeys)
    }
    return new SoftTpm(key(o.ek, o.ekKey), key(o.ak, o.akKey), o)
  }

  /** TPM2B_PUBLIC of the AK. */
  get akPublic (): Buffer { return this.ak.public }
  /** The AK's Name: nameAlg ‖ SHA-256(TPMT_PUBLIC). */
  get akName (): Buffer { return this.ak.name }
  /** The AK's qualified name under the EK (Part 1 §16), the quote's qualifiedSigner. */
  get akQualifiedName (): Buffer { return this.ak.qualifiedName }

  /**
   * A new AK under the EK in place of the current one (TPM2_Create + Load), as the
   * agent does at every boot (agent/tpm createAk); of the same kind unless named.
   */
  createAk (kind: KeyKind = this.ak.key.asymmetricKeyType === 'rsa' ? 'rsa' : 'ecc', key?: KeyObject): void {
    this.ak = this.loadAk(key ?? newKey(kind, this.rsaKeys))
  }

  get resetCount (): number { return this.resets }
  get restartCount (): number { return this.restarts }

  /**
   * The firmware event log (crypto-agile, as /sys/kernel/security/tpm0/
   * binary_bios_measurements), empty for a TPM created with `firmware: false`.
   */
  get eventLog (): Buffer {
    if (this.firmware === false && this.events.length === 0) return Buffer.alloc(0)
    this.logBytes ??= encodeEventLog(this.banks, this.events)
    return this.logBytes
  }

  /** PCR values of one bank (PCR_Read), all 24 or the ones named. */
  pcrValues (bank: BankName = 'sha256', which?: readonly number[]): Map<number, Buffer> {
    const values = this.bank(bank)
    const out = new Map<number, Buffer>()
    for (const i of which ?? values.keys()) {
      const v = values[i]
      if (v === undefined) throw new SoftTpmError('TPM_RC_VALUE', `no PCR ${i}`)
      out.set(i, Buffer.from(v))
    }
    return out
  }

  /**
   * Measures `data` into `pcr` in every bank (TPM2_PCR_Extend with H(data)) and
   * records the event in the log, as firmware and the agent do.
   */
  measure (pcr: number, data: Buffer, type: number = EV.POST_CODE): void {
    if (!Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT) throw new SoftTpmError('TPM_RC_VALUE', `no PCR ${pcr}`)
    const digests = new Map<number, Buffer>()
    for (const b of this.banks) {
      const d = createHash(b).update(data).digest()
      digests.set(BANK_ALG[b], d)
      const bank = this.bank(b)
      bank[pcr] = createHash(b).update(bank[pcr]!).update(d).digest()
    }
    this.events.push({ pcr, type, digests, data: Buffer.from(data) })
    this.logBytes = undefined
  }

  /**
   * TPM2_ActivateCredential with this TPM's EK and AK loaded: the credential, or a
   * SoftTpmError (TPM_RC_INTEGRITY when the blob was made for another EK or AK).
   */
  activateCredential (credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Buffer {
    const r = softwareActivate(this.ekPrivate, this.ek, this.ak.name, Buffer.from(credentialBlob), Buffer.from(encryptedSecret))
    if (Buffer.isBuffer(r)) return r
    const rc = r === 'integrity' ? 'TPM_RC_INTEGRITY' : r === 'seed' ? 'TPM_RC_VALUE' : 'TPM_RC_SIZE'
    throw new SoftTpmError(rc, `ActivateCredential failed (${r})`)
  }

  /** TPM2_Quote by the AK over `pcrs` of `bank` with `qualifyingData` (≤ 64 bytes) as extraData. */
  quote (qualifyingData: Uint8Array, pcrs: readonly number[], bank: BankName = 'sha256'): Quote {
    if (qualifyingData.length > 64) throw new SoftTpmError('TPM_RC_SIZE', 'qualifyingData is longer than a TPM2B_DATA')
    const selected = [...new Set(pcrs)].sort((a, b) => a - b)
    const pcrValues = this.pcrValues(bank, selected)
    const digest = createHash('sha256')
    for (const v of pcrValues.values()) digest.update(v)
    const attest = encodeAttest({
      qualifiedSigner: this.ak.qualifiedName,
      extraData: Buffer.from(qualifyingData),
      clock: BigInt(Date.now() - this.bootedAt) + 1000n,
      resetCount: this.resets,
      restartCount: this.restarts,
      safe: 1,
      firmwareVersion: FIRMWARE_VERSION,
      pcrSelect: [{ hashAlg: BANK_ALG[bank], pcrs: selected }],
      pcrDigest: digest.digest(),
    })
    const sigAlg = this.ak.key.asymmetricKeyType === 'rsa' ? TPM_ALG.RSASSA : TPM_ALG.ECDSA
    return { attest, signature: signTpm(this.ak.key, sigAlg, TPM_ALG.SHA256, attest), pcrValues }
  }

  /** A platform reset (reboot): resetCount + 1, PCRs back to their reset values, firmware measured again. */
  reboot (): void {
    this.resets++
    this.restarts = 0
    this.powerOn()
  }

  private powerOn (): void {
    this.events.length = 0
    this.logBytes = undefined
    for (const b of this.banks) {
      const size = hashInfo(BANK_ALG[b])!.size
      // PC Client Platform TPM Profile: PCRs 17-22 reset to all ones, the rest to zeros.
      this.pcrs.set(BANK_ALG[b], Array.from({ length: PCR_COUNT }, (_, i) => Buffer.alloc(size, i >= 17 && i <= 22 ? 0xff : 0)))
    }
    if (this.firmware === false) return
    const f = this.firmware
    this.measure(0, Buffer.from(`${f}: POST`, 'utf8'))
    this.measure(1, Buffer.from(`${f}: platform configuration${this.platform !== undefined ? ` of ${this.platform}` : ''}`, 'utf8'))
    this.measure(2, Buffer.from(`${f}: option ROMs`, 'utf8'))
    this.measure(4, Buffer.from(`${f}: boot loader`, 'utf8'))
    this.measure(7, Buffer.from(`${f}: secure boot policy`, 'utf8'))
    for (let i = 0; i < this.firmwareEvents; i++) {
      const data = Buffer.alloc(this.eventBytes, i & 0xff)
      data.write(`${f}: event ${i}`, 'utf8')
      this.measure(i % 8, data)
    }
    // PFP §3.3.2.2: a separator ends the pre-OS measurements of PCRs 0-7.
    for (let pcr = 0; pcr <= 7; pcr++) this.measure(pcr, Buffer.alloc(4), EV.SEPARATOR)
  }

  private loadAk (key: KeyObject): Ak {
    const rsa = key.asymmetricKeyType === 'rsa'
    const pub = tpm2bOf(encodePublic(key, {
      attributes: AK_ATTRS,
      scheme: { scheme: rsa ? TPM_ALG.RSASSA : TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
      ...(rsa ? {} : { kdf: { scheme: TPM_ALG.NULL, hashAlg: 0 } }),
    }))
    const name = objectName(pub)
    return { key, public: pub, name, qualifiedName: qualify(this.ekQualifiedName, name) }
  }

  private bank (b: BankName): Buffer[] {
    const v = this.pcrs.get(BANK_ALG[b])
    if (v === undefined) throw new SoftTpmError('TPM_RC_PCR', `bank ${b} is not active`)
    return v
  }
}

function newKey (kind: KeyKind, rsaKeys: RsaKeySource | undefined): KeyObject {
  if (kind === 'ecc') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  return rsaKeys?.next() ?? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
}

/** nameAlg(SHA-256) ‖ SHA-256(TPMT_PUBLIC) of a TPM2B_PUBLIC. */
function objectName (tpm2bPublic: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x0b]), createHash('sha256').update(tpm2bPublic.subarray(2)).digest()])
}

/** QN(child) = nameAlg ‖ H(QN(parent) ‖ Name(child)) (Part 1 §16). */
function qualify (parentQn: Buffer, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x0b]), createHash('sha256').update(parentQn).update(name).digest()])
}

// ---- event log (PFP §10.2, little-endian) -----------------------------------------

function le (n: number, bytes: 2 | 4): Buffer {
  const b = Buffer.alloc(bytes)
  if (bytes === 2) b.writeUInt16LE(n)
  else b.writeUInt32LE(n >>> 0)
  return b
}

/**
 * Crypto-agile log: a TCG_PCClientPCREvent carrying TCG_EfiSpecIDEvent "Spec ID
 * Event03" (platform class 0, spec 2.0 errata 2, UINTN 8 bytes, one entry per
 * bank, no vendor info), then one TCG_PCR_EVENT2 per measurement.
 */
function encodeEventLog (banks: readonly BankName[], events: readonly LoggedEvent[]): Buffer {
  const algs = banks.map((b) => BANK_ALG[b])
  const specId = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    le(0, 4), Buffer.from([0, 2, 2, 2]), le(algs.length, 4),
    ...algs.map((a) => Buffer.concat([le(a, 2), le(hashInfo(a)!.size, 2)])),
    Buffer.from([0]),
  ])
  const parts = [le(0, 4), le(EV.NO_ACTION, 4), Buffer.alloc(20), le(specId.length, 4), specId]
  for (const e of events) {
    parts.push(le(e.pcr, 4), le(e.type, 4), le(algs.length, 4))
    for (const a of algs) parts.push(le(a, 2), e.digests.get(a)!)
    parts.push(le(e.data.length, 4), e.data)
  }
  return Buffer.concat(parts)
}

// ---- RSA keys for simulations ------------------------------------------------------

const E = 65537n

/**
 * RSA-2048 private keys from a pool of 1024-bit primes: every call pairs two primes
 * not paired before (n primes give n(n-1)/2 keys), generating more primes when the
 * pairs run out. For simulations only: keys sharing a prime factor each other.
 */
export class RsaKeyFactory implements RsaKeySource {
  private readonly primes: bigint[] = []
  private i = 1
  private j = 0

  /** Pre-generates enough primes for `count` keys (about 35 ms per prime). */
  constructor (count = 0) {
    while ((this.primes.length * (this.primes.length - 1)) / 2 < count) this.addPrime()
  }

  next (): KeyObject {
    while (this.i >= this.primes.length) this.addPrime()
    const p = this.primes[this.i]!
    const q = this.primes[this.j]!
    if (++this.j >= this.i) { this.i++; this.j = 0 }
    return rsaPrivateKey(p, q)
  }

  private addPrime (): void {
    for (;;) {
      const p = generatePrimeSync(1024, { bigint: true })
      // top two bits set: any product of two is a full 2048-bit modulus; e must be invertible mod p-1
      if (p >> 1022n === 3n && (p - 1n) % E !== 0n) { this.primes.push(p); return }
    }
  }
}

function rsaPrivateKey (p: bigint, q: bigint): KeyObject {
  const n = p * q
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n)
  const d = modInverse(E, lambda)
  const b64 = (v: bigint): string => {
    const hex = v.toString(16)
    return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex').toString('base64url')
  }
  return createPrivateKey({
    key: { kty: 'RSA', n: b64(n), e: b64(E), d: b64(d), p: b64(p), q: b64(q), dp: b64(d % (p - 1n)), dq: b64(d % (q - 1n)), qi: b64(modInverse(q, p)) },
    format: 'jwk',
  })
}

function gcd (a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a
}

function modInverse (a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m]
  let [s0, s1] = [1n, 0n]
  while (r1 !== 0n) {
    const qt = r0 / r1;
    [r0, r1] = [r1, r0 - qt * r1];
    [s0, s1] = [s1, s0 - qt * s1]
  }
  if (r0 !== 1n) throw new Error('not invertible')
  return ((s0 % m) + m) % m
}
