/**
 * Summarises boot benchmark results (bench/boot/run.ts JSON files): per variant and
 * phase, the median, min and max over the boots that reached the root image, as a
 * Markdown table for docs/bench-boot.md.
 *
 *   npx tsx bench/boot/summary.ts bench/out/boot-*.json
 */
import { readFileSync } from 'node:fs'

interface Result { variant: string; round: number; ok: boolean; load1: number; phases: Record<string, number | undefined> }

const results: Result[] = process.argv.slice(2).flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as { results: Result[] }).results)
if (results.length === 0) throw new Error('usage: summary.ts RESULT.json…')

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
const variants = [...new Set(results.map((r) => r.variant))]
const phases = [...new Set(results.flatMap((r) => Object.keys(r.phases)))]
const cell = (xs: number[]): string => xs.length === 0 ? '–' : xs.length === 1 ? xs[0]!.toFixed(1) : `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`

console.log(`| phase (s) | ${variants.join(' | ')} |`)
console.log(`|---|${variants.map(() => '---').join('|')}|`)
for (const p of phases) {
  const row = variants.map((v) => cell(results.filter((r) => r.variant === v && r.ok).map((r) => r.phases[p]).filter((x): x is number => typeof x === 'number')))
  if (row.every((c) => c === '–')) continue
  console.log(`| ${p} | ${row.join(' | ')} |`)
}
console.log(`| boots that reached the root image | ${variants.map((v) => `${results.filter((r) => r.variant === v && r.ok).length}/${results.filter((r) => r.variant === v).length}`).join(' | ')} |`)
console.log(`| 1-min load average at power-on | ${variants.map((v) => cell(results.filter((r) => r.variant === v).map((r) => r.load1))).join(' | ')} |`)
