// Standalone mutation fuzzer for the PE parser and Authenticode hash (bigger runs
// than test/images/authenticode.test.ts). Run:
//   node --import=@tapjs/typescript/import test/fuzz/pe-fuzz.ts [runs] [seed]
// Exits 1 on any throw, unknown error code, out-of-file hash range or call slower than 250 ms.
import { fuzzPe } from '../images/pe-fuzz-core.js'

const runs = Number(process.argv[2] ?? 200_000)
const seed = Number(process.argv[3] ?? Date.now() % 0xffffffff)
console.log(`seed ${seed}, ${runs} inputs`)
const t0 = performance.now()
const r = fuzzPe(runs, seed, 250)
const secs = (performance.now() - t0) / 1000
const outcomes = [...r.outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')
console.log(`pe/authenticode ${(runs / secs).toFixed(0)}/s max ${r.maxMs.toFixed(2)} ms  ${outcomes}`)
for (const f of r.failures.slice(0, 10)) console.log(`  FAIL ${f}`)
console.log(r.failures.length === 0 ? 'no failures' : `${r.failures.length} failure(s); reproduce with seed ${seed}`)
process.exitCode = r.failures.length === 0 ? 0 : 1
