/**
 * Bounds-checked cursors over a byte buffer.
 *
 * Reader never throws and never reads outside [start, end): a read past the end
 * returns 0 (or an empty view), records the offset of the first underrun, and
 * leaves the cursor at `end`. Callers decode a whole structure, then check
 * `ok` once.
 *
 * Writer writes into a fixed-capacity buffer; writes past capacity are dropped
 * and the first overflow offset is recorded, checked once by the caller.
 */

export class Reader {
  pos: number
  /** Offset of the first read that did not fit, or -1. */
  underrunAt = -1

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end: number = buf.length,
  ) {
    this.pos = start
  }

  get ok(): boolean {
    return this.underrunAt < 0
  }

  get remaining(): number {
    return this.end - this.pos
  }

  private need(n: number): boolean {
    if (this.pos + n <= this.end) return true
    if (this.underrunAt < 0) this.underrunAt = this.pos
    this.pos = this.end
    return false
  }

  u8(): number {
    if (!this.need(1)) return 0
    return this.buf[this.pos++]!
  }

  u16(): number {
    if (!this.need(2)) return 0
    const b = this.buf
    const p = this.pos
    this.pos = p + 2
    return (b[p]! << 8) | b[p + 1]!
  }

  u32(): number {
    if (!this.need(4)) return 0
    const b = this.buf
    const p = this.pos
    this.pos = p + 4
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0
  }

  /** A view (no copy) of the next n bytes; empty on underrun. */
  bytes(n: number): Uint8Array {
    if (n < 0 || !this.need(n)) return this.buf.subarray(0, 0)
    const v = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return v
  }

  skip(n: number): void {
    if (n < 0 || !this.need(n)) return
    this.pos += n
  }
}

export class Writer {
  pos = 0
  /** Offset of the first write that did not fit, or -1. */
  overflowAt = -1
  readonly buf: Uint8Array

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity)
  }

  get ok(): boolean {
    return this.overflowAt < 0
  }

  private room(n: number): boolean {
    if (this.pos + n <= this.buf.length) return true
    if (this.overflowAt < 0) this.overflowAt = this.pos
    return false
  }

  u8(v: number): void {
    if (this.room(1)) this.buf[this.pos++] = v & 0xff
  }

  u16(v: number): void {
    if (!this.room(2)) return
    this.buf[this.pos++] = (v >>> 8) & 0xff
    this.buf[this.pos++] = v & 0xff
  }

  u32(v: number): void {
    if (!this.room(4)) return
    this.buf[this.pos++] = (v >>> 24) & 0xff
    this.buf[this.pos++] = (v >>> 16) & 0xff
    this.buf[this.pos++] = (v >>> 8) & 0xff
    this.buf[this.pos++] = v & 0xff
  }

  bytes(v: Uint8Array): void {
    if (!this.room(v.length)) return
    this.buf.set(v, this.pos)
    this.pos += v.length
  }

  /** Writes n zero bytes (the buffer starts zeroed; only the cursor moves). */
  zeros(n: number): void {
    if (this.room(n)) this.pos += n
  }

  /** The written prefix (a view). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }
}
