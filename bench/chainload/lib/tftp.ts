/**
 * TFTP: time to fetch a file with atftp from netboot and from tftpd-hpa, back to
 * back (the client runs alternate between the servers, in ABBA order), for each
 * blksize × windowsize. Every fetched copy is checked by sha256. Lock-step TFTP
 * on loopback is bound by how fast an idle CPU wakes up, so only the ratio of
 * two servers measured in the same minute means anything, never a fixed figure.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { atftpGet } from '../../../test/tftp/clients.js'
import { run } from '../../../test/tftp/helpers.js'
import { sha256 } from '../../../test/tftp/helpers.js'
import { LOOPBACK, median, round } from './common.js'

export type TftpServerName = 'netboot' | 'tftpd-hpa'

export interface TftpFile { name: string; label: string; size: number; sha256: string }
export interface TftpCase { file: string; label: string; size: number; blksize: number; windowsize: number }

export interface TftpCaseResult extends TftpCase {
  runs: number
  seconds: Record<TftpServerName, number[]>
  median: Record<TftpServerName, number>
  mbps: Record<TftpServerName, number>
  /** tftpd-hpa median / netboot median: above 1, netboot is faster */
  speedup: number
}

export interface Negotiation { server: TftpServerName; asked: string; oack: string }

/** What each server answers to blksize 1468 + windowsize 16 (atftp --trace shows the OACK). */
export async function negotiation (server: TftpServerName, port: number, file: string, out: string): Promise<Negotiation> {
  const asked = 'blksize 1468, windowsize 16'
  const r = await run('atftp', ['--trace', '--verbose', '--get', '-r', file, '-l', out, '--option', 'blksize 1468', '--option', 'windowsize 16', LOOPBACK, String(port)], { timeoutMs: 60_000 })
  await rm(out, { force: true })
  const m = /received OACK <([^>]*)>/.exec(r.stdout + r.stderr)
  return { server, asked, oack: m === null ? '(no OACK)' : m[1]!.replace(/,\s*$/, '').trim() }
}

export async function measureTftp (o: {
  files: TftpFile[]
  blksizes: number[]
  windowsizes: number[]
  runs: number
  /** files smaller than 4 MiB get this many times `runs` (a run takes a tenth of a second; the machine is noisy) */
  smallFileFactor: number
  warmup: boolean
  ports: Record<TftpServerName, number>
  work: string
  progress: (s: string) => void
}): Promise<TftpCaseResult[]> {
  const results: TftpCaseResult[] = []
  const out = join(o.work, 'tftp-out')
  for (const f of o.files) {
    for (const blksize of o.blksizes) {
      for (const windowsize of o.windowsizes) {
        const seconds: Record<TftpServerName, number[]> = { netboot: [], 'tftpd-hpa': [] }
        const once = async (server: TftpServerName): Promise<number> => {
          await rm(out, { force: true })
          const r = await atftpGet(o.ports[server], f.name, out, {
            options: [`blksize ${blksize}`, `windowsize ${windowsize}`],
            timeoutMs: Math.max(60_000, f.size / 1000), // ≥ 1 MB/s or it is a failure anyway
          })
          if (r.code !== 0 || r.output === null || sha256(r.output) !== f.sha256) {
            throw new Error(`atftp ${f.name} blksize ${blksize} windowsize ${windowsize} from ${server}: exit ${r.code ?? r.signal}, ${r.output === null ? 'no file' : `${r.output.length} bytes, sha256 ${r.output.length === f.size ? 'mismatch' : 'short'}`}: ${r.text.slice(0, 300)}`)
          }
          return r.ms / 1000
        }
        if (o.warmup) { await once('netboot'); await once('tftpd-hpa') }
        const runs = f.size < 4 * 1024 * 1024 ? o.runs * o.smallFileFactor : o.runs
        for (let i = 0; i < runs; i++) {
          const order: TftpServerName[] = i % 2 === 0 ? ['netboot', 'tftpd-hpa'] : ['tftpd-hpa', 'netboot']
          for (const s of order) seconds[s].push(await once(s))
        }
        await rm(out, { force: true })
        const med = { netboot: median(seconds.netboot), 'tftpd-hpa': median(seconds['tftpd-hpa']) }
        const r: TftpCaseResult = {
          file: f.name, label: f.label, size: f.size, blksize, windowsize, runs,
          seconds: { netboot: seconds.netboot.map((x) => round(x, 4)), 'tftpd-hpa': seconds['tftpd-hpa'].map((x) => round(x, 4)) },
          median: { netboot: round(med.netboot, 4), 'tftpd-hpa': round(med['tftpd-hpa'], 4) },
          mbps: { netboot: round(f.size / 1e6 / med.netboot, 1), 'tftpd-hpa': round(f.size / 1e6 / med['tftpd-hpa'], 1) },
          speedup: round(med['tftpd-hpa'] / med.netboot, 2),
        }
        results.push(r)
        o.progress(`  tftp ${f.label.padEnd(16)} blksize ${String(blksize).padStart(4)} windowsize ${String(windowsize).padStart(2)}: netboot ${r.median.netboot.toFixed(3)} s, tftpd-hpa ${r.median['tftpd-hpa'].toFixed(3)} s`)
      }
    }
  }
  return results
}
