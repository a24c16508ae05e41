/**
 * Dedicated DHCP codec fuzz run (the CI-sized run is test/dhcp/fuzz.test.ts).
 *
 *   npx tsx test/fuzz/dhcp-fuzz.ts --count 1000000 [--seed N]
 *   node --import @tapjs/typescript/import test/fuzz/dhcp-fuzz.ts --count 1000000
 *
 * Runs in slices of 100k inputs with consecutive seeds, prints figures per
 * slice and a summary, and exits 1 on any failure (printing the failing
 * inputs as hex, ready to become named seeds in fuzz-core.ts).
 */
import { runFuzz, type FuzzReport } from '../dhcp/fuzz-core.js'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`)
  return v
}

const count = arg('count', 1_000_000)
const seed0 = arg('seed', Date.now() % 2 ** 31)
const SLICE = 100_000

const total: Omit<FuzzReport, 'rejected' | 'validateRejected' | 'encodeRejected'> & {
  rejected: Record<string, number>
  validateRejected: Record<string, number>
  encodeRejected: Record<string, number>
} = { inputs: 0, elapsedMs: 0, slowestMs: 0, accepted: 0, rejected: {}, validateRejected: {}, roundTrips: 0, encodeRejected: {}, encoderCases: 0, failures: [] }

const merge = (into: Record<string, number>, from: Record<string, number>): void => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
}

for (let done = 0, slice = 0; done < count; slice++) {
  const n = Math.min(SLICE, count - done)
  const r = runFuzz({ count: n, seed: seed0 + slice })
  done += n
  total.inputs += r.inputs
  total.elapsedMs += r.elapsedMs
  total.slowestMs = Math.max(total.slowestMs, r.slowestMs)
  total.accepted += r.accepted
  total.roundTrips += r.roundTrips
  total.encoderCases += r.encoderCases
  merge(total.rejected, r.rejected)
  merge(total.validateRejected, r.validateRejected)
  merge(total.encodeRejected, r.encodeRejected)
  total.failures.push(...r.failures.map((f) => ({ ...f, kind: `seed ${seed0 + slice}: ${f.kind}` })))
  console.log(`slice ${slice} seed ${seed0 + slice}: ${r.inputs} inputs, ${r.elapsedMs.toFixed(0)} ms, ${r.failures.length} failures`)
}

console.log(JSON.stringify({ seed: seed0, ...total, inputsPerSecond: Math.round(total.inputs / (total.elapsedMs / 1000)), failures: total.failures.length }, null, 2))
for (const f of total.failures.slice(0, 20)) console.log(`FAIL ${f.kind} ${f.detail}\n  ${f.input}`)
console.log(`${total.inputs - total.failures.length} passed, ${total.failures.length} failed`)
process.exit(total.failures.length === 0 ? 0 : 1)
