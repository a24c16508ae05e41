/** Test helpers: raw packets built byte by byte, independent of the encoder under test. */
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dhcp')

export const MAC = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]

export interface RawInit {
  op?: number
  htype?: number
  hlen?: number
  hops?: number
  xid?: number
  secs?: number
  flags?: number
  ciaddr?: number[]
  yiaddr?: number[]
  siaddr?: number[]
  giaddr?: number[]
  chaddr?: number[]
  sname?: number[]
  file?: number[]
  cookie?: number[]
  /** Bytes of the options field after the cookie, END included by the caller. */
  options?: number[]
  /** Zero-pad the whole packet to this length. */
  padTo?: number
}

export function raw(init: RawInit = {}): Uint8Array {
  const options = init.options ?? [53, 1, 1, 255]
  const len = Math.max(240 + options.length, init.padTo ?? 0)
  const b = new Uint8Array(len)
  b[0] = init.op ?? 1
  b[1] = init.htype ?? 1
  b[2] = init.hlen ?? 6
  b[3] = init.hops ?? 0
  const xid = init.xid ?? 0x01020304
  b.set([(xid >>> 24) & 0xff, (xid >>> 16) & 0xff, (xid >>> 8) & 0xff, xid & 0xff], 4)
  const secs = init.secs ?? 0
  b.set([secs >> 8, secs & 0xff], 8)
  const flags = init.flags ?? 0
  b.set([flags >> 8, flags & 0xff], 10)
  b.set(init.ciaddr ?? [0, 0, 0, 0], 12)
  b.set(init.yiaddr ?? [0, 0, 0, 0], 16)
  b.set(init.siaddr ?? [0, 0, 0, 0], 20)
  b.set(init.giaddr ?? [0, 0, 0, 0], 24)
  b.set(init.chaddr ?? MAC, 28)
  if (init.sname) b.set(init.sname, 44)
  if (init.file) b.set(init.file, 108)
  b.set(init.cookie ?? [0x63, 0x82, 0x53, 0x63], 236)
  b.set(options, 240)
  return b
}

export function bytes(s: string): number[] {
  return [...Buffer.from(s, 'latin1')]
}

export function opt(code: number, data: number[]): number[] {
  return [code, data.length, ...data]
}

/** Reads a fixture .hex file; lines starting with '#' are comments. */
export function loadHex(path: string): Uint8Array {
  const text = readFileSync(path, 'utf8')
  const hex = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('')
    .replace(/\s+/g, '')
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hex'))
    .map((f) => f.slice(0, -4))
    .sort()
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}
