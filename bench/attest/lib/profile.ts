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
 * The simulated nodes' side of a round (their TPMs and agents), which runs in the
 * same process between the server's phases: its samples are not the server's.
 */
const CLIENT_SIDE = new Set(['agentFinish', 'rebootAll', 'startRequest'])

/**
 * The functions with the most self time (idle and GC included as V8 names them),
 * as a share of the server's busy time: samples under the simulated nodes' own
 * functions (CLIENT_SIDE) are left out, GC is not (V8 gives it no stack, so it
 * includes collecting the nodes' garbage).
 */
export function topSelfTime (file: string, root: string, top = 15): { busyMs: number; clientMs: number; functions: SelfTime[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const client = new Map<number, boolean>()
  const isClient = (id: number): boolean => {
    const known = client.get(id)
    if (known !== undefined) return known
    const up = parent.get(id)
    const r = CLIENT_SIDE.has(byId.get(id)!.callFrame.functionName) || (up !== undefined && isClient(up))
    client.set(id, r)
    return r
  }
  const fns = new Map<string, SelfTime>()
  let busy = 0
  let clientUs = 0
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!
    const us = p.timeDeltas[i] ?? 0
    const fn = n.callFrame.functionName || '(anonymous)'
    if (fn === '(idle)') continue
    if (isClient(n.id)) { clientUs += us; continue }
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
    clientMs: Math.round(clientUs / 1000),
    functions: [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, top)
      .map((f) => ({ ...f, ms: Math.round(f.ms * 10) / 10, pct: Math.round((1000 * f.ms) / busyMs) / 10 })),
  }
}
