/**
 * RFC 2347 option negotiation for a read request. Pure.
 *
 * Policy: an option the server does not know, or whose value is outside the
 * range its RFC allows, is ignored (left out of the OACK) rather than failing
 * the request (RFC 2347 §2: "the server ... may ignore any options it does not
 * support"). If no option is acknowledged the transfer is plain RFC 1350 and
 * starts with DATA block 1, not an OACK.
 */

import { DEFAULT_BLKSIZE, MAX_BLKSIZE, type TftpOption, type TransferMode } from './codec.js'

/** RFC 2348: valid blksize range. */
export const BLKSIZE_RANGE = { min: 8, max: MAX_BLKSIZE } as const
/** RFC 2349 §"Timeout Interval Option": seconds. */
export const TIMEOUT_RANGE = { min: 1, max: 255 } as const
/** RFC 7440 §3: valid windowsize range. */
export const WINDOWSIZE_RANGE = { min: 1, max: 65535 } as const

export interface NegotiationLimits {
  /** Largest blksize granted; 8..65464. Default 1468 keeps DATA inside a 1500-octet MTU (1468 + 4 + 8 + 20). */
  readonly maxBlksize: number
  /** Largest windowsize granted; 1..65535. */
  readonly maxWindowsize: number
}

export const DEFAULT_NEGOTIATION_LIMITS: NegotiationLimits = { maxBlksize: 1468, maxWindowsize: 64 }

export interface NegotiationRequest {
  readonly mode: TransferMode
  readonly options: readonly TftpOption[]
}

export interface Negotiated {
  /** Options to send in an OACK, in request order; null means no OACK (RFC 1350 transfer). */
  readonly oack: readonly TftpOption[] | null
  readonly blksize: number
  readonly windowsize: number
  /** Per-packet retransmission timeout the client asked for, in seconds, or null for the server default. */
  readonly timeoutSeconds: number | null
  /** The tsize value acknowledged, or null. */
  readonly tsize: number | null
}

/** Strict unsigned decimal (no sign, space, exponent or hex); at most 10 digits; else undefined. */
export function parseDecimal(value: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(value)) return undefined
  return Number(value)
}

/** Checks limits once at start-up; returns the name of the bad key and why, or null. */
export function validateLimits(limits: NegotiationLimits): { key: keyof NegotiationLimits; message: string } | null {
  const { maxBlksize, maxWindowsize } = limits
  if (!Number.isInteger(maxBlksize) || maxBlksize < BLKSIZE_RANGE.min || maxBlksize > BLKSIZE_RANGE.max) {
    return { key: 'maxBlksize', message: `must be an integer in ${BLKSIZE_RANGE.min}..${BLKSIZE_RANGE.max} (RFC 2348)` }
  }
  if (!Number.isInteger(maxWindowsize) || maxWindowsize < WINDOWSIZE_RANGE.min || maxWindowsize > WINDOWSIZE_RANGE.max) {
    return { key: 'maxWindowsize', message: `must be an integer in ${WINDOWSIZE_RANGE.min}..${WINDOWSIZE_RANGE.max} (RFC 7440)` }
  }
  return null
}

/**
 * Negotiate a RRQ's options.
 *
 * - blksize (RFC 2348): 8..65464 accepted and clamped to `maxBlksize` (the RFC
 *   lets the server answer a smaller value); outside that range or non-numeric:
 *   ignored, so the transfer uses 512.
 * - tsize (RFC 2349 §"Transfer Size Option"): on a RRQ the reply carries the
 *   file's size in octets; the request value (normally 0) is only required to
 *   be numeric. Not acknowledged when `fileSize` is null (netascii: the size on
 *   the wire is not known up front; tftp-hpa does the same), nor for an empty
 *   file: curl (lib/tftp.c, 7.88) aborts on an OACK tsize of 0, and leaving the
 *   option out is always allowed.
 * - timeout (RFC 2349 §"Timeout Interval Option"): 1..255 seconds, echoed
 *   unchanged; otherwise ignored.
 * - windowsize (RFC 7440 §3): 1..65535, clamped to `maxWindowsize`; otherwise ignored.
 * - anything else: ignored.
 */
export function negotiate(
  request: NegotiationRequest,
  fileSize: number | null,
  limits: NegotiationLimits = DEFAULT_NEGOTIATION_LIMITS,
): Negotiated {
  const oack: TftpOption[] = []
  let blksize = DEFAULT_BLKSIZE
  let windowsize = 1
  let timeoutSeconds: number | null = null
  let tsize: number | null = null
  for (const { name, value } of request.options) {
    const n = parseDecimal(value)
    if (n === undefined) continue
    switch (name) {
      case 'blksize':
        if (n < BLKSIZE_RANGE.min || n > BLKSIZE_RANGE.max) break
        blksize = Math.min(n, limits.maxBlksize)
        oack.push({ name, value: String(blksize) })
        break
      case 'tsize':
        if (fileSize === null || fileSize === 0 || request.mode !== 'octet') break
        tsize = fileSize
        oack.push({ name, value: String(fileSize) })
        break
      case 'timeout':
        if (n < TIMEOUT_RANGE.min || n > TIMEOUT_RANGE.max) break
        timeoutSeconds = n
        oack.push({ name, value: String(n) })
        break
      case 'windowsize':
        if (n < WINDOWSIZE_RANGE.min || n > WINDOWSIZE_RANGE.max) break
        windowsize = Math.min(n, limits.maxWindowsize)
        oack.push({ name, value: String(windowsize) })
        break
      default:
        break
    }
  }
  return { oack: oack.length > 0 ? oack : null, blksize, windowsize, timeoutSeconds, tsize }
}
