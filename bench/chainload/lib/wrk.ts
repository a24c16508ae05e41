/**
 * Boot-script requests/s: wrk (keep-alive, fixed connections) against
 * GET /boot/<mac> on netboot and the same bytes as a static file on nginx; servers
 * take turns, round after round. Every non-2xx answer or socket error is counted
 * and reported (a round with any is marked).
 */
import { cmd, median, round } from './common.js'

export interface WrkRun {
  rps: number
  requests: number
  seconds: number
  latencyMs: { p50: number; p75: number; p90: number; p99: number; max: number }
  non2xx: number
  socketErrors: number
  raw: string
}

const UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }
const ms = (v: string): number => {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim())
  return m === null ? NaN : Number(m[1]) * UNIT[m[2]!]!
}

export function parseWrk (out: string): WrkRun {
  const num = (re: RegExp): number => { const m = re.exec(out); return m === null ? NaN : Number(m[1]) }
  const pct = (p: string): number => { const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out); return m === null ? NaN : ms(m[1]!) }
  const lat = /^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(out)
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const done = /(\d+) requests in ([\d.]+)(s|m|ms)/.exec(out)
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: done === null ? NaN : Number(done[1]),
    seconds: done === null ? NaN : ms(`${done[2]}${done[3]}`) / 1000,
    latencyMs: { p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99'), max: lat === null ? NaN : ms(lat[3]!) },
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
    socketErrors: se === null ? 0 : se.slice(1).map(Number).reduce((a, b) => a + b, 0),
    raw: out,
  }
}

export async function wrk (url: string, o: { threads: number; connections: number; seconds: number }): Promise<WrkRun> {
  const r = await cmd('wrk', [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '--timeout', '5s', url], (o.seconds + 30) * 1000)
  if (r.code !== 0) throw new Error(`wrk ${url}: exit ${r.code ?? r.signal}: ${r.stderr}${r.stdout}`)
  const w = parseWrk(r.stdout)
  if (!Number.isFinite(w.rps)) throw new Error(`wrk ${url}: could not read its output:\n${r.stdout}`)
  return w
}

/** netboot and nginx are the comparison; the others are references that locate the cost (no goal). */
export type WrkTargetName = 'netboot' | 'nginx' | 'netboot-healthz' | 'node-http'

export interface WrkResult {
  threads: number
  connections: number
  seconds: number
  targets: Record<string, { url: string; what: string }>
  rounds: Record<string, Omit<WrkRun, 'raw'>[]>
  /** median requests/s of the rounds */
  rps: Record<string, number>
  /** latency of the round with the median requests/s */
  latencyMs: Record<string, WrkRun['latencyMs']>
  /** non-2xx answers and socket errors, all rounds */
  errors: Record<string, number>
  /** netboot / nginx */
  ratio: number
}

export async function measureWrk (o: {
  targets: { name: WrkTargetName; url: string; what: string }[]
  threads: number
  connections: number
  seconds: number
  warmupSeconds: number
  rounds: number
  progress: (s: string) => void
}): Promise<WrkResult> {
  const opts = { threads: o.threads, connections: o.connections }
  if (o.warmupSeconds > 0) for (const t of o.targets) await wrk(t.url, { ...opts, seconds: o.warmupSeconds })
  const rounds: Record<string, Omit<WrkRun, 'raw'>[]> = Object.fromEntries(o.targets.map((t) => [t.name, []]))
  for (let i = 0; i < o.rounds; i++) {
    const order = i % 2 === 0 ? o.targets : [...o.targets].reverse()
    for (const t of order) {
      const { raw: _raw, ...w } = await wrk(t.url, { ...opts, seconds: o.seconds })
      rounds[t.name]!.push(w)
      o.progress(`  wrk round ${i + 1}/${o.rounds} ${t.name.padEnd(15)} ${String(Math.round(w.rps)).padStart(6)} req/s  p50 ${w.latencyMs.p50.toFixed(2)} ms  p99 ${w.latencyMs.p99.toFixed(2)} ms${w.non2xx + w.socketErrors > 0 ? `  ERRORS non-2xx ${w.non2xx} socket ${w.socketErrors}` : ''}`)
    }
  }
  const pick = (s: string): Omit<WrkRun, 'raw'> => {
    const sorted = [...rounds[s]!].sort((a, b) => a.rps - b.rps)
    return sorted[Math.floor((sorted.length - 1) / 2)]!
  }
  const names = o.targets.map((t) => t.name)
  const rps = Object.fromEntries(names.map((n) => [n, round(median(rounds[n]!.map((r) => r.rps)), 0)]))
  return {
    threads: o.threads, connections: o.connections, seconds: o.seconds,
    targets: Object.fromEntries(o.targets.map((t) => [t.name, { url: t.url, what: t.what }])),
    rounds, rps,
    latencyMs: Object.fromEntries(names.map((n) => [n, pick(n).latencyMs])),
    errors: Object.fromEntries(names.map((n) => [n, rounds[n]!.reduce((k, r) => k + r.non2xx + r.socketErrors, 0)])),
    ratio: round(rps.netboot! / rps.nginx!, 2),
  }
}
