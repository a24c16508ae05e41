/**
 * TPMS_ATTEST and TPMT_SIGNATURE decoding and TPM2_Quote verification
 * (TPM 2.0 Library Part 2 §10.12 attestation structures, §11.3 signatures;
 * Part 3 §18.4 TPM2_Quote).
 */
import { constants, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { MAX, TPM_ALG, TPM_GENERATED_VALUE, TPM_ST_ATTEST, algName, curveInfo, hashInfo } from './alg.js'
import { Reader, err, ok, type DecodeError, type Result } from './marshal.js'
import { computePcrDigest, readPcrSelection, type PcrBanks, type PcrSelection } from './pcr.js'
import { checkAkAttributes, decodeTpm2bPublic, publicKeyObject, type TpmtPublic } from './public.js'

/** TPMS_ATTEST decoder failures; unsupported-type is a TPM_ST outside TPMI_ST_ATTEST. */
export const ATTEST_ERROR_CODES = ['truncated', 'too-large', 'bad-magic', 'unsupported-type', 'trailing-bytes'] as const
export type AttestErrorCode = (typeof ATTEST_ERROR_CODES)[number]

/** TPMS_CLOCK_INFO (Part 2 §10.11). */
export interface ClockInfo {
  readonly clock: bigint
  readonly resetCount: number
  readonly restartCount: number
  /** TPMI_YES_NO: the clock has not gone backwards since last reported. */
  readonly safe: boolean
  /** The raw safe octet (1 = YES). */
  readonly safeRaw: number
}

export type Attested =
  | { readonly kind: 'quote'; readonly pcrSelect: readonly PcrSelection[]; readonly pcrDigest: Buffer }
  | { readonly kind: 'certify'; readonly name: Buffer; readonly qualifiedName: Buffer }
  | { readonly kind: 'creation'; readonly objectName: Buffer; readonly creationHash: Buffer }
  | { readonly kind: 'time'; readonly time: bigint; readonly clockInfo: ClockInfo; readonly firmwareVersion: bigint }
  | { readonly kind: 'command-audit'; readonly auditCounter: bigint; readonly digestAlg: number; readonly auditDigest: Buffer; readonly commandDigest: Buffer }
  | { readonly kind: 'session-audit'; readonly exclusiveSession: boolean; readonly sessionDigest: Buffer }
  | { readonly kind: 'nv'; readonly indexName: Buffer; readonly offset: number; readonly nvContents: Buffer }
  | { readonly kind: 'nv-digest'; readonly indexName: Buffer; readonly nvDigest: Buffer }

/** TPMS_ATTEST (Part 2 §10.12). */
export interface TpmsAttest {
  readonly magic: number
  readonly type: number
  readonly qualifiedSigner: Buffer
  readonly extraData: Buffer
  readonly clockInfo: ClockInfo
  readonly firmwareVersion: bigint
  readonly attested: Attested
  /** The bytes the signature covers, as received. */
  readonly raw: Buffer
}

/** TPM2B_MAX_NV_BUFFER bound (MAX_NV_BUFFER_SIZE on PC Client TPMs is ≤ 2048). */
const MAX_NV_BUFFER = 2048

function readClockInfo(r: Reader): ClockInfo {
  const clock = r.u64()
  const resetCount = r.u32()
  const restartCount = r.u32()
  const safeRaw = r.u8()
  return { clock, resetCount, restartCount, safe: safeRaw === 1, safeRaw }
}

function readAttested(r: Reader, type: number): Attested | undefined {
  switch (type) {
    case TPM_ST_ATTEST.QUOTE: {
      // TPMS_QUOTE_INFO (Part 2 §10.12).
      const pcrSelect = readPcrSelection(r)
      const pcrDigest = r.tpm2b(MAX.DIGEST, 'pcrDigest')
      return { kind: 'quote', pcrSelect, pcrDigest }
    }
    case TPM_ST_ATTEST.CERTIFY: // TPMS_CERTIFY_INFO
      return { kind: 'certify', name: r.tpm2b(MAX.NAME, 'name'), qualifiedName: r.tpm2b(MAX.NAME, 'qualifiedName') }
    case TPM_ST_ATTEST.CREATION: // TPMS_CREATION_INFO
      return { kind: 'creation', objectName: r.tpm2b(MAX.NAME, 'objectName'), creationHash: r.tpm2b(MAX.DIGEST, 'creationHash') }
    case TPM_ST_ATTEST.TIME: {
      // TPMS_TIME_ATTEST_INFO = TPMS_TIME_INFO ‖ firmwareVersion.
      const time = r.u64()
      const clockInfo = readClockInfo(r)
      return { kind: 'time', time, clockInfo, firmwareVersion: r.u64() }
    }
    case TPM_ST_ATTEST.COMMAND_AUDIT: // TPMS_COMMAND_AUDIT_INFO
      return {
        kind: 'command-audit',
        auditCounter: r.u64(),
        digestAlg: r.u16(),
        auditDigest: r.tpm2b(MAX.DIGEST, 'auditDigest'),
        commandDigest: r.tpm2b(MAX.DIGEST, 'commandDigest'),
      }
    case TPM_ST_ATTEST.SESSION_AUDIT: // TPMS_SESSION_AUDIT_INFO
      return { kind: 'session-audit', exclusiveSession: r.u8() === 1, sessionDigest: r.tpm2b(MAX.DIGEST, 'sessionDigest') }
    case TPM_ST_ATTEST.NV: // TPMS_NV_CERTIFY_INFO
      return { kind: 'nv', indexName: r.tpm2b(MAX.NAME, 'indexName'), offset: r.u16(), nvContents: r.tpm2b(MAX_NV_BUFFER, 'nvContents') }
    case TPM_ST_ATTEST.NV_DIGEST: // TPMS_NV_DIGEST_CERTIFY_INFO
      return { kind: 'nv-digest', indexName: r.tpm2b(MAX.NAME, 'indexName'), nvDigest: r.tpm2b(MAX.DIGEST, 'nvDigest') }
    default:
      r.fail('unsupported-type', `TPMS_ATTEST type 0x${type.toString(16)} is not a TPMI_ST_ATTEST value`, 4)
      return undefined
  }
}

/**
 * Decodes a TPMS_ATTEST occupying all of `buf` (as `tpm2_quote -m` writes it and as
 * TPM2B_ATTEST carries it, without the size field).
 */
export function decodeAttest(buf: Uint8Array): Result<TpmsAttest, AttestErrorCode> {
  if (buf.length > MAX.ATTEST) return err('too-large', `TPMS_ATTEST of ${buf.length} bytes exceeds ${MAX.ATTEST}`)
  const r = new Reader(buf)
  const magic = r.u32()
  if (!r.failed && magic !== TPM_GENERATED_VALUE) return err('bad-magic', `magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`, 0)
  const type = r.u16()
  const qualifiedSigner = r.tpm2b(MAX.NAME, 'qualifiedSigner')
  const extraData = r.tpm2b(MAX.DATA, 'extraData')
  const clockInfo = readClockInfo(r)
  const firmwareVersion = r.u64()
  const attested = r.failed ? undefined : readAttested(r, type)
  if (!r.failed && r.remaining !== 0) r.fail('trailing-bytes', `${r.remaining} byte(s) after TPMS_ATTEST`)
  const e = r.error
  if (e !== undefined || attested === undefined) {
    return err((e?.code ?? 'truncated') as AttestErrorCode, e?.message ?? 'truncated', e?.offset)
  }
  return ok({ magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested, raw: r.since(0) })
}

/** TPMT_SIGNATURE decoder failures; unsupported-* are schemes or hashes not accepted here. */
export const SIGNATURE_ERROR_CODES = ['truncated', 'too-large', 'unsupported-scheme', 'unsupported-alg', 'trailing-bytes'] as const
export type SignatureErrorCode = (typeof SIGNATURE_ERROR_CODES)[number]

/** TPMT_SIGNATURE (Part 2 §11.3.4) for the schemes a quote verifier accepts. */
export type TpmtSignature =
  | { readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; readonly hashAlg: number; readonly sig: Buffer }
  | { readonly sigAlg: typeof TPM_ALG.ECDSA; readonly hashAlg: number; readonly r: Buffer; readonly s: Buffer }

/** Decodes a TPMT_SIGNATURE occupying all of `buf` (as `tpm2_quote -s` writes it). */
export function decodeSignature(buf: Uint8Array): Result<TpmtSignature, SignatureErrorCode> {
  if (buf.length > 4 + 2 * (2 + MAX.RSA_KEY_BYTES)) return err('too-large', `TPMT_SIGNATURE of ${buf.length} bytes`)
  const rd = new Reader(buf)
  const sigAlg = rd.u16()
  const hashAlg = rd.u16()
  let out: TpmtSignature | undefined
  if (!rd.failed) {
    if (hashInfo(hashAlg) === undefined) {
      rd.fail('unsupported-alg', `signature hash ${algName(hashAlg)} is not supported`, 2)
    } else if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
      // TPMS_SIGNATURE_RSA (§11.3.1): TPM2B_PUBLIC_KEY_RSA sig.
      out = { sigAlg, hashAlg, sig: rd.tpm2b(MAX.RSA_KEY_BYTES, 'RSA signature') }
    } else if (sigAlg === TPM_ALG.ECDSA) {
      // TPMS_SIGNATURE_ECC (§11.3.2): TPM2B_ECC_PARAMETER signatureR, signatureS.
      out = { sigAlg, hashAlg, r: rd.tpm2b(MAX.ECC_KEY_BYTES, 'ECDSA r'), s: rd.tpm2b(MAX.ECC_KEY_BYTES, 'ECDSA s') }
    } else {
      rd.fail('unsupported-scheme', `signature scheme ${algName(sigAlg)} is not supported`, 0)
    }
  }
  if (!rd.failed && rd.remaining !== 0) rd.fail('trailing-bytes', `${rd.remaining} byte(s) after TPMT_SIGNATURE`)
  const e = rd.error
  if (e !== undefined || out === undefined) return err((e?.code ?? 'truncated') as SignatureErrorCode, e?.message ?? 'truncated', e?.offset)
  return ok(out)
}

function leftPad(b: Buffer, size: number): Buffer | undefined {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  const s = b.subarray(i)
  if (s.length > size) return undefined
  return Buffer.concat([Buffer.alloc(size - s.length), s])
}

export type SignatureCheck = 'ok' | 'scheme-mismatch' | 'bad-signature'

/** One node:crypto verify call: hash name, key with its padding / encoding options, signature bytes. */
interface VerifyCall {
  readonly hash: string
  readonly key: { key: KeyObject; dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number }
  readonly signature: Buffer
}

/**
 * What verifying `sig` takes (RSASSA-PKCS1-v1_5, RSASSA-PSS with any salt length —
 * TPMs differ on it — or ECDSA with r ‖ s as IEEE P1363, each left-padded to the
 * curve size), or the verdict when no verification is needed. A key whose public
 * area names a signing scheme only accepts that scheme and hash (TPMS_RSA_PARMS /
 * TPMS_ECC_PARMS, Part 2 §12.2.3.5-6).
 */
function planSignatureCheck(pub: TpmtPublic, key: KeyObject, sig: TpmtSignature): VerifyCall | Exclude<SignatureCheck, 'ok'> {
  const h = hashInfo(sig.hashAlg)
  if (h === undefined) return 'scheme-mismatch'
  const keyScheme = pub.parameters.scheme
  if (keyScheme.scheme !== TPM_ALG.NULL && (keyScheme.scheme !== sig.sigAlg || keyScheme.hashAlg !== sig.hashAlg)) return 'scheme-mismatch'
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    if (pub.type !== TPM_ALG.ECC) return 'scheme-mismatch'
    const c = curveInfo(pub.parameters.curveID)
    if (c === undefined) return 'scheme-mismatch'
    const r = leftPad(sig.r, c.size)
    const s = leftPad(sig.s, c.size)
    if (r === undefined || s === undefined) return 'bad-signature'
    return { hash: h.name, key: { key, dsaEncoding: 'ieee-p1363' }, signature: Buffer.concat([r, s]) }
  }
  if (pub.type !== TPM_ALG.RSA) return 'scheme-mismatch'
  const padding = sig.sigAlg === TPM_ALG.RSAPSS
    ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
    : { padding: constants.RSA_PKCS1_PADDING }
  return { hash: h.name, key: { key, ...padding }, signature: sig.sig }
}

/** Checks `sig` over `message` with the public key of `pub` (see planSignatureCheck). */
export function verifySignature(pub: TpmtPublic, key: KeyObject, message: Uint8Array, sig: TpmtSignature): SignatureCheck {
  const call = planSignatureCheck(pub, key, sig)
  if (typeof call === 'string') return call
  try {
    return cryptoVerify(call.hash, message, call.key, call.signature) ? 'ok' : 'bad-signature'
  } catch {
    return 'bad-signature'
  }
}

/**
 * verifySignature with ECDSA on the libuv thread pool (node:crypto's callback
 * form), so the event loop keeps serving while the curve arithmetic runs: a P-256
 * verification costs about 70 µs, the trip to the pool and back about 15 µs of
 * event-loop time. An RSA-2048 verification costs about 25 µs, no more than the
 * trip, and is done in place.
 */
export async function verifySignatureAsync(pub: TpmtPublic, key: KeyObject, message: Uint8Array, sig: TpmtSignature): Promise<SignatureCheck> {
  if (sig.sigAlg !== TPM_ALG.ECDSA) return verifySignature(pub, key, message, sig)
  const call = planSignatureCheck(pub, key, sig)
  if (typeof call === 'string') return call
  return await new Promise((resolve) => {
    try {
      cryptoVerify(call.hash, message, call.key, call.signature, (e, good) => resolve(e === null && good ? 'ok' : 'bad-signature'))
    } catch {
      resolve('bad-signature')
    }
  })
}

/**
 * Stable reasons a quote is refused, in the order verifyQuote checks them:
 * bad-ak-public (AK does not decode or import), ak-attributes (AK fails
 * checkAkAttributes), malformed-attest, bad-magic (not TPM_GENERATED_VALUE),
 * wrong-type (not TPM_ST_ATTEST_QUOTE), malformed-signature, scheme-mismatch
 * (signature scheme/hash does not fit the AK), bad-signature, nonce-mismatch,
 * pcr-not-selected (a required PCR is not quoted), pcr-value-missing (a quoted PCR
 * has no claimed value), pcr-digest-mismatch, clock-not-safe, counter-rollback
 * (resetCount/restartCount below the last accepted values).
 */
export type QuoteFailureReason =
  | 'bad-ak-public'
  | 'ak-attributes'
  | 'malformed-attest'
  | 'bad-magic'
  | 'wrong-type'
  | 'malformed-signature'
  | 'scheme-mismatch'
  | 'bad-signature'
  | 'nonce-mismatch'
  | 'pcr-not-selected'
  | 'pcr-value-missing'
  | 'pcr-digest-mismatch'
  | 'clock-not-safe'
  | 'counter-rollback'

export const QUOTE_FAILURE_REASONS: readonly QuoteFailureReason[] = [
  'bad-ak-public',
  'ak-attributes',
  'malformed-attest',
  'bad-magic',
  'wrong-type',
  'malformed-signature',
  'scheme-mismatch',
  'bad-signature',
  'nonce-mismatch',
  'pcr-not-selected',
  'pcr-value-missing',
  'pcr-digest-mismatch',
  'clock-not-safe',
  'counter-rollback',
]

export interface VerifyQuoteInput {
  /** The AK: TPM2B_PUBLIC bytes, or an already decoded public area. */
  readonly akPublic: Uint8Array | TpmtPublic
  /** TPMS_ATTEST bytes as signed. */
  readonly attest: Uint8Array
  /** TPMT_SIGNATURE bytes, or an already decoded signature. */
  readonly signature: Uint8Array | TpmtSignature
  /** The single-use nonce the verifier issued; must equal extraData exactly. */
  readonly expectedNonce: Uint8Array
  /** Claimed PCR values; every selected PCR must be present. */
  readonly pcrs: PcrBanks
  /** PCRs the policy needs, by bank: each must be in the quote's selection. */
  readonly requiredPcrs?: ReadonlyMap<number, readonly number[]>
  /** Refuse clockInfo.safe = NO (default true). */
  readonly requireSafeClock?: boolean
  /** Last accepted counters for this TPM: resetCount/restartCount never decrease. */
  readonly previousCounters?: { readonly resetCount: number; readonly restartCount: number }
  /**
   * The KeyObject for akPublic, when the caller keeps one per AK: importing an EC
   * public key costs node:crypto ≈150 µs (point validation), more than the verify.
   */
  readonly akKey?: KeyObject
  /** Skip the AK attribute policy (checkAkAttributes). Only for keys already vetted. */
  readonly skipAkAttributeCheck?: boolean
}

export type QuoteVerdict =
  | {
      readonly ok: true
      readonly attest: TpmsAttest
      readonly pcrSelect: readonly PcrSelection[]
      readonly pcrDigest: Buffer
      readonly signature: TpmtSignature
    }
  | { readonly ok: false; readonly reason: QuoteFailureReason; readonly message: string; readonly detail?: DecodeError }

function fail(reason: QuoteFailureReason, message: string, detail?: DecodeError): QuoteVerdict {
  return detail === undefined ? { ok: false, reason, message } : { ok: false, reason, message, detail }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A quote decoded and ready for its signature check (what verifyQuote does before and after it). */
type PreparedQuote = { readonly pub: TpmtPublic; readonly key: KeyObject; readonly attest: TpmsAttest; readonly sig: TpmtSignature }

function prepareQuote(input: VerifyQuoteInput): PreparedQuote | QuoteVerdict {
  let pub: TpmtPublic
  if (input.akPublic instanceof Uint8Array) {
    const d = decodeTpm2bPublic(input.akPublic)
    if (!d.ok) return fail('bad-ak-public', `AK public: ${d.error.message}`, d.error)
    pub = d.value
  } else {
    pub = input.akPublic
  }
  if (input.skipAkAttributeCheck !== true) {
    const a = checkAkAttributes(pub)
    if (!a.ok) return fail('ak-attributes', `AK attributes: missing [${a.missing.join(', ')}], forbidden [${a.forbidden.join(', ')}]`)
  }
  const key = input.akKey !== undefined ? { ok: true as const, value: input.akKey } : publicKeyObject(pub)
  if (!key.ok) return fail('bad-ak-public', `AK public: ${key.error.message}`, key.error)

  const at = decodeAttest(input.attest)
  if (!at.ok) {
    if (at.error.code === 'bad-magic') return fail('bad-magic', at.error.message, at.error)
    if (at.error.code === 'unsupported-type') return fail('wrong-type', at.error.message, at.error)
    return fail('malformed-attest', at.error.message, at.error)
  }
  const attest = at.value
  if (attest.type !== TPM_ST_ATTEST.QUOTE || attest.attested.kind !== 'quote') {
    return fail('wrong-type', `TPMS_ATTEST type 0x${attest.type.toString(16)} is not TPM_ST_ATTEST_QUOTE`)
  }

  let sig: TpmtSignature
  if (input.signature instanceof Uint8Array) {
    const s = decodeSignature(input.signature)
    if (!s.ok) return fail('malformed-signature', s.error.message, s.error)
    sig = s.value
  } else {
    sig = input.signature
  }
  return { pub, key: key.value, attest, sig }
}

function afterSignature(input: VerifyQuoteInput, q: PreparedQuote, check: SignatureCheck): QuoteVerdict {
  const { attest, sig } = q
  if (check === 'scheme-mismatch') {
    return fail('scheme-mismatch', `signature ${algName(sig.sigAlg)}/${algName(sig.hashAlg)} does not fit the AK`)
  }
  if (check !== 'ok') return fail('bad-signature', 'signature does not verify with the AK')

  if (!sameBytes(attest.extraData, input.expectedNonce)) return fail('nonce-mismatch', 'extraData is not the expected nonce')

  if (attest.attested.kind !== 'quote') return fail('wrong-type', 'not a quote')
  const { pcrSelect, pcrDigest } = attest.attested
  if (input.requiredPcrs !== undefined) {
    for (const [alg, need] of input.requiredPcrs) {
      const selected = new Set(pcrSelect.filter((s) => s.hashAlg === alg).flatMap((s) => s.pcrs))
      const absent = need.filter((p) => !selected.has(p))
      if (absent.length > 0) return fail('pcr-not-selected', `${algName(alg)} PCR ${absent.join(', ')} not in the quote`)
    }
  }
  const h = hashInfo(sig.hashAlg)!
  const digest = computePcrDigest(h.name, pcrSelect, input.pcrs)
  if (!digest.ok) return fail('pcr-value-missing', digest.error.message)
  if (!sameBytes(digest.value, pcrDigest)) return fail('pcr-digest-mismatch', 'PCR values do not hash to the quoted pcrDigest')

  if ((input.requireSafeClock ?? true) && !attest.clockInfo.safe) return fail('clock-not-safe', 'clockInfo.safe is NO')
  const prev = input.previousCounters
  if (prev !== undefined) {
    const { resetCount, restartCount } = attest.clockInfo
    if (resetCount < prev.resetCount || (resetCount === prev.resetCount && restartCount < prev.restartCount)) {
      return fail('counter-rollback', `resetCount/restartCount ${resetCount}/${restartCount} below ${prev.resetCount}/${prev.restartCount}`)
    }
  }
  return { ok: true, attest, pcrSelect, pcrDigest, signature: sig }
}

function isVerdict(q: PreparedQuote | QuoteVerdict): q is QuoteVerdict {
  return 'ok' in q
}

/**
 * Verifies a TPM2_Quote (Part 3 §18.4): decodes the AK, the TPMS_ATTEST and the
 * signature; requires a quote (magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE);
 * checks the signature over the attest bytes as received; then extraData = nonce,
 * the required PCRs are selected, pcrDigest = H_sigHash(selected PCR values),
 * clockInfo.safe and counter monotonicity. Never throws.
 */
export function verifyQuote(input: VerifyQuoteInput): QuoteVerdict {
  const q = prepareQuote(input)
  if (isVerdict(q)) return q
  return afterSignature(input, q, verifySignature(q.pub, q.key, q.attest.raw, q.sig))
}

/** verifyQuote with the signature checked on the libuv thread pool (verifySignatureAsync). Never rejects. */
export async function verifyQuoteAsync(input: VerifyQuoteInput): Promise<QuoteVerdict> {
  const q = prepareQuote(input)
  if (isVerdict(q)) return q
  return afterSignature(input, q, await verifySignatureAsync(q.pub, q.key, q.attest.raw, q.sig))
}
