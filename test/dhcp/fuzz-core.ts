/**
 * DHCP codec fuzzing shared by test/dhcp/fuzz.test.ts (20k inputs, every CI
 * run) and test/fuzz/dhcp-fuzz.ts (the dedicated million-input run).
 *
 * Inputs: random bytes, random structurally-plausible packets, real captures
 * mutated, named seed packets, and random replies pushed through the encoder.
 * Properties: nothing throws; every rejection carries a catalogued code and an
 * in-bounds offset; an accepted packet validates, dumps, classifies and, when
 * it encodes, decodes back to the same dump.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  codecFor,
  decodePacket,
  DHCP_DECODE_ERROR_CODES,
  DHCP_ENCODE_ERROR_CODES,
  DhcpOptions,
  dumpPacket,
  encodePacket,
  encodeReply,
  newReply,
  validateClientRequest,
  type DhcpPacket,
} from '../../server/dhcp/codec/index.js'
import { classifyClient, replyDestination, selectBootFile } from '../../server/dhcp/decide/index.js'

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dhcp')
const DECODE_CODES: ReadonlySet<string> = new Set(DHCP_DECODE_ERROR_CODES)
const ENCODE_CODES: ReadonlySet<string> = new Set(DHCP_ENCODE_ERROR_CODES)

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function header(op = 1): number[] {
  const h = new Array(240).fill(0)
  h[0] = op
  h[1] = 1
  h[2] = 6
  h.splice(28, 6, 0x52, 0x54, 0, 1, 2, 3)
  h.splice(236, 4, 0x63, 0x82, 0x53, 0x63)
  return h
}

/** Seed inputs named after the behaviour (or bug class) each one pins down. */
export const NAMED_SEEDS: Record<string, Uint8Array> = {
  'overload-both-fields-with-split-option': (() => {
    const h = header()
    h.splice(44, 4, 250, 1, 3, 255) // sname: third part
    h.splice(108, 4, 250, 1, 2, 255) // file: second part
    return Uint8Array.from([...h, 250, 1, 1, 53, 1, 1, 52, 1, 3, 255])
  })(),
  'option-length-runs-past-end': Uint8Array.from([...header(), 53, 1, 1, 12, 250, 0x61]),
  'pad-only-no-end': Uint8Array.from([...header(), 53, 1, 1, ...new Array(60).fill(0)]),
  'overload-option-inside-file': (() => {
    const h = header()
    h.splice(108, 4, 52, 1, 2, 255)
    return Uint8Array.from([...h, 53, 1, 1, 52, 1, 1, 255])
  })(),
  'long-option-three-instances': Uint8Array.from([
    ...header(),
    53, 1, 3,
    ...[43, 255, ...new Array(255).fill(7)],
    ...[43, 255, ...new Array(255).fill(8)],
    ...[43, 10, ...new Array(10).fill(9)],
    255,
  ]),
  'user-class-length-chain-ambiguity': Uint8Array.from([...header(), 53, 1, 1, 77, 4, 3, 0x61, 0x62, 0x63, 255]),
  'hlen-17': (() => {
    const h = header()
    h[1] = 99
    h[2] = 17
    return Uint8Array.from([...h, 53, 1, 1, 255])
  })(),
  'zero-length-options-repeated': Uint8Array.from([...header(), 53, 1, 1, 80, 0, 80, 0, 224, 0, 255]),
  'message-type-split-in-two': Uint8Array.from([...header(), 53, 1, 1, 53, 1, 1, 255]),
}

export function loadSeeds(): Uint8Array[] {
  const seeds: Uint8Array[] = Object.values(NAMED_SEEDS)
  for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.hex')).sort()) {
    const hex = readFileSync(join(FIXTURES, f), 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('')
      .replace(/\s+/g, '')
    seeds.push(new Uint8Array(Buffer.from(hex, 'hex')))
  }
  return seeds
}

export interface FuzzOptions {
  count: number
  seed: number
  /** Stop early (not a failure) once this many ms have passed. */
  budgetMs?: number
}

export interface FuzzReport {
  inputs: number
  elapsedMs: number
  /** Slowest single input (decode through round trip), ms. */
  slowestMs: number
  accepted: number
  rejected: Record<string, number>
  validateRejected: Record<string, number>
  roundTrips: number
  encodeRejected: Record<string, number>
  encoderCases: number
  failures: { kind: string; detail: string; input: string }[]
}

const BOOT = {
  tftpServer: '10.0.0.1',
  httpBase: 'http://10.0.0.1/boot',
  files: { bios: 'undionly.kpxe', x64Uefi: 'ipxe.efi', arm64Uefi: 'ipxe-arm64.efi' },
  scriptUrl: (mac: string) => `http://10.0.0.1/boot/${mac}`,
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1
}

function withoutOverload(dump: string): string {
  return dump.replace(/^overload: .*\n/m, '')
}

function randomBytes(rnd: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0
  return b
}

function structured(rnd: () => number): Uint8Array {
  const h = header(rnd() < 0.8 ? 1 : 2)
  if (rnd() < 0.2) h[2] = (rnd() * 20) | 0
  if (rnd() < 0.1) h[1] = (rnd() * 256) | 0
  const opts: number[] = []
  if (rnd() < 0.9) opts.push(53, 1, 1 + ((rnd() * 19) | 0))
  const n = (rnd() * 12) | 0
  const codes = [1, 3, 6, 12, 43, 50, 52, 54, 55, 57, 60, 61, 77, 82, 93, 94, 97, 175, 250]
  for (let i = 0; i < n; i++) {
    const code = rnd() < 0.85 ? codes[(rnd() * codes.length) | 0]! : (rnd() * 256) | 0
    const len = rnd() < 0.7 ? (rnd() * 20) | 0 : (rnd() * 256) | 0
    opts.push(code, len, ...randomBytes(rnd, len))
  }
  if (rnd() < 0.9) opts.push(255)
  if (rnd() < 0.3) for (let i = 0, k = (rnd() * 60) | 0; i < k; i++) opts.push(0)
  return Uint8Array.from([...h, ...opts])
}

function mutate(rnd: () => number, seed: Uint8Array): Uint8Array {
  let b = seed.slice()
  const steps = 1 + ((rnd() * 8) | 0)
  for (let s = 0; s < steps; s++) {
    const at = (rnd() * Math.max(b.length, 1)) | 0
    switch ((rnd() * 8) | 0) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << ((rnd() * 8) | 0))
        break
      case 1:
        if (b.length) b[at] = (rnd() * 256) | 0
        break
      case 2:
        b = b.subarray(0, at)
        break
      case 3: {
        const ins = randomBytes(rnd, 1 + ((rnd() * 40) | 0))
        const nb = new Uint8Array(b.length + ins.length)
        nb.set(b.subarray(0, at))
        nb.set(ins, at)
        nb.set(b.subarray(at), at + ins.length)
        b = nb
        break
      }
      case 4: {
        // Aim at the options area: lengths and codes are where decoders go wrong.
        const p = 240 + ((rnd() * Math.max(b.length - 240, 1)) | 0)
        if (p < b.length) b[p] = [0, 1, 52, 53, 255, (rnd() * 256) | 0][(rnd() * 6) | 0]!
        break
      }
      case 5: {
        // Turn on overload with random content in file/sname.
        if (b.length > 244) {
          b[240] = 52
          b[241] = 1
          b[242] = 1 + ((rnd() * 3) | 0)
          b.set(randomBytes(rnd, 10), rnd() < 0.5 ? 108 : 44)
        }
        break
      }
      case 6: {
        const extra = randomBytes(rnd, (rnd() * 1400) | 0)
        const nb = new Uint8Array(b.length + extra.length)
        nb.set(b)
        nb.set(extra, b.length)
        b = nb
        break
      }
      default:
        if (b.length > 2) b = b.subarray(0, b.length - 1 - ((rnd() * 10) | 0))
    }
  }
  return b
}

/** A random reply built through the API, for the encoder direction. */
function randomReply(rnd: () => number, req: DhcpPacket): DhcpPacket {
  const reply = newReply(req, ([2, 5, 6] as const)[(rnd() * 3) | 0]!, '10.0.0.1')
  reply.yiaddr = `10.0.${(rnd() * 256) | 0}.${(rnd() * 256) | 0}`
  if (rnd() < 0.3) reply.file = 'x'.repeat((rnd() * 128) | 0)
  if (rnd() < 0.2) reply.sname = 'y'.repeat((rnd() * 64) | 0)
  const n = (rnd() * 10) | 0
  for (let i = 0; i < n; i++) {
    const code = 1 + ((rnd() * 253) | 0)
    if (code === 52 || code === 53) continue
    reply.options.set(code, randomBytes(rnd, rnd() < 0.8 ? (rnd() * 64) | 0 : (rnd() * 700) | 0))
  }
  return reply
}

export function runFuzz(opts: FuzzOptions): FuzzReport {
  const rnd = prng(opts.seed)
  const seeds = loadSeeds()
  const report: FuzzReport = {
    inputs: 0,
    elapsedMs: 0,
    slowestMs: 0,
    accepted: 0,
    rejected: {},
    validateRejected: {},
    roundTrips: 0,
    encodeRejected: {},
    encoderCases: 0,
    failures: [],
  }
  const fail = (kind: string, detail: string, input: Uint8Array): void => {
    if (report.failures.length < 20) report.failures.push({ kind, detail, input: Buffer.from(input).toString('hex') })
  }
  const start = performance.now()
  const baseReq = decodePacket(seeds[seeds.length - 1]!)

  for (let i = 0; i < opts.count; i++) {
    if (opts.budgetMs !== undefined && (i & 255) === 0 && performance.now() - start > opts.budgetMs) break
    const pick = rnd()
    let input: Uint8Array
    if (i < seeds.length) input = seeds[i]!
    else if (pick < 0.15) input = randomBytes(rnd, (rnd() * 1600) | 0)
    else if (pick < 0.45) input = structured(rnd)
    else input = mutate(rnd, seeds[(rnd() * seeds.length) | 0]!)

    const t0 = performance.now()
    report.inputs++
    try {
      const d = decodePacket(input)
      if (!d.ok) {
        bump(report.rejected, d.error.code)
        if (!DECODE_CODES.has(d.error.code)) fail('unknown-decode-code', d.error.code, input)
        const off = d.error.offset
        if (off !== undefined && (off < 0 || off > input.length)) fail('offset-out-of-bounds', `${d.error.code} @${off}`, input)
      } else {
        report.accepted++
        const p = d.value
        const v = validateClientRequest(p)
        if (!v.ok) {
          bump(report.validateRejected, v.error.code)
          if (!DECODE_CODES.has(v.error.code)) fail('unknown-validate-code', v.error.code, input)
        }
        for (const [code, data] of p.options) {
          const c = codecFor(code)
          if (!c) continue
          const r = c.decode(data)
          if (!r.ok && !DECODE_CODES.has(r.error.code)) fail('unknown-option-code', `${code}: ${r.error.code}`, input)
        }
        const dump = dumpPacket(p)
        const cls = classifyClient(p)
        selectBootFile(cls, BOOT)
        const e = encodePacket(p)
        if (!e.ok) {
          bump(report.encodeRejected, e.error.code)
          if (!ENCODE_CODES.has(e.error.code)) fail('unknown-encode-code', e.error.code, input)
        } else {
          const d2 = decodePacket(e.value)
          if (!d2.ok) fail('re-decode', `${d2.error.code}: ${d2.error.message}`, input)
          else if (withoutOverload(dumpPacket(d2.value)) !== withoutOverload(dump)) fail('round-trip-mismatch', '', input)
          else report.roundTrips++
        }
      }

      if (baseReq.ok && (i & 7) === 0) {
        report.encoderCases++
        const reply = randomReply(rnd, baseReq.value)
        const r = encodeReply(reply, { request: baseReq.value })
        replyDestination(baseReq.value, reply)
        if (!r.ok) {
          bump(report.encodeRejected, r.error.code)
          if (!ENCODE_CODES.has(r.error.code)) fail('unknown-encode-code', r.error.code, input)
        } else {
          if (r.value.length > 548 || r.value.length < 300) fail('reply-size', String(r.value.length), r.value)
          const back = decodePacket(r.value)
          if (!back.ok) fail('reply-re-decode', back.error.code, r.value)
          else {
            const want = new DhcpOptions()
            for (const [c, v] of reply.options) want.set(c, v)
            for (const [c, v] of want) {
              const got = back.value.options.get(c)
              if (!got || Buffer.compare(Buffer.from(got), Buffer.from(v)) !== 0) {
                fail('reply-option-lost', String(c), r.value)
                break
              }
            }
          }
        }
      }
    } catch (err) {
      fail('throw', err instanceof Error ? `${err.name}: ${err.message}` : String(err), input)
    }
    const dt = performance.now() - t0
    if (dt > report.slowestMs) report.slowestMs = dt
  }
  report.elapsedMs = performance.now() - start
  return report
}
