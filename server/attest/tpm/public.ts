/**
 * TPM2B_PUBLIC / TPMT_PUBLIC decoding (TPM 2.0 Library Part 2 §12.2), conversion of
 * RSA and ECC public areas to node:crypto KeyObjects, the object Name (Part 1 §16)
 * and the attribute checks the verifier applies to attestation keys.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import { MAX, TPM_ALG, algName, curveInfo, hashInfo } from './alg.js'
import { Reader, err, ok, type Result } from './marshal.js'

/**
 * Decoder and key-conversion failures: truncated (input ends inside a field),
 * too-large (a size above the type's bound), size-mismatch (TPM2B_PUBLIC size ≠
 * bytes that follow), trailing-bytes, unsupported-type / -alg / -scheme / -curve
 * (valid TPM values this verifier does not accept), bad-key (node:crypto refuses
 * the key, or the modulus/point does not fit its parameters).
 */
export const PUBLIC_ERROR_CODES = [
  'truncated',
  'too-large',
  'size-mismatch',
  'trailing-bytes',
  'unsupported-type',
  'unsupported-alg',
  'unsupported-scheme',
  'unsupported-curve',
  'bad-key',
] as const
export type PublicErrorCode = (typeof PUBLIC_ERROR_CODES)[number]

/** TPMA_OBJECT bits (Part 2 §8.3.2, Table 31). */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
  x509sign: 0x00080000,
} as const

export type ObjectAttributeName = keyof typeof TPMA_OBJECT
export type ObjectAttributes = { readonly [K in ObjectAttributeName]: boolean }

export function decodeObjectAttributes(bits: number): ObjectAttributes {
  const out = {} as { [K in ObjectAttributeName]: boolean }
  for (const [k, v] of Object.entries(TPMA_OBJECT) as [ObjectAttributeName, number][]) out[k] = (bits & v) !== 0
  return out
}

/** TPMT_SYM_DEF_OBJECT (Part 2 §11.1.7): `algorithm` is NULL for none. */
export interface SymDefObject {
  readonly algorithm: number
  readonly keyBits: number
  readonly mode: number
}

/** A TPMT_*_SCHEME / TPMT_KDF_SCHEME: `scheme` NULL means none. */
export interface Scheme {
  readonly scheme: number
  readonly hashAlg: number
  /** TPMS_SCHEME_ECDAA.count; 0 otherwise. */
  readonly count: number
}

export interface RsaParameters {
  readonly symmetric: SymDefObject
  readonly scheme: Scheme
  readonly keyBits: number
  /** The exponent as stored; 0 means the default 65537 (Part 2 §12.2.3.5). */
  readonly exponent: number
}

export interface EccParameters {
  readonly symmetric: SymDefObject
  readonly scheme: Scheme
  readonly curveID: number
  readonly kdf: Scheme
}

interface PublicCommon {
  readonly nameAlg: number
  readonly objectAttributes: number
  readonly attributes: ObjectAttributes
  readonly authPolicy: Buffer
  /** The TPMT_PUBLIC bytes exactly as received (what the Name hashes). */
  readonly raw: Buffer
}

export interface RsaPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.RSA
  readonly parameters: RsaParameters
  /** TPM2B_PUBLIC_KEY_RSA: the modulus, big-endian. */
  readonly unique: { readonly n: Buffer }
}

export interface EccPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.ECC
  readonly parameters: EccParameters
  /** TPMS_ECC_POINT with coordinates as received. */
  readonly unique: { readonly x: Buffer; readonly y: Buffer }
}

export type TpmtPublic = RsaPublic | EccPublic

/** TPMT_SYM_DEF_OBJECT (Part 2 §11.1.7). */
export function readSymDefObject(r: Reader): SymDefObject {
  const algorithm = r.u16()
  if (algorithm === TPM_ALG.NULL || r.failed) return { algorithm, keyBits: 0, mode: TPM_ALG.NULL }
  if (algorithm === TPM_ALG.XOR) {
    // TPMU_SYM_KEY_BITS.xor is a hash id; TPMU_SYM_MODE.xor is empty (Part 2 §11.1.3-4).
    return { algorithm, keyBits: r.u16(), mode: TPM_ALG.NULL }
  }
  const keyBits = r.u16()
  const mode = r.u16()
  return { algorithm, keyBits, mode }
}

const SCHEMES_WITH_HASH: ReadonlySet<number> = new Set([
  TPM_ALG.HMAC,
  TPM_ALG.MGF1,
  TPM_ALG.RSASSA,
  TPM_ALG.RSAPSS,
  TPM_ALG.OAEP,
  TPM_ALG.ECDSA,
  TPM_ALG.ECDH,
  TPM_ALG.SM2,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.ECMQV,
  TPM_ALG.KDF1_SP800_56A,
  TPM_ALG.KDF2,
  TPM_ALG.KDF1_SP800_108,
])

/**
 * TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME (Part 2 §11.2.3-11.2.5): the
 * details union holds a hashAlg for every scheme except RSAES (empty) and ECDAA
 * (hashAlg ‖ count).
 */
export function readScheme(r: Reader): Scheme {
  const scheme = r.u16()
  if (r.failed || scheme === TPM_ALG.NULL || scheme === TPM_ALG.RSAES) return { scheme, hashAlg: TPM_ALG.NULL, count: 0 }
  if (scheme === TPM_ALG.ECDAA) return { scheme, hashAlg: r.u16(), count: r.u16() }
  if (SCHEMES_WITH_HASH.has(scheme)) return { scheme, hashAlg: r.u16(), count: 0 }
  r.fail('unsupported-scheme', `scheme ${algName(scheme)} is not supported`, r.offset - 2)
  return { scheme, hashAlg: TPM_ALG.NULL, count: 0 }
}

/**
 * Decodes a TPMT_PUBLIC (Part 2 §12.2.4) from the reader's position. Only RSA and ECC
 * objects are accepted; everything else is `unsupported-type`.
 */
export function readTpmtPublic(r: Reader): TpmtPublic | undefined {
  const start = r.offset
  const type = r.u16()
  const nameAlg = r.u16()
  const objectAttributes = r.u32()
  const authPolicy = r.tpm2b(MAX.DIGEST, 'authPolicy')
  if (r.failed) return undefined
  if (nameAlg !== TPM_ALG.NULL && hashInfo(nameAlg) === undefined) {
    r.fail('unsupported-alg', `nameAlg ${algName(nameAlg)} is not supported`, start + 2)
    return undefined
  }
  const common = { nameAlg, objectAttributes, attributes: decodeObjectAttributes(objectAttributes), authPolicy }
  if (type === TPM_ALG.RSA) {
    // TPMS_RSA_PARMS (Part 2 §12.2.3.5) then TPM2B_PUBLIC_KEY_RSA (§11.2.4.5).
    const symmetric = readSymDefObject(r)
    const scheme = readScheme(r)
    const keyBits = r.u16()
    const exponent = r.u32()
    const n = r.tpm2b(MAX.RSA_KEY_BYTES, 'RSA modulus')
    if (r.failed) return undefined
    return { type: TPM_ALG.RSA, ...common, parameters: { symmetric, scheme, keyBits, exponent }, unique: { n }, raw: r.since(start) }
  }
  if (type === TPM_ALG.ECC) {
    // TPMS_ECC_PARMS (Part 2 §12.2.3.6) then TPMS_ECC_POINT (§11.2.5.2).
    const symmetric = readSymDefObject(r)
    const scheme = readScheme(r)
    const curveID = r.u16()
    const kdf = readScheme(r)
    const x = r.tpm2b(MAX.ECC_KEY_BYTES, 'ECC x')
    const y = r.tpm2b(MAX.ECC_KEY_BYTES, 'ECC y')
    if (r.failed) return undefined
    return { type: TPM_ALG.ECC, ...common, parameters: { symmetric, scheme, curveID, kdf }, unique: { x, y }, raw: r.since(start) }
  }
  r.fail('unsupported-type', `object type ${algName(type)} is not supported`, start)
  return undefined
}

function fromReader<T>(r: Reader, v: T | undefined): Result<T, PublicErrorCode> {
  const e = r.error
  if (e !== undefined || v === undefined) {
    return err((e?.code ?? 'truncated') as PublicErrorCode, e?.message ?? 'decode failed', e?.offset)
  }
  return ok(v)
}

/** Decodes a bare TPMT_PUBLIC occupying all of `buf`. */
export function decodeTpmtPublic(buf: Uint8Array): Result<TpmtPublic, PublicErrorCode> {
  if (buf.length > MAX.PUBLIC) return err('too-large', `TPMT_PUBLIC of ${buf.length} bytes exceeds ${MAX.PUBLIC}`)
  const r = new Reader(buf)
  const v = readTpmtPublic(r)
  if (!r.failed && r.remaining !== 0) r.fail('trailing-bytes', `${r.remaining} byte(s) after TPMT_PUBLIC`)
  return fromReader(r, v)
}

/**
 * Decodes a TPM2B_PUBLIC (Part 2 §12.2.5) occupying all of `buf`: the size field must
 * equal the length of the TPMT_PUBLIC that follows.
 */
export function decodeTpm2bPublic(buf: Uint8Array): Result<TpmtPublic, PublicErrorCode> {
  if (buf.length > MAX.PUBLIC + 2) return err('too-large', `TPM2B_PUBLIC of ${buf.length} bytes exceeds ${MAX.PUBLIC + 2}`)
  const r = new Reader(buf)
  const size = r.u16()
  if (r.failed) return fromReader<TpmtPublic>(r, undefined)
  if (size > MAX.PUBLIC) return err('too-large', `TPM2B_PUBLIC size ${size} exceeds ${MAX.PUBLIC}`, 0)
  if (size !== r.remaining) {
    return err(size > r.remaining ? 'truncated' : 'size-mismatch', `TPM2B_PUBLIC size ${size} but ${r.remaining} byte(s) follow`, 0)
  }
  return decodeTpmtPublic(r.rest())
}

/**
 * The object's Name (Part 1 §16): nameAlg ‖ H_nameAlg(TPMT_PUBLIC), hashing the
 * received bytes, never a re-encoding. A NULL nameAlg has no digest Name (Part 1 §16
 * only defines handle Names for those) and is reported as `unsupported-alg`.
 */
export function computeName(pub: TpmtPublic): Result<Buffer, PublicErrorCode> {
  const h = hashInfo(pub.nameAlg)
  if (h === undefined) return err('unsupported-alg', `nameAlg ${algName(pub.nameAlg)} has no Name digest`)
  const alg = Buffer.alloc(2)
  alg.writeUInt16BE(pub.nameAlg)
  return ok(Buffer.concat([alg, createHash(h.name).update(pub.raw).digest()]))
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url')
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  return b.subarray(i)
}

function leftPad(b: Buffer, size: number): Buffer | undefined {
  const s = stripLeadingZeros(b)
  if (s.length > size) return undefined
  if (s.length === size) return s
  return Buffer.concat([Buffer.alloc(size - s.length), s])
}

/**
 * Builds a node:crypto public KeyObject from an RSA or ECC public area (via JWK).
 * RSA: the modulus must be keyBits/8 bytes. ECC: the curve must be a NIST curve node
 * supports and the point must be on it (node:crypto checks this on import).
 */
export function publicKeyObject(pub: TpmtPublic): Result<KeyObject, PublicErrorCode> {
  try {
    if (pub.type === TPM_ALG.RSA) {
      const { keyBits, exponent } = pub.parameters
      if (keyBits < 1024 || keyBits > MAX.RSA_KEY_BYTES * 8 || keyBits % 8 !== 0 || pub.unique.n.length !== keyBits / 8) {
        return err('bad-key', `RSA modulus of ${pub.unique.n.length} byte(s) for keyBits ${keyBits}`)
      }
      if ((pub.unique.n[0] ?? 0) < 0x80) return err('bad-key', 'RSA modulus is shorter than keyBits')
      const e = exponent === 0 ? 65537 : exponent
      if (e < 3 || e % 2 === 0) return err('bad-key', `RSA exponent ${e}`)
      const eb = Buffer.alloc(4)
      eb.writeUInt32BE(e)
      const key = createPublicKey({ key: { kty: 'RSA', n: b64url(pub.unique.n), e: b64url(stripLeadingZeros(eb)) }, format: 'jwk' })
      return ok(key)
    }
    const c = curveInfo(pub.parameters.curveID)
    if (c === undefined) return err('unsupported-curve', `curve 0x${pub.parameters.curveID.toString(16)} is not supported`)
    const x = leftPad(pub.unique.x, c.size)
    const y = leftPad(pub.unique.y, c.size)
    if (x === undefined || y === undefined) return err('bad-key', `ECC coordinate longer than ${c.size} bytes`)
    const key = createPublicKey({ key: { kty: 'EC', crv: c.jwk, x: b64url(x), y: b64url(y) }, format: 'jwk' })
    return ok(key)
  } catch (e) {
    return err('bad-key', `public key rejected by node:crypto: ${(e as Error).message}`)
  }
}

/** Attributes an attestation key must have (TPMA_OBJECT semantics: Part 2 §8.3.3). */
export const AK_REQUIRED: readonly ObjectAttributeName[] = [
  'fixedTPM',
  'fixedParent',
  'sensitiveDataOrigin',
  'userWithAuth',
  'restricted',
  'sign',
]
/** Attributes an attestation key must not have. */
export const AK_FORBIDDEN: readonly ObjectAttributeName[] = ['decrypt']

export type AkAttributeVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly missing: readonly ObjectAttributeName[]; readonly forbidden: readonly ObjectAttributeName[] }

/**
 * AK attribute policy: a restricted signing key (Part 2 §8.3.3: a restricted signing
 * key refuses to sign external data that starts with TPM_GENERATED_VALUE, so what it
 * signs with that magic was produced by the TPM) that cannot leave this TPM (fixedTPM, fixedParent), whose
 * private part the TPM generated (sensitiveDataOrigin), usable with its auth value
 * (userWithAuth), and not a decryption key.
 */
export function checkAkAttributes(pub: TpmtPublic): AkAttributeVerdict {
  const missing = AK_REQUIRED.filter((a) => !pub.attributes[a])
  const forbidden = AK_FORBIDDEN.filter((a) => pub.attributes[a])
  return missing.length === 0 && forbidden.length === 0 ? { ok: true } : { ok: false, missing, forbidden }
}

/** Names of the set attribute bits, in bit order, plus any unnamed bits as hex. */
export function attributeNames(bits: number): string[] {
  const names: string[] = []
  let known = 0
  for (const [k, v] of Object.entries(TPMA_OBJECT)) {
    known |= v
    if ((bits & v) !== 0) names.push(k)
  }
  const unknown = (bits & ~known) >>> 0
  if (unknown !== 0) names.push(`0x${unknown.toString(16)}`)
  return names
}
