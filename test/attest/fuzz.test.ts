import t from 'tap'
import { fuzzTarget, targets } from './fuzz-core.js'

// ≈10,000 mutated inputs per run across the decoders; FUZZ_SEED reproduces a run.
const seed = Number(process.env.FUZZ_SEED ?? 0x5eed)
const TOTAL = 10_000

t.test(`decoders never throw and stay in their catalogues (seed ${seed})`, async (t) => {
  const all = targets()
  const per = Math.ceil(TOTAL / all.length)
  for (const [i, target] of all.entries()) {
    const r = fuzzTarget(target, per, seed + i, 250)
    t.same(r.failures.slice(0, 5), [], `${target.name}: ${per} inputs, max ${r.maxMs.toFixed(2)} ms`)
    t.ok(r.outcomes.size > 1, `${target.name}: outcomes ${[...r.outcomes].map(([k, v]) => `${k}=${v}`).join(' ')}`)
  }
})
