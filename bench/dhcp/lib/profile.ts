/**
 * Self time per function from a V8 .cpuprofile (node --cpu-prof).
 */
import { readFileSync } from 'node:fs'

interface ProfNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: ProfNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface SelfTime { fn: string; where: string; ms: number; pct: number }

export interface ProfileSummary {
  totalMs: number
  /** time not idle (what the percentages below are of) */
  busyMs: number
  functions: SelfTime[]
  files: SelfTime[]
}

export function summarize (file: string, root: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  // timeDeltas[i] is the time before samples[i]; attribute it to that sample
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  }
  const short = (url: string): string => url.replace(/^file:\/\//, '').replace(root, '').replace(/^.*\/node_modules\//, 'node_modules/')
  const fns = new Map<string, SelfTime>()
  const files = new Map<string, SelfTime>()
  let total = 0
  let idle = 0
  for (const [id, us] of self) {
    const n = byId.get(id)!
    total += us
    const name = n.callFrame.functionName || '(anonymous)'
    if (name === '(idle)') { idle += us; continue }
    const where = n.callFrame.url === '' ? '' : `${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
    const k = `${name}@${where}`
    const f = fns.get(k) ?? { fn: name, where, ms: 0, pct: 0 }
    f.ms += us / 1000
    fns.set(k, f)
    const fk = n.callFrame.url === '' ? name : short(n.callFrame.url)
    const g = files.get(fk) ?? { fn: fk, where: '', ms: 0, pct: 0 }
    g.ms += us / 1000
    files.set(fk, g)
  }
  const busyMs = (total - idle) / 1000
  const fin = (m: Map<string, SelfTime>): SelfTime[] => [...m.values()]
    .map((x) => ({ ...x, ms: Math.round(x.ms * 10) / 10, pct: Math.round(1000 * x.ms / busyMs) / 10 }))
    .sort((a, b) => b.ms - a.ms).slice(0, top)
  return { totalMs: Math.round(total / 1000), busyMs: Math.round(busyMs), functions: fin(fns), files: fin(files) }
}
