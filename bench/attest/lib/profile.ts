/** CPU profiles: V8's sampling profiler in this process (node:inspector), and self time per function of a .cpuprofile. */
import { Session } from 'node:inspector/promises'
import { readFileSync, writeFileSync } from 'node:fs'

interface ProfNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfNode[]; samples: number[]; timeDeltas: number[] }

export interface SelfTime { fn: string; where: string; ms: number; pct: number }

/** Starts the profiler; the returned function stops it and writes the profile to `file`. */
export async function startProfile (file: string): Promise<() => Promise<void>> {
  const s = new Session()
  s.connect()
  await s.post('Profiler.enable')
  await s.post('Profiler.setSamplingInterval', { interval: 100 })
  await s.post('Profiler.start')
  return async () => {
    const { profile } = await s.post('Profiler.stop')
    writeFileSync(file, JSON.stringify(profile))
    s.disconnect()
  }
}

/**
 * The functions with the most self time (idle left out, GC included as V8 names
 * it), as a share of the main thread's busy time. The simulated nodes run in a
 * thread of their own (fleet-thread.ts), so none of this is theirs.
 */
export function topSelfTime (file: string, root: string, top = 15): { busyMs: number; functions: SelfTime[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const fns = new Map<string, SelfTime>()
  let busy = 0
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!
    const us = p.timeDeltas[i] ?? 0
    const fn = n.callFrame.functionName || '(anonymous)'
    if (fn === '(idle)') continue
    busy += us
    const where = n.callFrame.url === '' ? '' : `${n.callFrame.url.replace(/^file:\/\//, '').replace(root, '').replace(/^.*\/node_modules\//, '')}:${n.callFrame.lineNumber + 1}`
    const k = `${fn}@${where}`
    const f = fns.get(k) ?? { fn, where, ms: 0, pct: 0 }
    f.ms += us / 1000
    fns.set(k, f)
  }
  const busyMs = busy / 1000
  return {
    busyMs: Math.round(busyMs),
    functions: [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, top)
      .map((f) => ({ ...f, ms: Math.round(f.ms * 10) / 10, pct: Math.round((1000 * f.ms) / busyMs) / 10 })),
  }
}
