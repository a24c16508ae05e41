/**
 * The shape every typed option follows: one OptionCodec per option code, with a
 * decoder that never throws and never reads past the value it is given.
 */
import { decodeError, type DecodeResult, type DhcpDecodeErrorCode } from '../errors.js'
import type { DhcpOptions } from '../option-list.js'

export interface OptionCodec<T> {
  readonly code: number
  /** Stable kebab-case name used in dumps. */
  readonly name: string
  decode(data: Uint8Array): DecodeResult<T>
  encode(value: T): Uint8Array
  /** One-line human form for dump.ts. */
  format(value: T): string
}

export function optionError(codec: { code: number; name: string }, code: DhcpDecodeErrorCode, message: string): { ok: false; error: { code: DhcpDecodeErrorCode; message: string } } {
  return decodeError(code, `option ${codec.code} (${codec.name}): ${message}`)
}

/** Typed read: undefined when absent, a result when present (malformed values are errors, not throws). */
export function readOption<T>(options: DhcpOptions, codec: OptionCodec<T>): DecodeResult<T> | undefined {
  const raw = options.get(codec.code)
  return raw === undefined ? undefined : codec.decode(raw)
}

/** Typed read that treats a malformed value like an absent one. */
export function optionValue<T>(options: DhcpOptions, codec: OptionCodec<T>): T | undefined {
  const raw = options.get(codec.code)
  if (raw === undefined) return undefined
  const r = codec.decode(raw)
  return r.ok ? r.value : undefined
}

export function writeOption<T>(options: DhcpOptions, codec: OptionCodec<T>, value: T): void {
  options.set(codec.code, codec.encode(value))
}

export function hex(data: Uint8Array): string {
  let s = ''
  for (let i = 0; i < data.length; i++) s += data[i]!.toString(16).padStart(2, '0')
  return s
}

export function colonHex(data: Uint8Array): string {
  let s = ''
  for (let i = 0; i < data.length; i++) s += (i ? ':' : '') + data[i]!.toString(16).padStart(2, '0')
  return s
}

/** Latin-1 text of the bytes (1:1, so encode(decode(x)) = x). */
export function latin1(data: Uint8Array): string {
  let s = ''
  for (let i = 0; i < data.length; i++) s += String.fromCharCode(data[i]!)
  return s
}

/** JSON-quoted form, so control bytes stay visible and dumps stay one line. */
export function quoted(s: string): string {
  return JSON.stringify(s)
}
