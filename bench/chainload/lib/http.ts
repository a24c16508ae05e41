/**
 * HTTP image throughput: N curl processes download the same URL at once to
 * /dev/null; the figure is N × size / wall time (first start to last end). Each
 * download must be a 200 with exactly `size` bytes. Servers take turns, round
 * after round (order alternating), so load from elsewhere on the machine hits
 * all alike. Per round, the server's CPU (user, system) and minor page faults
 * from /proc/PID/stat (nginx: master and workers).
 */
import { cmd, median, round, statusKb, treeCounters } from './common.js'
import { CLK_TCK } from '../../dhcp/lib/sys.js'

/** netboot and nginx are the comparison; nginx-nosendfile is a reference (read/write like netboot, no goal). */
export type HttpTargetName = 'netboot' | 'nginx' | 'nginx-nosendfile'

async function curl (url: string, size: number, timeoutMs: number): Promise<number> {
  const r = await cmd('curl', ['--noproxy', '*', '-sS', '-o', '/dev/null', '--max-time', String(Math.ceil(timeoutMs / 1000)),
    '-w', '%{http_code} %{size_download} %{speed_download}', url], timeoutMs + 5000)
  const [code, bytes, speed] = r.stdout.trim().split(' ').map(Number)
  if (r.code !== 0 || code !== 200 || bytes !== size) throw new Error(`curl ${url}: exit ${r.code ?? r.signal}, got '${r.stdout.trim()}' (want 200 ${size}) ${r.stderr.trim()}`)
  return speed!
}

export interface Round {
  clients: number
  seconds: number
  /** aggregate, 10^6 bytes per second */
  mbps: number
  perClientMbps: number[]
  /** server CPU over the round, seconds */
  userSeconds: number
  sysSeconds: number
  minorFaults: number
  /** netboot only: V8 collections during the round, from its own /metrics (prom-client's nodejs_gc_duration_seconds) */
  gc?: GcCounts
}

export interface GcCounts { major: number; minor: number; incremental: number; seconds: number }

/** GC counts and total seconds by kind from netboot's admin /metrics. */
export async function netbootGc (adminUrl: string, token: string): Promise<GcCounts> {
  const r = await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
  const text = await r.text()
  const out: GcCounts = { major: 0, minor: 0, incremental: 0, seconds: 0 }
  for (const m of text.matchAll(/^netboot_nodejs_gc_duration_seconds_(count|sum)\{kind="(\w+)"\} (\S+)$/gm)) {
    if (m[1] === 'sum') out.seconds += Number(m[3])
    else if (m[2] === 'major' || m[2] === 'minor' || m[2] === 'incremental') out[m[2]] += Number(m[3])
  }
  return out
}

/** One round: `clients` downloads at once. */
export async function downloadRound (url: string, size: number, clients: number, pid: number, timeoutMs: number, onTick?: () => void, gcProbe?: () => Promise<GcCounts>): Promise<Round> {
  const g0 = gcProbe !== undefined ? await gcProbe() : undefined
  const c0 = treeCounters(pid)
  const sampler = onTick !== undefined ? setInterval(onTick, 50) : undefined
  const t0 = performance.now()
  try {
    const speeds = await Promise.all(Array.from({ length: clients }, async () => await curl(url, size, timeoutMs)))
    const s = (performance.now() - t0) / 1000
    const c1 = treeCounters(pid)
    const g1 = gcProbe !== undefined ? await gcProbe() : undefined
    return {
      ...(g0 !== undefined && g1 !== undefined ? { gc: { major: g1.major - g0.major, minor: g1.minor - g0.minor, incremental: g1.incremental - g0.incremental, seconds: round(g1.seconds - g0.seconds, 3) } } : {}),
      clients, seconds: round(s, 3), mbps: round(clients * size / 1e6 / s, 0),
      perClientMbps: speeds.map((x) => round(x / 1e6, 0)),
      userSeconds: round((c1.utime - c0.utime) / CLK_TCK, 2),
      sysSeconds: round((c1.stime - c0.stime) / CLK_TCK, 2),
      minorFaults: c1.minflt - c0.minflt,
    }
  } finally {
    if (sampler !== undefined) clearInterval(sampler)
  }
}

export interface HttpTarget { name: HttpTargetName; url: string; pid: number; what: string; gcProbe?: () => Promise<GcCounts> }

export interface HttpResult {
  clients: number
  targets: Record<string, { url: string; what: string }>
  rounds: Record<string, Round[]>
  /** median of the rounds' aggregate MB/s (1 MB = 10^6 bytes) */
  mbps: Record<string, number>
  /** server CPU seconds (user + system) per GiB sent, and the system part; median of rounds */
  cpuSecondsPerGiB: Record<string, { total: number; sys: number }>
  /** server minor page faults per GiB sent, median of rounds */
  minorFaultsPerGiB: Record<string, number>
  /** netboot's major (mark-compact) collections per GiB sent, median of rounds */
  netbootMajorGcPerGiB?: number
  /** netboot / nginx */
  ratio: number
}

export async function measureHttp (o: {
  targets: HttpTarget[]
  size: number
  clients: number
  rounds: number
  timeoutMs: number
  /** called every 50 ms while netboot serves (to sample its RSS) */
  onNetbootTick?: () => void
  progress: (s: string) => void
}): Promise<HttpResult> {
  const rounds: Record<string, Round[]> = Object.fromEntries(o.targets.map((t) => [t.name, []]))
  for (let i = 0; i < o.rounds; i++) {
    const order = i % 2 === 0 ? o.targets : [...o.targets].reverse()
    for (const t of order) {
      const r = await downloadRound(t.url, o.size, o.clients, t.pid, o.timeoutMs, t.name === 'netboot' ? o.onNetbootTick : undefined, t.gcProbe)
      rounds[t.name]!.push(r)
      o.progress(`  http ${o.clients} client${o.clients > 1 ? 's' : ' '} round ${i + 1}/${o.rounds} ${t.name.padEnd(16)} ${String(r.mbps).padStart(6)} MB/s (${r.seconds.toFixed(2)} s; server CPU user ${r.userSeconds.toFixed(2)} s, sys ${r.sysSeconds.toFixed(2)} s${r.gc !== undefined ? `; GC: ${r.gc.major} major, ${r.gc.minor} minor, ${r.gc.seconds} s` : ''})`)
    }
  }
  const gib = o.clients * o.size / 2 ** 30
  const names = o.targets.map((t) => t.name)
  const mbps = Object.fromEntries(names.map((n) => [n, median(rounds[n]!.map((r) => r.mbps))]))
  return {
    clients: o.clients,
    targets: Object.fromEntries(o.targets.map((t) => [t.name, { url: t.url, what: t.what }])),
    rounds, mbps,
    cpuSecondsPerGiB: Object.fromEntries(names.map((n) => [n, {
      total: round(median(rounds[n]!.map((r) => r.userSeconds + r.sysSeconds)) / gib, 3),
      sys: round(median(rounds[n]!.map((r) => r.sysSeconds)) / gib, 3),
    }])),
    minorFaultsPerGiB: Object.fromEntries(names.map((n) => [n, Math.round(median(rounds[n]!.map((r) => r.minorFaults)) / gib)])),
    ...(rounds.netboot!.every((r) => r.gc !== undefined) ? { netbootMajorGcPerGiB: round(median(rounds.netboot!.map((r) => r.gc!.major)) / gib, 1) } : {}),
    ratio: round(mbps.netboot! / mbps.nginx!, 2),
  }
}

/** RSS sampler for one process: max VmRSS seen, in kB. */
export function rssSampler (pid: number): { tick: () => void; maxKb: () => number } {
  let max = 0
  return { tick: () => { max = Math.max(max, statusKb(pid, 'VmRSS') ?? 0) }, maxKb: () => max }
}
