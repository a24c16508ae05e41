/**
 * Fuzz inputs and invariant checks for the TFTP codec, negotiation and transfer
 * machine; shared by test/tftp/fuzz.test.ts and the standalone test/fuzz/tftp-fuzz.ts.
 * Deterministic for a given seed, so a failure names the seed that reproduces it.
 */

import {
  decodePacket,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodePacket,
  encodeRequest,
  TFTP_DECODE_ERRORS,
  type TftpPacket,
} from '../../server/tftp/codec.js'
import { negotiate, type NegotiationLimits } from '../../server/tftp/negotiate.js'
import {
  blocksNeeded,
  initialState,
  isTerminal,
  transition,
  type TransferEvent,
  type TransferState,
} from '../../server/tftp/transfer.js'

export type Rng = () => number

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function rng(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const int = (r: Rng, n: number): number => Math.floor(r() * n)
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!

/** Seed inputs; each names the case it exercises. */
export function seedPackets(filenames: readonly string[] = ['f.bin']): Buffer[] {
  const f = filenames[0] ?? 'f.bin'
  const rrq = (filename: string, mode: string, options: Array<[string, string]>): Buffer =>
    encodeRequest({ op: 'RRQ', filename, mode, options: options.map(([name, value]) => ({ name, value })) })
  return [
    ...filenames.map((name) => rrq(name, 'octet', [])),
    rrq(f, 'octet', [['blksize', '1468'], ['tsize', '0'], ['windowsize', '8'], ['timeout', '1']]),
    rrq(f, 'netascii', [['blksize', '8']]),
    rrq(f, 'OCTET', [['BLKSIZE', '70000'], ['windowsize', '0']]), // absurd values: ignored
    rrq(f, 'mail', []), // RFC 1123 §4.2.2.1 refusal
    rrq('../etc/passwd', 'octet', []), // traversal
    rrq('//etc/passwd', 'octet', []),
    rrq(f, 'octet', [['x'.repeat(200), 'y'.repeat(280)]]), // near the 512-octet limit
    Buffer.concat([rrq(f, 'octet', []), Buffer.alloc(64)]), // NUL padding quirk
    encodeRequest({ op: 'WRQ', filename: f, mode: 'octet', options: [] }),
    encodeData(1, Buffer.alloc(512, 1)),
    encodeAck(0),
    encodeAck(65535),
    encodeError(0, 'abort'),
    encodeError(8, 'options refused'),
    encodeOack([{ name: 'blksize', value: '1468' }]),
    Buffer.from([0, 1]),
    Buffer.alloc(0),
  ]
}

/** One of several structure-unaware mutations of `buf`, sometimes splicing `other` in. */
export function mutate(r: Rng, buf: Buffer, other: Buffer): Buffer {
  const b = Buffer.from(buf)
  switch (int(r, 11)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + int(r, 4); i < n && b.length > 0; i++) b[int(r, b.length)]! ^= 1 << int(r, 8)
      return b
    case 1: // set a byte to an interesting value
      if (b.length > 0) b[int(r, b.length)] = pick(r, [0, 1, 0x7f, 0x80, 0xff, 0x2e, 0x2f, 0x5c])
      return b
    case 2: // truncate
      return b.subarray(0, int(r, b.length + 1))
    case 3: {
      // insert random bytes
      const at = int(r, b.length + 1)
      const ins = Buffer.from(Array.from({ length: 1 + int(r, 16) }, () => int(r, 256)))
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)])
    }
    case 4: {
      // delete a range
      const at = int(r, b.length + 1)
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(r, 8))])
    }
    case 5: // change the opcode
      if (b.length >= 2) b.writeUInt16BE(pick(r, [0, 1, 2, 3, 4, 5, 6, 7, 0xffff, int(r, 65536)]), 0)
      return b
    case 6: // extend with NULs or junk (padding, oversize)
      return Buffer.concat([b, Buffer.alloc(int(r, 700), r() < 0.5 ? 0 : int(r, 256))])
    case 7: {
      // splice with another seed
      const cut = int(r, b.length + 1)
      return Buffer.concat([b.subarray(0, cut), other.subarray(int(r, other.length + 1))])
    }
    case 8: {
      // duplicate a region
      const s = int(r, b.length + 1)
      const e = s + int(r, b.length - s + 1)
      return Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)])
    }
    case 9: // replace a NUL with a non-NUL or vice versa
      for (let i = 0; i < b.length; i++) if (b[i] === 0 && r() < 0.3) b[i] = 0x41
      if (b.length > 2 && r() < 0.5) b[2 + int(r, b.length - 2)] = 0
      return b
    default: // fully random datagram
      return Buffer.from(Array.from({ length: int(r, 600) }, () => int(r, 256)))
  }
}

/** A datagram: a mutated seed (sometimes mutated repeatedly) or a pristine seed. */
export function fuzzPacket(r: Rng, seeds: readonly Buffer[]): Buffer {
  let b = pick(r, seeds)
  const rounds = r() < 0.1 ? 0 : 1 + int(r, 3)
  for (let i = 0; i < rounds; i++) b = mutate(r, b, pick(r, seeds))
  return b
}

const LIMITS: NegotiationLimits = { maxBlksize: 1468, maxWindowsize: 64 }

/** Invariants of decodePacket (and negotiate on what it accepts); throws with a description on violation. */
export function checkCodec(buf: Buffer): void {
  let r
  try {
    r = decodePacket(buf)
  } catch (e) {
    throw new Error(`decodePacket threw on ${buf.toString('hex')}: ${String(e)}`)
  }
  if (!r.ok) {
    if (!(r.error.code in TFTP_DECODE_ERRORS)) throw new Error(`undocumented error code ${r.error.code}`)
    return
  }
  const p: TftpPacket = r.value
  if (p.op === 'RRQ' || p.op === 'WRQ') {
    const significant = buf.length - trailingNuls(buf) + 1
    if (significant > 512) throw new Error(`accepted a ${significant}-octet request`)
    const n = negotiate(p, 1000, LIMITS)
    if (n.blksize < 8 || n.blksize > LIMITS.maxBlksize) throw new Error(`blksize ${n.blksize} out of range`)
    if (n.windowsize < 1 || n.windowsize > LIMITS.maxWindowsize) throw new Error(`windowsize ${n.windowsize} out of range`)
    if (n.timeoutSeconds !== null && (n.timeoutSeconds < 1 || n.timeoutSeconds > 255)) throw new Error('timeout out of range')
  }
  // Re-encoding what was accepted must decode to the same value (ERROR messages go out as printable ASCII).
  const want = p.op === 'ERROR' ? { ...p, message: p.message.replace(/[^\x20-\x7e]/g, '?') } : p
  const again = decodePacket(encodePacket(p))
  if (!again.ok || JSON.stringify(again.value) !== JSON.stringify(want)) throw new Error(`round trip changed ${buf.toString('hex')}`)
}

function trailingNuls(buf: Buffer): number {
  let n = 0
  while (n < buf.length && buf[buf.length - 1 - n] === 0) n++
  return n
}

/** Random event sequence into one transfer machine; checks its invariants at every step. */
export function fuzzTransfer(r: Rng, steps: number): void {
  const blksize = pick(r, [8, 512, 1468])
  const windowsize = pick(r, [1, 2, 4, 16])
  const size = int(r, blksize * 40)
  const data = Buffer.alloc(size, 7)
  const oack = r() < 0.5 ? [{ name: 'windowsize', value: String(windowsize) }] : null
  let state: TransferState = initialState({ blksize, windowsize: oack ? windowsize : 1, maxRetries: 3, oack })
  const w = state.config.windowsize
  for (let i = 0; i < steps; i++) {
    const near = (state.lastAcked + 1 + int(r, w + 2) - 1) & 0xffff
    const event: TransferEvent = pick<TransferEvent>(r, [
      { type: 'start' },
      { type: 'ack', block: near },
      { type: 'ack', block: near },
      { type: 'ack', block: (state.highestSent + 1) & 0xffff },
      { type: 'ack', block: int(r, 65536) },
      { type: 'timeout' },
      ...(r() < 0.02 ? [{ type: 'error', code: 0, message: 'x' } as const] : []),
    ])
    const need = blocksNeeded(state, event)
    const step = transition(state, event, (index) => {
      if (need === null || index < need.first || index > need.last) throw new Error(`read ${index} outside ${JSON.stringify(need)}`)
      const start = index * blksize
      if (start > size) throw new Error(`read past end: ${index}`)
      return data.subarray(start, Math.min(start + blksize, size))
    })
    const s = step.state
    if (s.lastAcked > s.highestSent) throw new Error('acked beyond sent')
    if (s.highestSent - s.lastAcked > w) throw new Error('more than a window in flight')
    if (s.lastAcked < state.lastAcked) throw new Error('lastAcked went backwards')
    if (event.type === 'ack' && s.lastAcked === state.lastAcked && step.send.length > 0 && state.phase !== 'oack-sent') {
      throw new Error('sent packets for an ACK that made no progress (Sorcerer’s Apprentice)')
    }
    if (step.send.filter((p) => p.op === 'DATA').length > w) throw new Error('sent more than a window')
    if (s.retries > state.config.maxRetries) throw new Error('retries exceeded the bound')
    state = s
    if (isTerminal(state)) return
  }
}
