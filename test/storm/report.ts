/**
 * What a storm run says: per-phase latency (p50/p99/max over the nodes that got
 * through it), retries and failures per phase, time until the last node is done
 * (from the first node's arrival, i.e. its first DISCOVER), and the completion
 * curve, as a table and as an SVG written by hand (no plotting dependency).
 */
import type { NodeRecord, Phase, StormResult } from './sim.js'

export interface Latency { p50Ms: number; p99Ms: number; maxMs: number }

export interface PhaseSummary extends Latency {
  phase: Phase
  ran: number
  ok: number
  failed: number
  /** first word of each error (its code), counted */
  failures: Record<string, number>
  retries: number
  nodesRetrying: number
}

export interface StormSummary {
  nodes: number
  completed: number
  failed: number
  /** ms from the first arrival to the last completion; null when a node failed */
  lastDoneMs: number | null
  /** ms from the first arrival to the end of the last node, done or failed */
  wallMs: number
  /** per-node total (arrival → done), over completed nodes */
  perNode: Latency
  phases: PhaseSummary[]
  clientCpuMs: number
  clientPeakRssKb: number
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const r1 = (x: number): number => Math.round(x * 10) / 10

export function latency (xs: readonly number[]): Latency {
  const s = [...xs].sort((a, b) => a - b)
  return { p50Ms: r1(percentile(s, 50)), p99Ms: r1(percentile(s, 99)), maxMs: r1(s.at(-1) ?? NaN) }
}

export function summarize (r: StormResult, phases: readonly Phase[]): StormSummary {
  const first = Math.min(...r.nodes.map((n) => n.arrive))
  const done = r.nodes.filter((n) => n.done !== undefined)
  const ends = r.nodes.map((n) => n.done ?? Math.max(n.arrive, ...Object.values(n.phases).map((p) => p?.end ?? 0)))
  const out: PhaseSummary[] = phases.map((phase) => {
    const recs = r.nodes.map((n) => n.phases[phase]).filter((p) => p !== undefined)
    const ok = recs.filter((p) => p.error === undefined)
    const failures: Record<string, number> = {}
    for (const p of recs) if (p.error !== undefined) { const k = p.error.split(':')[0]!; failures[k] = (failures[k] ?? 0) + 1 }
    return {
      phase, ran: recs.length, ok: ok.length, failed: recs.length - ok.length, failures,
      retries: recs.reduce((a, p) => a + p.retries, 0), nodesRetrying: recs.filter((p) => p.retries > 0).length,
      ...latency(ok.map((p) => p.end - p.start)),
    }
  })
  return {
    nodes: r.nodes.length, completed: done.length, failed: r.nodes.length - done.length,
    lastDoneMs: done.length === r.nodes.length ? r1(Math.max(...done.map((n) => n.done!)) - first) : null,
    wallMs: r1(Math.max(...ends) - first),
    perNode: latency(done.map((n) => n.done! - n.arrive)),
    phases: out, clientCpuMs: Math.round(r.clientCpuMs), clientPeakRssKb: r.clientPeakRssKb,
  }
}

const pad = (s: string | number, n: number): string => String(s).padStart(n)

export function phaseTable (s: StormSummary): string {
  const lines = [`${'phase'.padEnd(18)}${pad('ok', 7)}${pad('failed', 7)}${pad('retries', 8)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('max ms', 9)}  failures`]
  for (const p of s.phases) {
    lines.push(`${p.phase.padEnd(18)}${pad(p.ok, 7)}${pad(p.failed, 7)}${pad(p.retries, 8)}${pad(p.p50Ms, 9)}${pad(p.p99Ms, 9)}${pad(p.maxMs, 9)}  ${Object.entries(p.failures).map(([k, v]) => `${k}×${v}`).join(' ')}`)
  }
  lines.push(`${'whole boot'.padEnd(18)}${pad(s.completed, 7)}${pad(s.failed, 7)}${pad(s.phases.reduce((a, p) => a + p.retries, 0), 8)}${pad(s.perNode.p50Ms, 9)}${pad(s.perNode.p99Ms, 9)}${pad(s.perNode.maxMs, 9)}`)
  return lines.join('\n')
}

/** Completion times (ms from the first arrival) of the nodes that completed, sorted. */
export function completions (nodes: readonly NodeRecord[]): number[] {
  const first = Math.min(...nodes.map((n) => n.arrive))
  return nodes.filter((n) => n.done !== undefined).map((n) => n.done! - first).sort((a, b) => a - b)
}

export interface Curve { label: string; color: string; times: readonly number[]; total: number }

/** Nodes completed over time, one polyline per curve, axes with round ticks. */
export function completionSvg (title: string, curves: readonly Curve[]): string {
  const W = 760; const H = 420; const L = 70; const R = 20; const T = 40; const B = 50
  const maxT = Math.max(1, ...curves.flatMap((c) => c.times)) / 1000
  const maxN = Math.max(1, ...curves.map((c) => c.total))
  const x = (s: number): number => L + (s / maxT) * (W - L - R)
  const y = (n: number): number => H - B - (n / maxN) * (H - T - B)
  const step = (max: number): number => { const raw = max / 6; const p = 10 ** Math.floor(Math.log10(raw)); return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw)! }
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`]
  const ts = step(maxT)
  for (let s = 0; s <= maxT + 1e-9; s += ts) parts.push(`<line x1="${x(s)}" y1="${H - B}" x2="${x(s)}" y2="${H - B + 5}" stroke="black"/><text x="${x(s)}" y="${H - B + 18}" text-anchor="middle">${r1(s)}</text>`)
  const ns = step(maxN)
  for (let n = 0; n <= maxN; n += ns) parts.push(`<line x1="${L - 5}" y1="${y(n)}" x2="${L}" y2="${y(n)}" stroke="black"/><text x="${L - 8}" y="${y(n) + 4}" text-anchor="end">${n}</text><line x1="${L}" y1="${y(n)}" x2="${W - R}" y2="${y(n)}" stroke="#eee"/>`)
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">seconds since the first DISCOVER</text>`)
  parts.push(`<text x="16" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">nodes completed</text>`)
  curves.forEach((c, i) => {
    // at most ~1000 points: every k-th completion, and the last
    const k = Math.max(1, Math.ceil(c.times.length / 1000))
    const pts = ['0,' + y(0).toFixed(1)]
    for (let j = 0; j < c.times.length; j += k) pts.push(`${x(c.times[j]! / 1000).toFixed(1)},${y(j + 1).toFixed(1)}`)
    if (c.times.length > 0) pts.push(`${x(c.times.at(-1)! / 1000).toFixed(1)},${y(c.times.length).toFixed(1)}`)
    parts.push(`<polyline fill="none" stroke="${c.color}" stroke-width="2" points="${pts.join(' ')}"/>`)
    parts.push(`<rect x="${L + 12}" y="${T + 8 + i * 18}" width="14" height="3" fill="${c.color}"/><text x="${L + 32}" y="${T + 13 + i * 18}">${esc(c.label)} (${c.times.length}/${c.total})</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
