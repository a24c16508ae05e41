/**
 * Where netboot's time goes while it answers boot-script requests: self time per
 * function and per file (bench/dhcp/lib/profile.ts), and total (inclusive) time
 * under a few named functions, from a V8 .cpuprofile written by `node --cpu-prof`.
 */
import { readFileSync } from 'node:fs'

interface ProfNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfNode[]; samples: number[]; timeDeltas: number[] }

export interface Inclusive { fn: string; where: string; ms: number; pct: number }

/**
 * Total time of samples that have a frame matching `fn` (and `url`, if given)
 * on their stack, each sample counted once per entry, as a share of busy time.
 */
export function inclusiveTime (file: string, root: string, wanted: readonly { fn: string; url?: string }[]): Inclusive[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const totals = wanted.map(() => 0)
  const where = wanted.map(() => '')
  let busy = 0
  for (let i = 0; i < p.samples.length; i++) {
    const leaf = byId.get(p.samples[i]!)!
    if (leaf.callFrame.functionName === '(idle)') continue
    const us = p.timeDeltas[i] ?? 0
    busy += us
    const hit = wanted.map(() => false)
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id)!.callFrame
      wanted.forEach((w, k) => {
        if (!hit[k] && cf.functionName === w.fn && (w.url === undefined || cf.url.includes(w.url))) {
          hit[k] = true
          where[k] = `${cf.url.replace(/^file:\/\//, '').replace(root, '').replace(/^.*\/node_modules\//, 'node_modules/')}:${cf.lineNumber + 1}`
        }
      })
    }
    hit.forEach((h, k) => { if (h) totals[k]! += us })
  }
  return wanted.map((w, k) => ({ fn: w.fn, where: where[k]!, ms: Math.round(totals[k]! / 100) / 10, pct: busy === 0 ? 0 : Math.round(1000 * totals[k]! / busy) / 10 }))
}
