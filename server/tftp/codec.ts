/**
 * TFTP packet codec: RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR) with the RFC 2347
 * option extension (request options, OACK), plus the RFC 1350/RFC 764 netascii
 * translation of file contents.
 *
 * Pure: no sockets, no file system, no logger.
 *
 * Decoders never throw and never read outside the input; they return
 * `{ ok: true, value } | { ok: false, error: { code, message } }` with a stable
 * code from TFTP_DECODE_ERRORS. Decoded `data` is a view into the input buffer.
 *
 * Encoders take typed, already-valid values and throw RangeError only when the
 * caller breaks that contract (a block number outside 0..65535, a NUL inside a
 * string field); they never see network input.
 *
 * What the request decoder accepts (RFC 1350 §5, RFC 2347 §2), stricter or more
 * tolerant than the letter of the RFCs:
 * - filename: one or more octets, valid UTF-8, no C0 control or DEL;
 * - mode: `netascii` or `octet`, case-insensitive; `mail` is refused
 *   (RFC 1123 §4.2.2.1), anything else is an unknown mode;
 * - options: name/value pairs, both non-empty printable ASCII, names compared
 *   case-insensitively and returned lower-cased, values verbatim; a repeated
 *   name or a name without a value makes the request malformed;
 * - size: at most 512 octets (RFC 2347 §2), counted without trailing padding;
 * - quirk: NUL octets after the last field's terminating NUL are padding and
 *   ignored (some PXE firmware sends fixed-size request buffers).
 * ACK tolerates the same all-zero padding after its 4 octets; ERROR tolerates a
 * missing terminating NUL and ignores anything after the first NUL, because an
 * ERROR only ever ends a transfer.
 */

export const OPCODE = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const

/** RFC 1350 §5 error codes; 8 is RFC 2347 §2 (option negotiation refused). */
export const TFTP_ERROR = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const

/** RFC 2347 §2: "The maximum size of a request packet is 512 octets." */
export const MAX_REQUEST_SIZE = 512
/** RFC 1350 §2: the block size when no blksize option was negotiated. */
export const DEFAULT_BLKSIZE = 512
/** RFC 2348: largest negotiable block size (65535 - 20 IP - 8 UDP - 4 TFTP - 39, per the RFC). */
export const MAX_BLKSIZE = 65464
/** RFC 1350 §5: block numbers are 16-bit. */
export const MAX_BLOCK = 0xffff

export type TransferMode = 'netascii' | 'octet'

/** An RFC 2347 option; `name` is lower-cased, `value` verbatim. */
export interface TftpOption {
  readonly name: string
  readonly value: string
}

export interface RequestPacket {
  readonly op: 'RRQ' | 'WRQ'
  readonly filename: string
  readonly mode: TransferMode
  readonly options: readonly TftpOption[]
}

export interface DataPacket {
  readonly op: 'DATA'
  readonly block: number
  readonly data: Buffer
}

export interface AckPacket {
  readonly op: 'ACK'
  readonly block: number
}

export interface ErrorPacket {
  readonly op: 'ERROR'
  readonly code: number
  readonly message: string
}

export interface OackPacket {
  readonly op: 'OACK'
  readonly options: readonly TftpOption[]
}

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket

/** Decode error codes: stable API, one documentation line each (a test checks all are documented). */
export const TFTP_DECODE_ERRORS = {
  'too-short': 'The datagram is shorter than the fixed header of its opcode.',
  'unknown-opcode': 'The opcode is not 1..6 (RFC 1350 §5, RFC 2347 §2).',
  'request-too-large': 'A RRQ/WRQ is over 512 octets once trailing NUL padding is removed (RFC 2347 §2).',
  'unterminated-field': 'A string field of a request or OACK has no terminating NUL (RFC 1350 §5).',
  'empty-filename': 'The request filename is empty.',
  'invalid-filename': 'The request filename is not valid UTF-8 or contains a control character.',
  'missing-mode': 'The request has no mode field after the filename (RFC 1350 §5).',
  'unknown-mode': 'The mode is neither netascii nor octet (RFC 1350 §5).',
  'mail-mode': 'The mode is mail, which is obsolete and refused (RFC 1123 §4.2.2.1).',
  'invalid-option': 'An option name or value is empty or not printable ASCII (RFC 2347 §2).',
  'option-missing-value': 'The last option name has no value (RFC 2347 §2).',
  'duplicate-option': 'The same option name appears twice (names compare case-insensitively, RFC 2347 §2).',
  'trailing-bytes': 'Non-padding octets follow a complete fixed-size packet.',
  'data-too-large': 'A DATA payload is larger than 65464 octets (RFC 2348).',
} as const satisfies Record<string, string>

export type TftpDecodeErrorCode = keyof typeof TFTP_DECODE_ERRORS

export interface TftpDecodeError {
  readonly code: TftpDecodeErrorCode
  readonly message: string
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: TftpDecodeError }

function fail(code: TftpDecodeErrorCode, message: string = TFTP_DECODE_ERRORS[code]): { ok: false; error: TftpDecodeError } {
  return { ok: false, error: { code, message } }
}

/** Decode any TFTP datagram. */
export function decodePacket(buf: Uint8Array): DecodeResult<TftpPacket> {
  if (buf.length < 2) return fail('too-short')
  const op = (buf[0]! << 8) | buf[1]!
  switch (op) {
    case OPCODE.RRQ:
    case OPCODE.WRQ:
      return decodeRequest(buf)
    case OPCODE.DATA:
      return decodeData(buf)
    case OPCODE.ACK:
      return decodeAck(buf)
    case OPCODE.ERROR:
      return decodeError(buf)
    case OPCODE.OACK:
      return decodeOack(buf)
    default:
      return fail('unknown-opcode', `unknown opcode ${op}`)
  }
}

/** Index one past the single NUL that terminates the last field, ignoring further NUL padding. */
function significantEnd(buf: Uint8Array, start: number): number {
  let end = buf.length
  while (end - start >= 2 && buf[end - 1] === 0 && buf[end - 2] === 0) end--
  return end
}

/** Split [start, end) on NUL; `end - 1` must be a NUL (checked by the caller). */
function splitFields(buf: Uint8Array, start: number, end: number): Uint8Array[] {
  const fields: Uint8Array[] = []
  let from = start
  for (let i = start; i < end; i++) {
    if (buf[i] === 0) {
      fields.push(buf.subarray(from, i))
      from = i + 1
    }
  }
  return fields
}

function isPrintableAscii(bytes: Uint8Array, allowSpace: boolean): boolean {
  if (bytes.length === 0) return false
  for (const b of bytes) {
    if (b > 0x7e || b < (allowSpace ? 0x20 : 0x21)) return false
  }
  return true
}

function ascii(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
}

/** Strict UTF-8 decode without throwing: undefined unless the bytes round-trip exactly. */
function utf8Exact(bytes: Uint8Array): string | undefined {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const s = view.toString('utf8')
  return Buffer.from(s, 'utf8').equals(view) ? s : undefined
}

/** RFC 2347 §2 option list: pairs of NUL-terminated name and value. */
function decodeOptions(fields: readonly Uint8Array[]): DecodeResult<TftpOption[]> {
  if (fields.length % 2 !== 0) return fail('option-missing-value')
  const options: TftpOption[] = []
  const seen = new Set<string>()
  for (let i = 0; i < fields.length; i += 2) {
    const nameBytes = fields[i]!
    const valueBytes = fields[i + 1]!
    if (!isPrintableAscii(nameBytes, false) || !isPrintableAscii(valueBytes, true)) return fail('invalid-option')
    const name = ascii(nameBytes).toLowerCase()
    if (seen.has(name)) return fail('duplicate-option', `option ${JSON.stringify(name)} appears twice`)
    seen.add(name)
    options.push({ name, value: ascii(valueBytes) })
  }
  return { ok: true, value: options }
}

/** RFC 1350 §5 RRQ/WRQ with RFC 2347 §2 options. */
function decodeRequest(buf: Uint8Array): DecodeResult<RequestPacket> {
  const op = buf[1] === OPCODE.RRQ ? 'RRQ' : 'WRQ'
  const end = significantEnd(buf, 2)
  if (end <= 2) return fail('empty-filename')
  if (buf[end - 1] !== 0) return fail('unterminated-field')
  if (end > MAX_REQUEST_SIZE) return fail('request-too-large', `request is ${end} octets, limit ${MAX_REQUEST_SIZE}`)
  const fields = splitFields(buf, 2, end)
  const filenameBytes = fields[0]!
  if (filenameBytes.length === 0) return fail('empty-filename')
  for (const b of filenameBytes) if (b < 0x20 || b === 0x7f) return fail('invalid-filename')
  const filename = utf8Exact(filenameBytes)
  if (filename === undefined) return fail('invalid-filename')
  const modeBytes = fields[1]
  if (modeBytes === undefined || modeBytes.length === 0) return fail('missing-mode')
  if (!isPrintableAscii(modeBytes, false)) return fail('unknown-mode')
  const modeName = ascii(modeBytes).toLowerCase()
  let mode: TransferMode
  if (modeName === 'octet' || modeName === 'netascii') mode = modeName
  else if (modeName === 'mail') return fail('mail-mode')
  else return fail('unknown-mode', `unknown mode ${JSON.stringify(modeName.slice(0, 32))}`)
  const options = decodeOptions(fields.slice(2))
  if (!options.ok) return options
  return { ok: true, value: { op, filename, mode, options: options.value } }
}

/** RFC 1350 §5 DATA: opcode, block, 0..blksize octets. */
function decodeData(buf: Uint8Array): DecodeResult<DataPacket> {
  if (buf.length < 4) return fail('too-short')
  if (buf.length - 4 > MAX_BLKSIZE) return fail('data-too-large')
  const block = (buf[2]! << 8) | buf[3]!
  const data = Buffer.from(buf.buffer, buf.byteOffset + 4, buf.length - 4)
  return { ok: true, value: { op: 'DATA', block, data } }
}

/** RFC 1350 §5 ACK: exactly opcode and block, then only NUL padding. */
function decodeAck(buf: Uint8Array): DecodeResult<AckPacket> {
  if (buf.length < 4) return fail('too-short')
  for (let i = 4; i < buf.length; i++) if (buf[i] !== 0) return fail('trailing-bytes')
  return { ok: true, value: { op: 'ACK', block: (buf[2]! << 8) | buf[3]! } }
}

/** RFC 1350 §5 ERROR: opcode, code, message up to the first NUL (terminator optional here). */
function decodeError(buf: Uint8Array): DecodeResult<ErrorPacket> {
  if (buf.length < 4) return fail('too-short')
  const code = (buf[2]! << 8) | buf[3]!
  let end = 4
  while (end < buf.length && buf[end] !== 0) end++
  const message = Buffer.from(buf.buffer, buf.byteOffset + 4, end - 4).toString('utf8')
  return { ok: true, value: { op: 'ERROR', code, message } }
}

/** RFC 2347 §2 OACK: opcode then option pairs (possibly none). */
function decodeOack(buf: Uint8Array): DecodeResult<OackPacket> {
  const end = significantEnd(buf, 2)
  if (end === 2) return { ok: true, value: { op: 'OACK', options: [] } }
  if (buf[end - 1] !== 0) return fail('unterminated-field')
  const options = decodeOptions(splitFields(buf, 2, end))
  if (!options.ok) return options
  return { ok: true, value: { op: 'OACK', options: options.value } }
}

// ---------------------------------------------------------------------------
// Encoders

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 0 || block > MAX_BLOCK) throw new RangeError(`block number ${block} outside 0..65535`)
}

function checkField(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  if (b.includes(0)) throw new RangeError(`${what} contains NUL`)
  return b
}

function fields(op: number, parts: readonly Buffer[]): Buffer {
  let len = 2
  for (const p of parts) len += p.length + 1
  const out = Buffer.alloc(len)
  out.writeUInt16BE(op, 0)
  let pos = 2
  for (const p of parts) {
    p.copy(out, pos)
    pos += p.length + 1
  }
  return out
}

function optionFields(options: readonly TftpOption[]): Buffer[] {
  const parts: Buffer[] = []
  for (const o of options) parts.push(checkField(o.name, 'option name'), checkField(o.value, 'option value'))
  return parts
}

/** RRQ/WRQ (clients and tests). Does not enforce the 512-octet limit: tests need oversize requests. */
export function encodeRequest(req: Omit<RequestPacket, 'mode'> & { mode: string }): Buffer {
  const parts = [checkField(req.filename, 'filename'), checkField(req.mode, 'mode'), ...optionFields(req.options)]
  return fields(req.op === 'RRQ' ? OPCODE.RRQ : OPCODE.WRQ, parts)
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  checkBlock(block)
  if (data.length > MAX_BLKSIZE) throw new RangeError(`DATA payload of ${data.length} octets over ${MAX_BLKSIZE}`)
  const out = Buffer.allocUnsafe(4 + data.length)
  out.writeUInt16BE(OPCODE.DATA, 0)
  out.writeUInt16BE(block, 2)
  out.set(data, 4)
  return out
}

export function encodeAck(block: number): Buffer {
  checkBlock(block)
  const out = Buffer.alloc(4)
  out.writeUInt16BE(OPCODE.ACK, 0)
  out.writeUInt16BE(block, 2)
  return out
}

/** RFC 1350 §5: the message is netascii; non-ASCII characters are replaced by '?'. */
export function encodeError(code: number, message: string): Buffer {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new RangeError(`error code ${code} outside 0..65535`)
  const text = Buffer.from(message.replace(/[^\x20-\x7e]/g, '?'), 'latin1')
  const out = Buffer.alloc(5 + text.length)
  out.writeUInt16BE(OPCODE.ERROR, 0)
  out.writeUInt16BE(code, 2)
  text.copy(out, 4)
  return out
}

export function encodeOack(options: readonly TftpOption[]): Buffer {
  return fields(OPCODE.OACK, optionFields(options))
}

export function encodePacket(p: TftpPacket): Buffer {
  switch (p.op) {
    case 'RRQ':
    case 'WRQ':
      return encodeRequest(p)
    case 'DATA':
      return encodeData(p.block, p.data)
    case 'ACK':
      return encodeAck(p.block)
    case 'ERROR':
      return encodeError(p.code, p.message)
    case 'OACK':
      return encodeOack(p.options)
  }
}

// ---------------------------------------------------------------------------
// netascii (RFC 1350 §1 and RFC 764 "Telnet NVT"): LF is sent as CR LF, a bare
// CR as CR NUL. Each input octet maps independently, so chunks translate alone.

/** Octets the netascii form of `src` adds (one per CR and per LF). */
export function netasciiGrowth(src: Uint8Array): number {
  let n = 0
  for (const b of src) if (b === 0x0a || b === 0x0d) n++
  return n
}

export function netasciiEncode(src: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(src.length + netasciiGrowth(src))
  let o = 0
  for (const b of src) {
    if (b === 0x0a) {
      out[o++] = 0x0d
      out[o++] = 0x0a
    } else if (b === 0x0d) {
      out[o++] = 0x0d
      out[o++] = 0x00
    } else {
      out[o++] = b
    }
  }
  return out
}
