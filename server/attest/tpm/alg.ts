/**
 * TPM 2.0 algorithm, curve and structure-tag constants (TPM 2.0 Library Part 2
 * §6.3 TPM_ALG_ID, §6.4 TPM_ECC_CURVE, §6.9 TPM_ST, §6.2 TPM_GENERATED) and the
 * mapping of hash algorithms onto node:crypto names.
 */

export const TPM_ALG = {
  ERROR: 0x0000,
  RSA: 0x0001,
  TDES: 0x0003,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  SHA3_256: 0x0027,
  SHA3_384: 0x0028,
  SHA3_512: 0x0029,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const

/** TPM_GENERATED_VALUE (Part 2 §6.2): first field of every TPMS_ATTEST. */
export const TPM_GENERATED_VALUE = 0xff544347

/** TPMI_ST_ATTEST values (Part 2 §6.9 TPM_ST, §10.12.10). */
export const TPM_ST_ATTEST = {
  NV: 0x8014,
  COMMAND_AUDIT: 0x8015,
  SESSION_AUDIT: 0x8016,
  CERTIFY: 0x8017,
  QUOTE: 0x8018,
  TIME: 0x8019,
  CREATION: 0x801a,
  NV_DIGEST: 0x801c,
} as const

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'sha3-256' | 'sha3-384' | 'sha3-512'

export interface HashInfo {
  readonly alg: number
  readonly name: HashName
  readonly size: number
}

const HASHES: ReadonlyMap<number, HashInfo> = new Map<number, HashInfo>([
  [TPM_ALG.SHA1, { alg: TPM_ALG.SHA1, name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { alg: TPM_ALG.SHA256, name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { alg: TPM_ALG.SHA384, name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { alg: TPM_ALG.SHA512, name: 'sha512', size: 64 }],
  [TPM_ALG.SHA3_256, { alg: TPM_ALG.SHA3_256, name: 'sha3-256', size: 32 }],
  [TPM_ALG.SHA3_384, { alg: TPM_ALG.SHA3_384, name: 'sha3-384', size: 48 }],
  [TPM_ALG.SHA3_512, { alg: TPM_ALG.SHA3_512, name: 'sha3-512', size: 64 }],
])

/** Hash algorithms this verifier can compute, by TPM_ALG_ID; undefined otherwise. */
export function hashInfo(alg: number): HashInfo | undefined {
  return HASHES.get(alg)
}

/** TPM_ECC_CURVE (Part 2 §6.4) for the NIST curves node:crypto supports. */
export const TPM_ECC = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const

export interface CurveInfo {
  readonly id: number
  /** JWK `crv`. */
  readonly jwk: 'P-256' | 'P-384' | 'P-521'
  /** OpenSSL curve name for node:crypto key generation. */
  readonly openssl: 'prime256v1' | 'secp384r1' | 'secp521r1'
  /** Field element size in bytes. */
  readonly size: number
}

const CURVES: ReadonlyMap<number, CurveInfo> = new Map<number, CurveInfo>([
  [TPM_ECC.NIST_P256, { id: TPM_ECC.NIST_P256, jwk: 'P-256', openssl: 'prime256v1', size: 32 }],
  [TPM_ECC.NIST_P384, { id: TPM_ECC.NIST_P384, jwk: 'P-384', openssl: 'secp384r1', size: 48 }],
  [TPM_ECC.NIST_P521, { id: TPM_ECC.NIST_P521, jwk: 'P-521', openssl: 'secp521r1', size: 66 }],
])

export function curveInfo(id: number): CurveInfo | undefined {
  return CURVES.get(id)
}

const ALG_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(TPM_ALG).map(([k, v]) => [v as number, k.toLowerCase()]),
)

/** Lower-case TPM_ALG name (e.g. `sha256`), or `0x….` for an unknown id. */
export function algName(alg: number): string {
  return ALG_NAMES.get(alg) ?? `0x${alg.toString(16).padStart(4, '0')}`
}

/** Size bounds from Part 2 for a TPM with 4096-bit RSA and P-521 at most. */
export const MAX = {
  /** sizeof(TPMU_HA): the largest digest (SHA-512). */
  DIGEST: 64,
  /** sizeof(TPMU_NAME): a TPMT_HA or a TPM_HANDLE. */
  NAME: 66,
  /** sizeof(TPMT_HA), the bound of TPM2B_DATA. */
  DATA: 66,
  /** MAX_RSA_KEY_BYTES for 4096-bit keys (TPM2B_PUBLIC_KEY_RSA). */
  RSA_KEY_BYTES: 512,
  /** MAX_ECC_KEY_BYTES (TPM2B_ECC_PARAMETER); P-521 needs 66. */
  ECC_KEY_BYTES: 66,
  /** sizeof(TPMT_PUBLIC) upper bound used for TPM2B_PUBLIC. */
  PUBLIC: 1024,
  /** TPM2B_ATTEST bound used for TPMS_ATTEST input. */
  ATTEST: 2048,
  /** sizeof(TPMU_ENCRYPTED_SECRET). */
  ENCRYPTED_SECRET: 512,
  /** sizeof(TPMS_ID_OBJECT) = TPM2B_DIGEST ‖ TPM2B_DIGEST. */
  ID_OBJECT: 2 + 64 + 2 + 64,
  /** TPML_PCR_SELECTION.count bound (HASH_COUNT on real TPMs is ≤ 5). */
  PCR_BANKS: 16,
  /** TPMS_PCR_SELECTION.sizeofSelect bound (PCR_SELECT_MAX; 8 covers 64 PCRs). */
  PCR_SELECT: 8,
} as const
