/**
 * 20,000 fuzz inputs through decode, validate, dump, classify and the
 * encode/decode round trip (see fuzz-core.ts). The seed is fixed so a failure
 * reproduces; FUZZ_SEED overrides it.
 */
import t from 'tap'
import { runFuzz } from './fuzz-core.js'

const seed = Number(process.env.FUZZ_SEED ?? 0x6e62)
const report = runFuzz({ count: 20_000, seed })

t.comment(
  `seed ${seed}: ${report.inputs} inputs in ${report.elapsedMs.toFixed(0)} ms, ${report.accepted} accepted, ` +
    `${report.roundTrips} round trips, ${report.encoderCases} encoder cases, slowest ${report.slowestMs.toFixed(2)} ms`,
)
t.comment(`rejections: ${JSON.stringify(report.rejected)}`)
t.equal(report.inputs, 20_000, 'all inputs ran')
t.same(report.failures, [], 'no throw, unknown code, bad offset or round-trip mismatch')
t.ok(report.elapsedMs < 20_000, `whole run under 20 s (${report.elapsedMs.toFixed(0)} ms)`)
t.ok(report.accepted > 1000, 'a useful share of inputs reach the deep paths')
t.ok(report.roundTrips > 1000, 'round trips exercised')
for (const code of ['too-short', 'bad-magic-cookie', 'option-overrun', 'missing-end', 'missing-message-type', 'invalid-message-type', 'invalid-overload']) {
  t.ok((report.rejected[code] ?? 0) > 0, `reached rejection ${code}`)
}
