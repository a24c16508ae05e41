/**
 * Measurement, not a test: time to fetch a 32 MiB file over loopback from this
 * server and from tftp-hpa's in.tftpd (Debian tftpd-hpa, run in the foreground on
 * a high port, never as the system service), back to back, same client.
 *
 *   npx tsx test/tftp/bench.ts [--runs 5] [--mib 32]
 *
 * Needs root (in.tftpd -s chroots) and the packages tftpd-hpa, curl, atftp.
 */

import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { createTftpServer } from '../../server/tftp/server.js'
import { atftpGet, curlGet, type ClientRun } from './clients.js'
import { pseudoRandomBytes, sha256 } from './helpers.js'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

if (process.env.TAP === '1') {
  // Picked up by `tap test/tftp`: a measurement is not a test.
  console.log('# bench.ts: measurement only, run it with npx tsx')
  process.exit(0)
}

const runs = arg('runs', 5)
const size = arg('mib', 32) * 1024 * 1024
const root = await mkdtemp(path.join(tmpdir(), 'netboot-tftp-bench-'))
const work = await mkdtemp(path.join(tmpdir(), 'netboot-tftp-bench-out-'))
await chmod(root, 0o755)
const data = pseudoRandomBytes(size, 11)
const want = sha256(data)
await writeFile(path.join(root, 'big.bin'), data, { mode: 0o644 })

const ours = createTftpServer({ root, address: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) })
const { port: oursPort } = await ours.start()
const hpaPort = await freePort()
const hpa = spawn('in.tftpd', ['-L', '-s', root, '-a', `127.0.0.1:${hpaPort}`], { stdio: 'ignore' })
await new Promise((resolve) => setTimeout(resolve, 300))

type Fetch = (port: number, out: string) => Promise<ClientRun>
const cases: Array<[string, Fetch]> = [
  ['curl blksize 1468', (port, out) => curlGet(port, 'big.bin', out, { blksize: 1468, timeoutMs: 120_000 })],
  ['curl blksize 512', (port, out) => curlGet(port, 'big.bin', out, { timeoutMs: 120_000 })],
  ['atftp blksize 1468', (port, out) => atftpGet(port, 'big.bin', out, { options: ['blksize 1468'], timeoutMs: 120_000 })],
  ['atftp blksize 1468 windowsize 8', (port, out) => atftpGet(port, 'big.bin', out, { options: ['blksize 1468', 'windowsize 8'], timeoutMs: 120_000 })],
  ['atftp blksize 1468 windowsize 64', (port, out) => atftpGet(port, 'big.bin', out, { options: ['blksize 1468', 'windowsize 64'], timeoutMs: 120_000 })],
]

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

try {
  console.log(`${size / 1048576} MiB over loopback, ${runs} runs each, alternating servers; median (min..max) seconds`)
  for (const [name, fetch] of cases) {
    const times: Record<'netboot' | 'in.tftpd', number[]> = { netboot: [], 'in.tftpd': [] }
    for (let i = 0; i <= runs; i++) {
      for (const [server, port] of [['netboot', oursPort], ['in.tftpd', hpaPort]] as const) {
        const out = path.join(work, 'out')
        await rm(out, { force: true })
        const r = await fetch(port, out)
        if (r.code !== 0 || r.output === null || sha256(r.output) !== want) throw new Error(`${name} from ${server} failed: ${r.text}`)
        if (i > 0) times[server].push(r.ms / 1000) // run 0 warms both up
      }
    }
    const fmt = (xs: number[]): string => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)})`
    console.log(`${name.padEnd(34)} netboot ${fmt(times.netboot)}   in.tftpd ${fmt(times['in.tftpd'])}`)
  }
} finally {
  if (hpa.pid !== undefined) process.kill(hpa.pid, 'SIGTERM')
  await ours.close()
  await rm(root, { recursive: true, force: true })
  await rm(work, { recursive: true, force: true })
}
