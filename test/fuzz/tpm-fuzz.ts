// Standalone mutation fuzzer for the TPM and event-log decoders (bigger runs than
// test/attest/fuzz.test.ts). Run:
//   node --import=@tapjs/typescript/import test/fuzz/tpm-fuzz.ts [runsPerTarget] [seed]
// Exits 1 on any throw, unknown error code or call slower than 250 ms.
import { fuzzTarget, targets } from '../attest/fuzz-core.js'

const runs = Number(process.argv[2] ?? 100_000)
const seed = Number(process.argv[3] ?? Date.now() % 0xffffffff)
let failed = 0
console.log(`seed ${seed}, ${runs} inputs per target`)
for (const [i, target] of targets().entries()) {
  const t0 = performance.now()
  const r = fuzzTarget(target, runs, seed + i, 250)
  const secs = (performance.now() - t0) / 1000
  const outcomes = [...r.outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')
  console.log(`${target.name.padEnd(28)} ${(runs / secs).toFixed(0).padStart(7)}/s max ${r.maxMs.toFixed(2)} ms  ${outcomes}`)
  for (const f of r.failures.slice(0, 10)) console.log(`  FAIL ${f}`)
  failed += r.failures.length
}
console.log(failed === 0 ? 'no failures' : `${failed} failure(s); reproduce with seed ${seed}`)
process.exitCode = failed === 0 ? 0 : 1
