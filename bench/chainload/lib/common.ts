/**
 * Small helpers of the chainload benchmark: free loopback ports, commands with a
 * hard time limit, /proc readings (memory, CPU), statistics. Process tracking and
 * cleanup come from bench/dhcp/lib/sys.ts (every child it starts is killed by pid
 * at exit, on failure and on Ctrl-C).
 */
import { createServer } from 'node:net'
import dgram from 'node:dgram'
import { readFileSync, writeFileSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { childPids } from '../../dhcp/lib/sys.js'

export const LOOPBACK = '127.0.0.1'

export async function freeTcpPort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, LOOPBACK, () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

export async function freeUdpPort (): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, LOOPBACK, resolve))
  const { port } = s.address()
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** The environment without proxy variables: every request here goes to 127.0.0.1. */
export function noProxyEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)))
}

export interface CmdResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** Runs a command with a hard time limit (killed by its pid when it passes). */
export async function cmd (file: string, args: readonly string[], timeoutMs: number): Promise<CmdResult> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: noProxyEnv() })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL') }, timeoutMs)
    child.once('error', (e) => { clearTimeout(timer); reject(e) })
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, ms: performance.now() - started }) })
  })
}

export async function waitForHttp (url: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) })
      await r.arrayBuffer()
      if (r.ok) return
    } catch { /* not yet */ }
    if (!alive()) throw new Error(`the server exited before answering ${url}`)
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** A field of /proc/PID/status in kB (VmHWM, VmRSS); undefined when the process is gone. */
export function statusKb (pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1])
  } catch { return undefined }
}

/** Resets VmHWM to the current RSS (clear_refs "5", Linux ≥ 4.0); false if the kernel refused. */
export function resetPeakRss (pid: number): boolean {
  try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); return true } catch { return false }
}

export interface ProcCounters { utime: number; stime: number; minflt: number }

/** utime, stime (clock ticks) and minor page faults of a process; zeros when it is gone. */
export function procCounters (pid: number): ProcCounters {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    // f[0] is field 3 (state): minflt is field 10, utime 14, stime 15
    return { minflt: Number(f[7]), utime: Number(f[11]), stime: Number(f[12]) }
  } catch { return { utime: 0, stime: 0, minflt: 0 } }
}

/** The counters of a process and its direct children (nginx master + workers), summed. */
export function treeCounters (pid: number): ProcCounters {
  return [pid, ...childPids(pid)].map(procCounters).reduce((a, b) => ({ utime: a.utime + b.utime, stime: a.stime + b.stime, minflt: a.minflt + b.minflt }))
}

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

export function loadAvg (): [number, number, number] {
  const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number)
  return [a!, b!, c!]
}

export function versionOf (file: string, args: string[], pick: RegExp): string {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 5000 })
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`
  if (r.error !== undefined) return '?'
  return pick.exec(text)?.[1] ?? text.split('\n')[0]!.trim()
}
