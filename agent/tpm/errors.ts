/**
 * The agent's TPM error catalogue. Every failure of agent/tpm is a TpmError whose
 * `code` is stable: either one of TPM_ERROR_CODES, or — for a failure the TPM or
 * the TSS reported — the TSS2_RC as `0x%08x`, with the ESAPI command, the
 * symbolic name (rc.ts) and Tss2_RC_Decode's text alongside. Bad arguments are
 * TypeErrors with code ERR_INVALID_ARG_VALUE, as in Node's own APIs.
 */
import { rcName } from './rc.js'

/** Codes that are not TSS2_RCs, each with when it happens. */
export const TPM_ERROR_CODES = {
  ERR_TPM_ADDON_NOT_BUILT: 'the native addon (agent/tpm/build/Release/netboot_tpm.node) is missing or does not load: run `npm run build:agent`',
  ERR_TPM_CLOSED: 'the Tpm was closed, or close() was called before this operation ran',
  ERR_TPM_NO_AK: 'quote() or activateCredential() before createAk() succeeded',
  ERR_TPM_BUSY: 'a second native call on one TPM handle while one is in flight (the Tpm class queues calls; only direct addon use sees this)',
  ERR_TPM_PCR_UNAVAILABLE: 'TPM2_PCR_Read returned no value for a requested PCR: that bank is not allocated on this TPM',
  ERR_TPM_PCR_CHANGING: 'PCRs changed between the chunks of one pcrRead() five times in a row',
  ERR_TPM_BAD_RESPONSE: 'the TPM answered with something the TPM 2.0 specification does not allow (short NV read, empty GetRandom, PCR digest of the wrong size)',
  ERR_TPM_NV_UNREADABLE: 'the EK certificate NV index can be read neither with its own auth nor with the owner hierarchy',
  ERR_TPM_EK_CERT_MALFORMED: 'the EK certificate NV index does not hold a complete DER certificate',
  ERR_TPM_NO_MEMORY: 'the addon could not allocate memory',
  ERR_TPM_NAPI: 'an N-API call failed while queueing an operation or building its result',
  ERR_TPM_CANCELLED: 'libuv cancelled the work item before it ran',
  ERR_INVALID_ARG_VALUE: 'an argument is out of range or of the wrong type (a TypeError)',
} as const

export type TpmErrorCode = keyof typeof TPM_ERROR_CODES

/** A TSS2_RC code string: `0x` and eight hex digits. */
export const RC_CODE = /^0x[0-9a-f]{8}$/

export interface TpmErrorDetail {
  /** The TSS2_RC when the TPM or the TSS reported the failure. */
  readonly rc?: number
  /** The ESAPI (or TCTI loader) function that returned `rc`: `Esys_Quote`. */
  readonly command?: string
  /** Symbolic name and position: `TPM2_RC_INTEGRITY (parameter 1)`. */
  readonly rcName?: string
  /** Tss2_RC_Decode's text: `tpm:parameter(1):integrity check failed`. */
  readonly rcText?: string
  readonly cause?: unknown
}

export class TpmError extends Error {
  override readonly name = 'TpmError'
  /** A TpmErrorCode, or the TSS2_RC as `0x%08x`. */
  readonly code: TpmErrorCode | `0x${string}`
  readonly rc?: number
  readonly command?: string
  readonly rcName?: string
  readonly rcText?: string

  constructor (code: TpmErrorCode | `0x${string}`, message: string, detail: TpmErrorDetail = {}) {
    super(message, detail.cause !== undefined ? { cause: detail.cause } : undefined)
    this.code = code
    if (detail.rc !== undefined) this.rc = detail.rc
    if (detail.command !== undefined) this.command = detail.command
    if (detail.rcName !== undefined) this.rcName = detail.rcName
    if (detail.rcText !== undefined) this.rcText = detail.rcText
  }
}

interface NativeError {
  code?: unknown
  message?: unknown
  rc?: unknown
  command?: unknown
  rcText?: unknown
}

/**
 * Converts what the addon threw or rejected with into a TpmError (or passes a
 * TypeError for bad arguments through). `op` names the wrapper method.
 */
export function fromNative (op: string, e: unknown): Error {
  if (e instanceof TpmError) return e
  if (e instanceof TypeError) return e
  const n = (typeof e === 'object' && e !== null ? e : {}) as NativeError
  const message = typeof n.message === 'string' ? n.message : String(e)
  if (typeof n.rc === 'number' && typeof n.command === 'string') {
    const name = rcName(n.rc)
    const text = typeof n.rcText === 'string' ? n.rcText : ''
    const code = `0x${(n.rc >>> 0).toString(16).padStart(8, '0')}` as const
    return new TpmError(code, `${n.command}: ${name}: ${text} (${code}) in ${op}()`, {
      rc: n.rc,
      command: n.command,
      rcName: name,
      rcText: text,
      cause: e,
    })
  }
  if (typeof n.code === 'string' && n.code in TPM_ERROR_CODES) {
    return new TpmError(n.code as TpmErrorCode, `${op}(): ${message}`, { cause: e })
  }
  return e instanceof Error ? e : new Error(message)
}
