/**
 * Cursor-style reader and writer for TPM 2.0 wire structures.
 *
 * TPM 2.0 Library Part 1 §18.1 / Part 2 §5: every integer on the TPM interface is
 * big-endian, and a TPM2B is `UINT16 size ‖ BYTE[size]` (Part 2 §10.4). The TCG event
 * log (PC Client PFP §10.2) uses the same shapes in little-endian, so the reader takes
 * an endianness.
 *
 * Contract: a Reader never throws and never reads outside its buffer. The first
 * failure (an underrun or a semantic error raised through `fail`) is recorded and
 * every later read returns zeros or an empty buffer, so a decoder reads a whole
 * structure and checks `error` once at the end. Loops driven by a count read from the
 * input must be bounded by the caller before iterating.
 */

export interface DecodeError<C extends string = string> {
  readonly code: C
  readonly message: string
  readonly offset?: number
}

export type Result<T, C extends string = string> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: DecodeError<C> }

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value }
}

export function err<C extends string>(code: C, message: string, offset?: number): { ok: false; error: DecodeError<C> } {
  return offset === undefined ? { ok: false, error: { code, message } } : { ok: false, error: { code, message, offset } }
}

const EMPTY = Buffer.alloc(0)

export class Reader {
  private readonly view: DataView
  private readonly buf: Buffer
  private pos = 0
  private firstError: DecodeError | undefined

  constructor(input: Uint8Array, readonly littleEndian = false) {
    this.buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength)
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength)
  }

  /** Current offset from the start of the input. */
  get offset(): number {
    return this.pos
  }

  get remaining(): number {
    return this.buf.length - this.pos
  }

  get length(): number {
    return this.buf.length
  }

  /** The first recorded failure, if any. */
  get error(): DecodeError | undefined {
    return this.firstError
  }

  get failed(): boolean {
    return this.firstError !== undefined
  }

  /** Records a failure unless one is already recorded; later reads return zeros. */
  fail(code: string, message: string, offset = this.pos): void {
    if (this.firstError === undefined) this.firstError = { code, message, offset }
  }

  private take(n: number): number {
    if (this.firstError !== undefined) return -1
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      this.fail('truncated', `need ${n} byte(s) at offset ${this.pos}, ${this.remaining} left`)
      return -1
    }
    const at = this.pos
    this.pos += n
    return at
  }

  u8(): number {
    const at = this.take(1)
    return at < 0 ? 0 : this.view.getUint8(at)
  }

  u16(): number {
    const at = this.take(2)
    return at < 0 ? 0 : this.view.getUint16(at, this.littleEndian)
  }

  u32(): number {
    const at = this.take(4)
    return at < 0 ? 0 : this.view.getUint32(at, this.littleEndian)
  }

  u64(): bigint {
    const at = this.take(8)
    return at < 0 ? 0n : this.view.getBigUint64(at, this.littleEndian)
  }

  /** A view (not a copy) of the next n bytes; empty after a failure. */
  bytes(n: number): Buffer {
    const at = this.take(n)
    return at < 0 ? EMPTY : this.buf.subarray(at, at + n)
  }

  /** Skips n bytes. */
  skip(n: number): void {
    this.take(n)
  }

  /**
   * TPM2B: `UINT16 size ‖ BYTE[size]` (Part 2 §10.4.1). A size above `max` (the
   * type's `sizeof(buffer)` bound from Part 2) is a failure with code `too-large`,
   * checked before any byte is read.
   */
  tpm2b(max: number, what = 'TPM2B'): Buffer {
    const start = this.pos
    const size = this.u16()
    if (this.failed) return EMPTY
    if (size > max) {
      this.fail('too-large', `${what} size ${size} exceeds its maximum ${max}`, start)
      return EMPTY
    }
    return this.bytes(size)
  }

  /** Bytes from `start` up to the current offset (a view). */
  since(start: number): Buffer {
    return this.buf.subarray(start, this.pos)
  }

  /** Everything not read yet (a view); leaves the cursor at the end. */
  rest(): Buffer {
    return this.bytes(this.remaining)
  }
}

/** Big-endian writer for TPM structures (Part 2 §5). */
export class Writer {
  private chunks: Buffer[] = []
  private size = 0

  private push(b: Buffer): this {
    this.chunks.push(b)
    this.size += b.length
    return this
  }

  get length(): number {
    return this.size
  }

  u8(v: number): this {
    const b = Buffer.alloc(1)
    b.writeUInt8(v & 0xff)
    return this.push(b)
  }

  u16(v: number): this {
    const b = Buffer.alloc(2)
    b.writeUInt16BE(v & 0xffff)
    return this.push(b)
  }

  u32(v: number): this {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(v >>> 0)
    return this.push(b)
  }

  u64(v: bigint): this {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(BigInt.asUintN(64, v))
    return this.push(b)
  }

  bytes(v: Uint8Array): this {
    return this.push(Buffer.from(v))
  }

  /** TPM2B: u16 size ‖ bytes. Throws on a programming error (size > 0xffff). */
  tpm2b(v: Uint8Array): this {
    if (v.length > 0xffff) throw new RangeError(`TPM2B of ${v.length} bytes`)
    return this.u16(v.length).bytes(v)
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size)
  }
}

/** u16(len) ‖ bytes. */
export function tpm2b(v: Uint8Array): Buffer {
  return new Writer().tpm2b(v).finish()
}
