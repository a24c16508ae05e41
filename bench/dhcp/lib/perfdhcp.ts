/**
 * Runs ISC perfdhcp in the client namespace and parses its report.
 *
 * perfdhcp runs under a small sh wrapper that, after perfdhcp has exited and been
 * reaped, prints its own /proc/self/stat: the cutime+cstime there is perfdhcp's
 * CPU time, which we report so a reader can see when the client, not the server,
 * was the limit.
 */
import { track, childPids, alive, inNs } from './sys.js'

export interface Section {
  sent: number
  received: number
  drops: number
  orphans: number
  rejected: number
  nonUnique: number
  minMs: number
  avgMs: number
  maxMs: number
  stdMs: number
}

export interface PerfRun {
  args: string[]
  rc: number | null
  timedOut: boolean
  /** perfdhcp's own "Rate:" line (4-way exchanges/s it reports). */
  reportedRate: number
  do: Section
  ra: Section
  /** perfdhcp's CPU time, clock ticks (utime+stime of the process and its threads). */
  clientTicks: number | undefined
  /** "-x l": ACKed leases, client-id (hex, 01 + MAC) to address. */
  leases: { clientId: string; address: string }[]
  /** The report, without the lease list. */
  report: string
}

export interface PerfOptions {
  ns: string
  iface: string
  macFile: string
  rate: number
  seconds: number
  leases?: boolean
  extra?: string[]
}

const MARK = '@@NBB-WRAPPER-STAT '

export async function perfdhcp (o: PerfOptions): Promise<PerfRun> {
  const args = ['-4', '-l', o.iface, '-r', String(o.rate), '-p', String(o.seconds), '-M', o.macFile,
    ...(o.leases === true ? ['-x', 'l'] : []), ...(o.extra ?? [])]
  const script = `perfdhcp "$@"; rc=$?; echo "${MARK}$(cat /proc/$$/stat)" >&2; exit $rc`
  const c = track(...inNs(o.ns, 'sh', ['-c', script, 'sh', ...args]), { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  c.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  c.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  let timedOut = false
  // bounded: the test period plus start-up, drain and the exit report
  const limit = setTimeout(() => {
    timedOut = true
    if (c.pid !== undefined && alive(c)) {
      for (const p of childPids(c.pid)) { try { process.kill(p, 'SIGKILL') } catch {} }
      c.kill('SIGKILL')
    }
  }, (o.seconds + 20) * 1000)
  const rc = await new Promise<number | null>((resolve) => c.once('close', (code) => resolve(code)))
  clearTimeout(limit)
  const statLine = err.split('\n').find((l) => l.startsWith(MARK))
  let clientTicks: number | undefined
  if (statLine !== undefined) {
    const s = statLine.slice(MARK.length)
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    clientTicks = Number(f[13]) + Number(f[14]) // cutime, cstime (fields 16, 17)
  }
  const stderr = err.split('\n').filter((l) => !l.startsWith(MARK)).join('\n').trim()
  const leaseAt = out.indexOf('***Leases for')
  const report = (leaseAt >= 0 ? out.slice(0, leaseAt) : out).trim() + (stderr !== '' ? `\n[stderr] ${stderr}` : '')
  const parsed = parseReport(out)
  if (parsed === undefined) throw new Error(`perfdhcp ${args.join(' ')}: no report (rc ${rc}${timedOut ? ', timed out' : ''}):\n${report.slice(-2000)}`)
  return { args, rc, timedOut, ...parsed, clientTicks, leases: parseLeases(out), report }
}

export function parseReport (out: string): { reportedRate: number; do: Section; ra: Section } | undefined {
  const rate = /Rate:\s*([\d.]+)\s+4-way/.exec(out)
  const doAt = out.indexOf('***Statistics for: DISCOVER-OFFER***')
  const raAt = out.indexOf('***Statistics for: REQUEST-ACK***')
  if (doAt < 0 || raAt < 0) return undefined
  const lAt = out.indexOf('***Leases for')
  return {
    reportedRate: rate !== null ? Number(rate[1]) : NaN,
    do: section(out.slice(doAt, raAt)),
    ra: section(out.slice(raAt, lAt > raAt ? lAt : undefined)),
  }
}

function section (s: string): Section {
  const num = (label: string): number => {
    const m = new RegExp(`^${label}:\\s*([\\d.]+)`, 'm').exec(s)
    return m !== null ? Number(m[1]) : NaN
  }
  return {
    sent: num('sent packets'),
    received: num('received packets'),
    drops: num('drops'),
    orphans: num('orphans'),
    rejected: num('rejected leases'),
    nonUnique: num('non unique addresses'),
    minMs: num('min delay'),
    avgMs: num('avg delay'),
    maxMs: num('max delay'),
    stdMs: num('std deviation'),
  }
}

function parseLeases (out: string): { clientId: string; address: string }[] {
  const at = out.indexOf('***Leases for REQUEST-ACK***')
  if (at < 0) return []
  const rows: { clientId: string; address: string }[] = []
  for (const line of out.slice(at).split('\n').slice(2)) {
    const m = /^([0-9a-f]*),(\d+\.\d+\.\d+\.\d+),/.exec(line.trim())
    if (m !== null) rows.push({ clientId: m[1]!, address: m[2]! })
  }
  return rows
}
