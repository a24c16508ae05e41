/** Shared fixtures for the TFTP tests: temp roots, a server on a loopback port, real-client runs, a scriptable client. */

import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import dgram from 'node:dgram'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'
import { decodePacket, encodeAck, encodeRequest, type TftpOption, type TftpPacket } from '../../server/tftp/codec.js'
import { createTftpServer, type TftpServer, type TftpServerOptions } from '../../server/tftp/server.js'
import { createTftpWorker } from '../../server/tftp/worker-host.js'

type Tap = {
  teardown(fn: () => unknown): void
  fail(message: string): void
}

export const LOOPBACK = '127.0.0.1'

/** Polls `cond` every 5 ms; resolves false after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return true
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Deterministic pseudo-random bytes (mulberry32), so fixture files are reproducible. */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length)
  let a = seed >>> 0
  let i = 0
  while (i + 4 <= length) {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    out.writeUInt32LE((x ^ (x >>> 14)) >>> 0, i)
    i += 4
  }
  for (; i < length; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

/** A fresh directory under the OS temp dir, removed at teardown. */
export async function tempDir(t: Tap, prefix = 'netboot-tftp-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function writeFiles(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content)
}

/** A pino logger that keeps every line as parsed JSON, for asserting on log output. */
export function memoryLogger(level: pino.LevelWithSilent = 'debug'): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { log: pino({ level }, stream), lines }
}

/** The two ways netboot runs the engine: on the main event loop, or in its own thread (worker-host.ts). */
export const MODES = [
  { worker: false, name: 'in-process' },
  { worker: true, name: 'worker thread' },
] as const

/**
 * A server on a loopback port, closed at teardown. `worker: true` runs it in a
 * worker thread: virtual files then cross as bytes, so each generator is called
 * once here (with a loopback peer) for its content.
 */
export async function startServer(
  t: Tap,
  opts: Partial<TftpServerOptions> & { root: string; worker?: boolean },
): Promise<{ server: TftpServer; port: number }> {
  const { worker, virtualFiles, ...rest } = opts
  const base = { address: LOOPBACK, port: 0, log: pino({ level: 'silent' }), ...rest }
  let server: TftpServer
  if (worker === true) {
    const entries = virtualFiles instanceof Map ? [...virtualFiles] : Object.entries(virtualFiles ?? {})
    const bytes: Record<string, Buffer> = {}
    for (const [name, fn] of entries) bytes[name] = await fn({ peer: { address: LOOPBACK, port: 0 } })
    server = createTftpWorker({ ...base, virtualFiles: bytes })
  } else {
    server = createTftpServer({ ...base, ...(virtualFiles !== undefined ? { virtualFiles } : {}) })
  }
  const { port } = await server.start()
  t.teardown(() => server.close())
  return { server, port }
}

/** Fails the test (never skips) when a real client the suite relies on is missing. */
export function requireTools(t: Tap, tools: readonly string[]): boolean {
  const missing = tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
  if (missing.length > 0) {
    t.fail(`missing ${missing.join(', ')}: apt-get install -y tftp-hpa atftp curl`)
    return false
  }
  return true
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs a command with a hard time limit; the child is killed by its pid when the limit passes. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string; cwd?: string } = {}): Promise<RunResult> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    }, opts.timeoutMs ?? 60_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started })
    })
    // a child that exits before reading its stdin (atftp --get) makes this write fail with EPIPE: not an error of the run
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

export interface Received {
  packet: TftpPacket | null
  raw: Buffer
  from: { address: string; port: number }
}

/** A UDP client whose every step is explicit, for crafted-protocol tests. */
export class ScriptedClient {
  readonly socket = dgram.createSocket('udp4')
  private readonly inbox: Received[] = []
  private waiter: (() => void) | undefined

  static async open(): Promise<ScriptedClient> {
    const c = new ScriptedClient()
    await new Promise<void>((resolve) => c.socket.bind(0, LOOPBACK, resolve))
    c.socket.on('message', (raw, rinfo) => {
      const d = decodePacket(raw)
      c.inbox.push({ packet: d.ok ? d.value : null, raw, from: { address: rinfo.address, port: rinfo.port } })
      c.waiter?.()
    })
    return c
  }

  get port(): number {
    return this.socket.address().port
  }

  /** Resolves once the datagram has left (close() right after an unawaited send may drop it). */
  send(buf: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve) => this.socket.send(buf, port, LOOPBACK, () => resolve()))
  }

  rrq(port: number, filename: string, options: readonly TftpOption[] = [], mode = 'octet'): Promise<void> {
    return this.send(encodeRequest({ op: 'RRQ', filename, mode, options }), port)
  }

  /** The next datagram, or null after `timeoutMs` of silence. */
  async next(timeoutMs = 2000): Promise<Received | null> {
    const deadline = Date.now() + timeoutMs
    while (this.inbox.length === 0) {
      const left = deadline - Date.now()
      if (left <= 0) return null
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.waiter = undefined
    }
    return this.inbox.shift()!
  }

  /** Exactly `n` datagrams; throws if they do not all arrive within `timeoutMs`. */
  async take(n: number, timeoutMs = 2000): Promise<Received[]> {
    const out: Received[] = []
    const deadline = Date.now() + timeoutMs
    while (out.length < n) {
      const r = await this.next(Math.max(1, deadline - Date.now()))
      if (r === null) throw new Error(`got ${out.length} of ${n} datagrams`)
      out.push(r)
    }
    return out
  }

  /** Everything that arrives within `ms`. */
  async drain(ms: number): Promise<Received[]> {
    const out: Received[] = this.inbox.splice(0)
    const deadline = Date.now() + ms
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) return out
      const r = await this.next(left)
      if (r === null) return out
      out.push(r)
    }
  }

  close(): void {
    this.socket.close()
  }
}

export interface FetchResult {
  data: Buffer
  oack: readonly TftpOption[] | null
  dataPackets: number
  tid: number
}

/**
 * A complete, well-behaved RRQ download (RFC 1350 / RFC 7440 receiver), bounded
 * in packets and time. Throws on ERROR or silence.
 */
export async function fetchWithClient(
  port: number,
  filename: string,
  options: readonly TftpOption[] = [],
  limits: { maxPackets?: number; silenceMs?: number } = {},
): Promise<FetchResult> {
  const c = await ScriptedClient.open()
  try {
    c.rrq(port, filename, options)
    const chunks: Buffer[] = []
    let oack: readonly TftpOption[] | null = null
    let blksize = 512
    let windowsize = 1
    let expected = 1
    let inWindow = 0
    let dataPackets = 0
    let tid = 0
    const maxPackets = limits.maxPackets ?? 1_000_000
    for (let i = 0; i < maxPackets; i++) {
      const r = await c.next(limits.silenceMs ?? 3000)
      if (r === null) throw new Error(`silence after ${dataPackets} DATA packets`)
      if (tid === 0) tid = r.from.port
      const p = r.packet
      if (p === null) throw new Error('undecodable packet from server')
      if (p.op === 'ERROR') throw Object.assign(new Error(`ERROR ${p.code}: ${p.message}`), { tftpCode: p.code })
      if (p.op === 'OACK') {
        oack = p.options
        for (const o of p.options) {
          if (o.name === 'blksize') blksize = Number(o.value)
          if (o.name === 'windowsize') windowsize = Number(o.value)
        }
        c.send(encodeAck(0), tid)
        continue
      }
      if (p.op !== 'DATA') continue
      dataPackets++
      if (p.block !== (expected & 0xffff)) {
        // RFC 7440 §4: out of order, acknowledge the last block received in order.
        c.send(encodeAck((expected - 1) & 0xffff), tid)
        inWindow = 0
        continue
      }
      chunks.push(Buffer.from(p.data))
      expected++
      inWindow++
      const last = p.data.length < blksize
      if (last || inWindow === windowsize) {
        await c.send(encodeAck(p.block), tid)
        inWindow = 0
      }
      if (last) return { data: Buffer.concat(chunks), oack, dataPackets, tid }
    }
    throw new Error('packet limit reached')
  } finally {
    c.close()
  }
}
