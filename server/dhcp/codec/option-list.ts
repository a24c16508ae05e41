/**
 * Ordered DHCP option list.
 *
 * Holds one entry per option code, in first-appearance order, after RFC 3396
 * aggregation (all instances of a code concatenated in the order options,
 * file, sname). Values are kept byte-for-byte, so an option the codec does not
 * understand survives decode → encode unchanged. PAD, END and OVERLOAD (52) are
 * framing, not content, and are never stored here: the encoder emits them.
 *
 * Values are views into the decoded packet's private copy; treat them as
 * read-only and `set` a new array to change an option.
 */
export class DhcpOptions implements Iterable<[number, Uint8Array]> {
  readonly #codes: number[] = []
  readonly #values: Uint8Array[] = []

  static from(entries: Iterable<readonly [number, Uint8Array]>): DhcpOptions {
    const o = new DhcpOptions()
    for (const [c, v] of entries) o.set(c, v)
    return o
  }

  get size(): number {
    return this.#codes.length
  }

  #indexOf(code: number): number {
    const codes = this.#codes
    for (let i = 0; i < codes.length; i++) if (codes[i] === code) return i
    return -1
  }

  has(code: number): boolean {
    return this.#indexOf(code) >= 0
  }

  get(code: number): Uint8Array | undefined {
    const i = this.#indexOf(code)
    return i < 0 ? undefined : this.#values[i]
  }

  /**
   * Sets a value, keeping the position of an existing entry or appending.
   * Codes must be 1..254; PAD/END/OVERLOAD are rejected (returns false).
   */
  set(code: number, value: Uint8Array): boolean {
    if (!Number.isInteger(code) || code <= 0 || code >= 255 || code === 52) return false
    const i = this.#indexOf(code)
    if (i >= 0) this.#values[i] = value
    else {
      this.#codes.push(code)
      this.#values.push(value)
    }
    return true
  }

  /** Appends without checking for an existing entry; for the decoder, which guarantees uniqueness. */
  pushUnique(code: number, value: Uint8Array): void {
    this.#codes.push(code)
    this.#values.push(value)
  }

  delete(code: number): boolean {
    const i = this.#indexOf(code)
    if (i < 0) return false
    this.#codes.splice(i, 1)
    this.#values.splice(i, 1)
    return true
  }

  codes(): readonly number[] {
    return this.#codes
  }

  codeAt(i: number): number {
    return this.#codes[i] ?? -1
  }

  valueAt(i: number): Uint8Array | undefined {
    return this.#values[i]
  }

  clone(): DhcpOptions {
    const o = new DhcpOptions()
    for (let i = 0; i < this.#codes.length; i++) o.pushUnique(this.#codes[i]!, this.#values[i]!)
    return o
  }

  *[Symbol.iterator](): Iterator<[number, Uint8Array]> {
    for (let i = 0; i < this.#codes.length; i++) yield [this.#codes[i]!, this.#values[i]!]
  }
}
