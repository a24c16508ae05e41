/**
 * Symbolic names for TSS2_RC response codes (TCG TSS 2.0 Overview §6.1.2 "Return
 * Code Layers"; TPM 2.0 Library Part 2 §6.6 "TPM_RC"), so that an error reads
 * `Esys_Quote: TPM2_RC_HANDLE (handle 1)` instead of a number. Pure: no addon.
 */

/** Layer numbers in bits 16-23 of a TSS2_RC (tss2_common.h TSS2_*_RC_LAYER). */
const LAYERS: Readonly<Record<number, string>> = {
  0: 'TPM',
  6: 'FEATURE',
  7: 'ESYS',
  8: 'SYS',
  9: 'MU',
  10: 'TCTI',
  11: 'RESMGR',
  12: 'RESMGR_TPM',
}

/** Format-zero, version-1 codes: TPM2_RC_VER1 + n (Part 2 §6.6.3 Table 16). */
const VER1: Readonly<Record<number, string>> = {
  0x00: 'INITIALIZE', 0x01: 'FAILURE', 0x03: 'SEQUENCE', 0x0b: 'PRIVATE', 0x19: 'HMAC', 0x20: 'DISABLED',
  0x21: 'EXCLUSIVE', 0x24: 'AUTH_TYPE', 0x25: 'AUTH_MISSING', 0x26: 'POLICY', 0x27: 'PCR', 0x28: 'PCR_CHANGED',
  0x2d: 'UPGRADE', 0x2e: 'TOO_MANY_CONTEXTS', 0x2f: 'AUTH_UNAVAILABLE', 0x30: 'REBOOT', 0x31: 'UNBALANCED',
  0x42: 'COMMAND_SIZE', 0x43: 'COMMAND_CODE', 0x44: 'AUTHSIZE', 0x45: 'AUTH_CONTEXT', 0x46: 'NV_RANGE',
  0x47: 'NV_SIZE', 0x48: 'NV_LOCKED', 0x49: 'NV_AUTHORIZATION', 0x4a: 'NV_UNINITIALIZED', 0x4b: 'NV_SPACE',
  0x4c: 'NV_DEFINED', 0x50: 'BAD_CONTEXT', 0x51: 'CPHASH', 0x52: 'PARENT', 0x53: 'NEEDS_TEST', 0x54: 'NO_RESULT',
  0x55: 'SENSITIVE', 0x7f: 'MAX_FM0',
}

/** Format-one codes: TPM2_RC_FMT1 + n, n in bits 0-5 (Part 2 §6.6.3 Table 16). */
const FMT1: Readonly<Record<number, string>> = {
  0x01: 'ASYMMETRIC', 0x02: 'ATTRIBUTES', 0x03: 'HASH', 0x04: 'VALUE', 0x05: 'HIERARCHY', 0x07: 'KEY_SIZE',
  0x08: 'MGF', 0x09: 'MODE', 0x0a: 'TYPE', 0x0b: 'HANDLE', 0x0c: 'KDF', 0x0d: 'RANGE', 0x0e: 'AUTH_FAIL',
  0x0f: 'NONCE', 0x10: 'PP', 0x12: 'SCHEME', 0x15: 'SIZE', 0x16: 'SYMMETRIC', 0x17: 'TAG', 0x18: 'SELECTOR',
  0x1a: 'INSUFFICIENT', 0x1b: 'SIGNATURE', 0x1c: 'KEY', 0x1d: 'POLICY_FAIL', 0x1f: 'INTEGRITY', 0x20: 'TICKET',
  0x21: 'RESERVED_BITS', 0x22: 'BAD_AUTH', 0x23: 'EXPIRED', 0x24: 'POLICY_CC', 0x25: 'BINDING', 0x26: 'CURVE',
  0x27: 'ECC_POINT',
}

/** Warnings: TPM2_RC_WARN + n (Part 2 §6.6.3 Table 16). */
const WARN: Readonly<Record<number, string>> = {
  0x01: 'CONTEXT_GAP', 0x02: 'OBJECT_MEMORY', 0x03: 'SESSION_MEMORY', 0x04: 'MEMORY', 0x05: 'SESSION_HANDLES',
  0x06: 'OBJECT_HANDLES', 0x07: 'LOCALITY', 0x08: 'YIELDED', 0x09: 'CANCELED', 0x0a: 'TESTING',
  0x10: 'REFERENCE_H0', 0x11: 'REFERENCE_H1', 0x12: 'REFERENCE_H2', 0x13: 'REFERENCE_H3', 0x14: 'REFERENCE_H4',
  0x15: 'REFERENCE_H5', 0x16: 'REFERENCE_H6', 0x18: 'REFERENCE_S0', 0x19: 'REFERENCE_S1', 0x1a: 'REFERENCE_S2',
  0x1b: 'REFERENCE_S3', 0x1c: 'REFERENCE_S4', 0x1d: 'REFERENCE_S5', 0x1e: 'REFERENCE_S6', 0x20: 'NV_RATE',
  0x21: 'LOCKOUT', 0x22: 'RETRY', 0x23: 'NV_UNAVAILABLE', 0x7f: 'NOT_USED',
}

/** TSS2_BASE_RC_* (tss2_common.h): the low 16 bits of codes from the TSS's own layers. */
const TSS_BASE: readonly string[] = [
  'SUCCESS', 'GENERAL_FAILURE', 'NOT_IMPLEMENTED', 'BAD_CONTEXT', 'ABI_MISMATCH', 'BAD_REFERENCE',
  'INSUFFICIENT_BUFFER', 'BAD_SEQUENCE', 'NO_CONNECTION', 'TRY_AGAIN', 'IO_ERROR', 'BAD_VALUE', 'NOT_PERMITTED',
  'INVALID_SESSIONS', 'NO_DECRYPT_PARAM', 'NO_ENCRYPT_PARAM', 'BAD_SIZE', 'MALFORMED_RESPONSE',
  'INSUFFICIENT_CONTEXT', 'INSUFFICIENT_RESPONSE', 'INCOMPATIBLE_TCTI', 'NOT_SUPPORTED', 'BAD_TCTI_STRUCTURE',
  'MEMORY', 'BAD_TR', 'MULTIPLE_DECRYPT_SESSIONS', 'MULTIPLE_ENCRYPT_SESSIONS', 'RSP_AUTH_FAILED', 'NO_CONFIG',
  'BAD_PATH', 'NOT_DELETABLE', 'PATH_ALREADY_EXISTS', 'KEY_NOT_FOUND', 'SIGNATURE_VERIFICATION_FAILED',
  'HASH_MISMATCH', 'KEY_NOT_DUPLICABLE', 'PATH_NOT_FOUND', 'NO_CERT', 'NO_PCR', 'PCR_NOT_RESETTABLE',
  'BAD_TEMPLATE', 'AUTHORIZATION_FAILED', 'AUTHORIZATION_UNKNOWN', 'NV_NOT_READABLE', 'NV_TOO_SMALL',
  'NV_NOT_WRITEABLE', 'POLICY_UNKNOWN', 'NV_WRONG_TYPE', 'NAME_ALREADY_EXISTS', 'NO_TPM', 'BAD_KEY', 'NO_HANDLE',
  'NOT_PROVISIONED', 'ALREADY_PROVISIONED',
]

export interface RcDescription {
  /** Layer name (TPM, ESYS, TCTI, …) or `LAYER_n` for an unknown layer. */
  readonly layer: string
  /** Symbolic name: `TPM2_RC_INTEGRITY`, `TSS2_ESYS_RC_BAD_TR`, or `0x…` when unknown. */
  readonly name: string
  /**
   * For format-one TPM codes, what the code refers to (Part 2 §6.6.3: bit 6 set →
   * parameter N, else N ≥ 8 → session N-8, else handle N; N = 0 means unspecified).
   */
  readonly position?: string
}

function hex(n: number, width = 8): string {
  return `0x${(n >>> 0).toString(16).padStart(width, '0')}`
}

/** Decodes a TPM response code (the low 16 bits of a TPM-layer TSS2_RC). */
function describeTpm(low: number): { name: string; position?: string } {
  if ((low & 0x80) !== 0) {
    const base = FMT1[low & 0x3f]
    const n = (low >> 8) & 0xf
    const name = base !== undefined ? `TPM2_RC_${base}` : hex(0x80 | (low & 0x3f), 3)
    if (n === 0) return { name }
    if ((low & 0x40) !== 0) return { name, position: `parameter ${n}` }
    return { name, position: n >= 8 ? `session ${n - 8}` : `handle ${n}` }
  }
  if ((low & 0x100) === 0) return { name: `TPM 1.2 response ${hex(low, 4)}` }
  const table = (low & 0x800) !== 0 ? WARN : VER1
  const base = table[low & 0x7f]
  return { name: base !== undefined ? `TPM2_RC_${base}` : hex(low, 4) }
}

/** Names a TSS2_RC as tpm2-tss spells the constant (tss2_common.h, tss2_tpm2_types.h). */
export function describeRc(rc: number): RcDescription {
  const layerNo = (rc >>> 16) & 0xff
  const layer = LAYERS[layerNo] ?? `LAYER_${layerNo}`
  const low = rc & 0xffff
  if (rc >>> 0 === 0) return { layer, name: 'TPM2_RC_SUCCESS' }
  if (layerNo === 0 || layerNo === 12) return { layer, ...describeTpm(low) }
  const base = TSS_BASE[low]
  const prefix = layerNo === 6 ? 'TSS2_FAPI_RC_' : `TSS2_${layer}_RC_`
  return { layer, name: base !== undefined ? `${prefix}${base}` : hex(rc) }
}

/** `TPM2_RC_SIZE (parameter 2)`, `TSS2_TCTI_RC_IO_ERROR`. */
export function rcName(rc: number): string {
  const d = describeRc(rc)
  return d.position !== undefined ? `${d.name} (${d.position})` : d.name
}
