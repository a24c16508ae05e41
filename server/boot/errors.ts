/**
 * Errors of boot-script rendering and kernel command-line composition. Codes are
 * stable and meant for the netboot error catalogue (server/errors.ts); until they
 * are listed there this class mirrors NetbootError's shape (`code`, `status`,
 * `details`, `toJSON`). Recognise it by `code`, never by message text.
 */

export const BOOT_ERROR_STATUS = {
  /** Admin-supplied kernel parameters contain a token netboot refuses (see cmdline.ts). */
  BOOT_PARAMS_INVALID: 400,
  /** A value bound for an iPXE script is not safe to interpolate (see ipxe-value.ts). */
  BOOT_VALUE_INVALID: 400,
  /** An iPXE template file is malformed or uses a field its script does not define. */
  BOOT_TEMPLATE_INVALID: 500,
} as const

export type BootErrorCode = keyof typeof BOOT_ERROR_STATUS

export interface BootErrorDetail {
  /** Which input: a parameter layer (`node:n01`), a script field (`kernel`), a template line. */
  readonly where?: string
  readonly message: string
}

export class BootError extends Error {
  override readonly name = 'BootError'
  readonly status: number
  /** Read by fastify's error mapping (server/http/common.ts) while the code is not catalogued. */
  readonly statusCode: number

  constructor (readonly code: BootErrorCode, message: string, readonly details: readonly BootErrorDetail[] = []) {
    super(message)
    this.status = BOOT_ERROR_STATUS[code]
    this.statusCode = this.status
  }

  toJSON (): { error: { code: BootErrorCode; message: string; details?: readonly BootErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, ...(this.details.length > 0 ? { details: this.details } : {}) } }
  }
}

export function isBootError (e: unknown, code?: BootErrorCode): e is BootError {
  return e instanceof BootError && (code === undefined || e.code === code)
}
