/**
 * Errors of the image blob store. Codes are stable and meant for the netboot
 * error catalogue (server/errors.ts); until they are listed there this class
 * mirrors NetbootError's shape. Recognise it by `code`, never by message text.
 */

export const BLOB_ERROR_STATUS = {
  /** A digest is not 64 lower-case hex digits (optionally `sha256:`-prefixed where parseDigest allows it). */
  IMAGE_DIGEST_INVALID: 400,
  /** No blob has that digest. */
  BLOB_NOT_FOUND: 404,
  /** The content added does not hash to the digest the caller expected; nothing was stored. */
  BLOB_DIGEST_MISMATCH: 400,
  /** The source of an add is not a readable regular file. */
  BLOB_SOURCE_INVALID: 400,
} as const

export type BlobErrorCode = keyof typeof BLOB_ERROR_STATUS

export class BlobError extends Error {
  override readonly name = 'BlobError'
  readonly status: number
  /** Read by fastify's error mapping (server/http/common.ts) while the code is not catalogued. */
  readonly statusCode: number

  constructor (readonly code: BlobErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.status = BLOB_ERROR_STATUS[code]
    this.statusCode = this.status
  }

  toJSON (): { error: { code: BlobErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } }
  }
}

export function isBlobError (e: unknown, code?: BlobErrorCode): e is BlobError {
  return e instanceof BlobError && (code === undefined || e.code === code)
}
