/**
 * Processes, namespaces and /proc readings for the DHCP benchmark. Everything it
 * starts is remembered here (child pids, namespaces, a veth pair) so that one
 * synchronous cleanup can remove it all, on success, failure, or Ctrl-C.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

const children = new Set<ChildProcess>()
const finals: (() => void)[] = []
let niceness = 0

/** Commands started through `inNs` run under `nice -n n` (all their threads inherit it). */
export function setNice (n: number): void { niceness = n }

/** `ip netns exec NS [nice -n N] cmd args…`: exec all the way, so the pid is the command's own. */
export function inNs (ns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, ...(niceness !== 0 ? ['nice', '-n', String(niceness)] : []), cmd, ...args]]
}

/** Runs at the end of cleanup (synchronous). */
export function onCleanup (f: () => void): void { finals.push(f) }
const namespaces: string[] = []
const links: string[] = []
let cleaned = false

export function sh (cmd: string, args: readonly string[], timeoutMs = 30_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Spawns a child and tracks it; it is SIGKILLed at cleanup if still running. */
export function track (cmd: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const c = spawn(cmd, args, opts)
  children.add(c)
  c.once('exit', () => children.delete(c))
  return c
}

export function alive (c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopChild (c: ChildProcess, graceMs = 10_000): Promise<void> {
  if (!alive(c)) return
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
  c.kill('SIGTERM')
  const t = setTimeout(() => { if (alive(c)) c.kill('SIGKILL') }, graceMs)
  await exited
  clearTimeout(t)
}

/** Children of `pid` (by parent pid), for killing a wrapper's child by its own pid. */
export function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch { return [] }
}

export interface Topology { server: string; client: string }

/**
 * Two namespaces joined by a veth pair: server `prov0` 10.98.0.1/16, client
 * `eth0` 10.98.0.2/16. Private addresses that exist only inside them.
 */
export function makeTopology (): Topology {
  const tag = Math.random().toString(16).slice(2, 8)
  const t = { server: `nbb-srv-${tag}`, client: `nbb-cli-${tag}` }
  for (const ns of [t.server, t.client]) {
    sh('ip', ['netns', 'add', ns])
    namespaces.push(ns)
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  }
  const a = `nbbs${tag}`; const b = `nbbc${tag}`
  sh('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b])
  links.push(a)
  sh('ip', ['link', 'set', a, 'netns', t.server, 'name', 'prov0'])
  sh('ip', ['link', 'set', b, 'netns', t.client, 'name', 'eth0'])
  links.pop()
  sh('ip', ['-n', t.server, 'addr', 'add', '10.98.0.1/16', 'dev', 'prov0'])
  sh('ip', ['-n', t.client, 'addr', 'add', '10.98.0.2/16', 'dev', 'eth0'])
  sh('ip', ['-n', t.server, 'link', 'set', 'prov0', 'up'])
  sh('ip', ['-n', t.client, 'link', 'set', 'eth0', 'up'])
  return t
}

/** Kills every tracked child (by pid), then deletes the namespaces (and the veth with them). Synchronous. */
export function cleanup (): void {
  if (cleaned) return
  cleaned = true
  for (const c of children) {
    if (!alive(c) || c.pid === undefined) continue
    for (const p of childPids(c.pid)) { try { process.kill(p, 'SIGKILL') } catch {} }
    try { process.kill(c.pid, 'SIGKILL') } catch {}
  }
  // the kernel needs the processes gone before a namespace is really freed
  const deadline = Date.now() + 3000
  while ([...children].some((c) => c.pid !== undefined && existsSync(`/proc/${c.pid}`) && !isZombie(c.pid)) && Date.now() < deadline) {
    execFileSync('sleep', ['0.05'])
  }
  for (const l of links) { try { sh('ip', ['link', 'del', l]) } catch {} }
  for (const ns of namespaces.splice(0)) { try { sh('ip', ['netns', 'del', ns]) } catch (e) { process.stderr.write(`cleanup: ip netns del ${ns}: ${String(e)}\n`) } }
  for (const f of finals.splice(0)) { try { f() } catch {} }
}

function isZombie (pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true } catch { return true }
}

export function installCleanupHandlers (): void {
  process.once('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping servers and removing namespaces\n`)
      cleanup()
      process.exit(130)
    })
  }
  process.on('uncaughtException', (e) => { process.stderr.write(`${e.stack ?? String(e)}\n`); cleanup(); process.exit(1) })
  process.on('unhandledRejection', (e) => { process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`); cleanup(); process.exit(1) })
}

/** utime+stime of a process (all its threads), in clock ticks; undefined when it is gone. */
export function procTicks (pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    // f[0] is field 3 (state): utime is field 14, stime 15
    return Number(f[11]) + Number(f[12])
  } catch { return undefined }
}

export function procComm (pid: number): string {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() } catch { return '?' }
}

/** Machine-wide CPU ticks: busy (everything but idle and iowait) and total. */
export function machineTicks (): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: total - v[3]! - v[4]!, total }
}

export async function waitFor (what: string, ok: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
