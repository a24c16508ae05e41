/**
 * Mutation fuzzing of the PE parser and the Authenticode hash (server/images/
 * authenticode.ts), shared by test/images/authenticode.test.ts (a bounded run) and
 * test/fuzz/pe-fuzz.ts (long runs). Seeds are well-formed images (PE32, PE32+, with
 * and without a certificate table) and, when present, the real systemd stub;
 * mutations overwrite the fields a hostile file would (e_lfanew, counts, sizes,
 * offsets) with boundary values, flip bytes and truncate.
 *
 * A run fails on: a throw, an error code outside PeErrorCode, a call slower than the
 * limit, or a hash that reads outside the file (authenticodeRanges out of bounds).
 */
import { existsSync, readFileSync } from 'node:fs'
import { authenticodeDigests, authenticodeRanges, parsePe, type PeErrorCode } from '../../server/images/authenticode.js'
import { buildPe, STUB } from './pe-helpers.js'

const CODES: ReadonlySet<PeErrorCode> = new Set(['too-small', 'not-mz', 'bad-lfanew', 'not-pe', 'bad-optional-header', 'bad-section-table', 'bad-section', 'bad-headers', 'bad-cert-table'])
const EDGES = [0, 1, 2, 0x3c, 0x40, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x1000, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]

/** xorshift32: reproducible from a seed. */
export function rng (seed: number): () => number {
  let x = (seed >>> 0) || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x
  }
}

export function seeds (): Buffer[] {
  const out = [
    buildPe().bytes,
    buildPe({ pe32plus: false }).bytes,
    buildPe({ certTable: Buffer.alloc(64, 0x30), trailing: Buffer.alloc(13, 0xee) }).bytes,
    buildPe({ numberOfRvaAndSizes: 4, sections: [{ name: '.x', data: Buffer.alloc(10, 1) }] }).bytes,
  ]
  if (existsSync(STUB)) out.push(readFileSync(STUB).subarray(0, 8192)) // headers and the start of .text: cheap to hash
  return out
}

function mutate (src: Buffer, next: () => number): Buffer {
  let b = Buffer.from(src)
  const n = 1 + (next() % 4)
  for (let i = 0; i < n; i++) {
    const op = next() % 5
    const at = b.length === 0 ? 0 : next() % b.length
    if (op === 0 && b.length > 0) b[at] = next() & 0xff
    else if (op === 1 && at + 4 <= b.length) b.writeUInt32LE(EDGES[next() % EDGES.length]!, at - (at % 4))
    else if (op === 2 && at + 2 <= b.length) b.writeUInt16LE(EDGES[next() % EDGES.length]! & 0xffff, at - (at % 2))
    else if (op === 3) b = b.subarray(0, at)
    else if (op === 4 && b.length >= 0x40) {
      // aim at the header fields that carry offsets and counts
      const lfanew = b.readUInt32LE(0x3c)
      const fields = [0x3c, lfanew + 6, lfanew + 20, lfanew + 24 + 56, lfanew + 24 + 60, lfanew + 24 + 108, lfanew + 24 + 92, lfanew + 24 + 144, lfanew + 24 + 148]
      const f = fields[next() % fields.length]!
      if (f + 4 <= b.length) b.writeUInt32LE(EDGES[next() % EDGES.length]!, f)
    }
  }
  return b
}

export interface FuzzResult { runs: number; outcomes: Map<string, number>; failures: string[]; maxMs: number }

/**
 * Runs `runs` mutants through the parser and the digest. A mutant that costs more
 * than `limitMs` of CPU (user + system time of this process, not wall time: a
 * loaded machine that deschedules the test must not fail it) is a failure: the
 * parser's work must stay bounded by the file's size whatever its headers claim.
 */
export function fuzzPe (runs: number, seed: number, limitMs = 250): FuzzResult {
  const next = rng(seed)
  const pool = seeds()
  const outcomes = new Map<string, number>()
  const failures: string[] = []
  let maxMs = 0
  for (let i = 0; i < runs; i++) {
    const input = mutate(pool[next() % pool.length]!, next)
    const t0 = process.cpuUsage()
    try {
      const pe = parsePe(input)
      let outcome: string
      if (pe.ok) {
        for (const [a, z] of authenticodeRanges(input, pe.value)) {
          if (a < 0 || z > input.length || a >= z) failures.push(`run ${i}: range [${a}, ${z}) outside a ${input.length}-byte file`)
        }
        const d = authenticodeDigests(input, ['sha256'])
        outcome = d.ok ? 'ok' : `error:${d.error.code}`
      } else {
        if (!CODES.has(pe.error.code)) failures.push(`run ${i}: unknown error code ${pe.error.code}`)
        outcome = `error:${pe.error.code}`
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    } catch (e) {
      failures.push(`run ${i}: threw ${(e as Error).stack ?? String(e)}`)
    }
    const used = process.cpuUsage(t0)
    const ms = (used.user + used.system) / 1000
    maxMs = Math.max(maxMs, ms)
    if (ms > limitMs) failures.push(`run ${i}: ${ms.toFixed(1)} ms`)
  }
  return { runs, outcomes, failures, maxMs }
}
