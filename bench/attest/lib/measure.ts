/** Timing, CPU and machine-load helpers shared by the benchmark's stages. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { PerformanceObserver, performance, type EventLoopUtilization } from 'node:perf_hooks'

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** Busy and total CPU time of the whole machine, seconds (from /proc/stat). */
export function machineSeconds (): { busy: number; total: number } {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: (total - v[3]! - v[4]!) / CLK_TCK, total: total / CLK_TCK }
}

/** CPU seconds used so far by a process (all its threads), from /proc/PID/stat. */
export function procSeconds (pid: number): number {
  return statSeconds(`/proc/${pid}/stat`)
}

/** utime + stime of a /proc stat file, seconds (0 when it cannot be read: the process is gone). */
function statSeconds (file: string): number {
  try {
    const s = readFileSync(file, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch { return 0 }
}

/**
 * CPU seconds used so far by one thread of a process, from /proc/PID/task/TID/stat:
 * the main thread is the one whose id is the process's. What bounds a server's
 * throughput is its event loop's thread, not the sum over its threads.
 */
export function threadSeconds (pid: number, tid = pid): number {
  return statSeconds(`/proc/${pid}/task/${tid}/stat`)
}

let gcTotalMs = 0
new PerformanceObserver((list) => { for (const e of list.getEntries()) gcTotalMs += e.duration }).observe({ entryTypes: ['gc'] })

/** A measured interval: wall time, this process's CPU (all threads, and its main thread's), event-loop use, time in garbage collection, other processes' CPU. */
export interface Span { wallMs: number; cpuMs: number; mainCpuMs: number; elu: number; gcMs: number; othersCores: number }

export function span (pids: readonly number[] = []): () => Span {
  const gc0 = gcTotalMs
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const t0main = threadSeconds(process.pid)
  const e0 = performance.eventLoopUtilization()
  const m0 = machineSeconds()
  const p0 = [process.pid, ...pids].map(procSeconds)
  return () => {
    const wallMs = performance.now() - t0
    const c = process.cpuUsage(c0)
    const elu: EventLoopUtilization = performance.eventLoopUtilization(e0)
    const m1 = machineSeconds()
    const ours = [process.pid, ...pids].map(procSeconds).reduce((a, b, i) => a + b - p0[i]!, 0)
    const othersCores = Math.max(0, (m1.busy - m0.busy - ours) / (wallMs / 1000))
    return { wallMs, cpuMs: (c.user + c.system) / 1000, mainCpuMs: (threadSeconds(process.pid) - t0main) * 1000, elu: elu.utilization, gcMs: gcTotalMs - gc0, othersCores }
  }
}

/** Runs `f` over `items` with at most `concurrency` calls in flight; results in order. */
export async function pool<T, R> (items: readonly T[], concurrency: number, f: (x: T, i: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const out = new Array<PromiseSettledResult<R>>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      try { out[i] = { status: 'fulfilled', value: await f(items[i]!, i) } } catch (e) { out[i] = { status: 'rejected', reason: e } }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return out
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Error codes of rejected results, counted. */
export function failures (rs: readonly PromiseSettledResult<unknown>[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of rs) {
    if (r.status !== 'rejected') continue
    const e = r.reason as { code?: string; message?: string }
    const k = e?.code ?? e?.message?.slice(0, 60) ?? String(r.reason)
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

export const round = (v: number, digits = 0): number => Math.round(v * 10 ** digits) / 10 ** digits

/**
 * Waits until the other processes on the machine use less than `cores` CPU over a
 * 500 ms window, for at most `maxMs`: others share this machine, and a round
 * measured while they are busy says more about them than about the server.
 */
export async function waitQuiet (cores: number, maxMs: number, pids: readonly number[] = []): Promise<{ waitedMs: number; othersCores: number }> {
  const t0 = Date.now()
  for (;;) {
    const m0 = machineSeconds()
    const p0 = [process.pid, ...pids].map(procSeconds).reduce((a, b) => a + b, 0)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const m1 = machineSeconds()
    const p1 = [process.pid, ...pids].map(procSeconds).reduce((a, b) => a + b, 0)
    const others = Math.max(0, (m1.busy - m0.busy - (p1 - p0)) / 0.5)
    if (others < cores || Date.now() - t0 >= maxMs) return { waitedMs: Date.now() - t0, othersCores: round(others, 2) }
  }
}
