/**
 * The TFTP server in a worker thread (worker.ts), seen from the main thread as a
 * TftpServer. Why: lock-step TFTP sends one block per ACK, so every ACK that
 * waits behind HTTP, DHCP or attestation work on a shared event loop slows its
 * transfer; in the 10,000-node whole-plane storm TFTP fell from ~800 to 50-80
 * transfers/s and half the nodes gave up at the ROM's deadline
 * (docs/bench-storm.md). On its own loop (its own dgram sockets: the well-known
 * port and every transfer port) an ACK waits only for other TFTP work.
 *
 * Contract (what differs from createTftpServer):
 * - Options are the same, except virtual files, which are bytes
 *   (`virtualFiles: { name: Buffer }`, updated with setVirtualFile; the set of
 *   names is fixed at start) and `links` (name -> a file outside the root,
 *   served through linked.ts keptFile, read in the worker). A generator per
 *   peer cannot cross the thread boundary.
 * - Log records are written by `log` in the main thread, with the fields and
 *   levels the engine gives them; the worker builds only the records `log`'s
 *   level would write. Event hooks run in the main thread, in order, a turn of
 *   the worker's loop after the fact (batched: one message per turn).
 * - activeTransfers()/queuedRequests() are read from memory shared with the
 *   worker, refreshed every COUNTS_MS (exact again once close() resolves: 0).
 * - A worker that dies without close() (an uncaught exception: a bug) is logged
 *   at error and started again on the same port; more than `restarts.max`
 *   crashes within `restarts.windowMs` and it is left stopped, with an error
 *   line saying TFTP is no longer served. Transfers running at a crash are
 *   lost; their clients retransmit their requests (RFC 1350 §2) to the new
 *   worker, or fail and retry the boot.
 * - close() stops the worker's server (running transfers get ERROR 0, as
 *   in-process) and resolves when the thread has exited; a thread that has not
 *   exited CLOSE_DEADLINE_MS later is terminated, with a warning.
 */
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { NetbootError, type ErrorCode, type ErrorDetail } from '../errors.js'
import { createTftpServer, type TftpEvents, type TftpServer, type TftpServerOptions } from './server.js'
import { workerScript } from '../worker-url.js'

import { LEVELS, type LevelName, type LogRecord } from '../thread-relay.js'
export { LEVELS, type LevelName } from '../thread-relay.js'

/** How often the worker publishes its transfer counts. */
export const COUNTS_MS = 10
const CLOSE_DEADLINE_MS = 15_000

/** The settings that cross as workerData (TftpServerOptions without log, events, virtualFiles). */
export type WorkerSettings = Omit<TftpServerOptions, 'log' | 'events' | 'virtualFiles'>

export interface WorkerInit {
  readonly options: WorkerSettings
  readonly level: LevelName
  readonly files: Record<string, Uint8Array>
  readonly links: Record<string, string>
  /** The hooks the host has; the worker posts only these. */
  readonly events: Array<keyof TftpEvents>
  /** Int32Array[2]: running transfers, queued requests. */
  readonly counts: SharedArrayBuffer
}

export type ToWorker =
  | { t: 'files', files: Record<string, Uint8Array> }
  | { t: 'close' }
  | { t: 'crash', message: string }

export type FromWorker =
  | { t: 'batch', items: FromWorker[] }
  | LogRecord
  | { t: 'event', name: keyof TftpEvents, args: unknown[] }
  | { t: 'listening', port: number }
  | { t: 'start-failed', message: string, code?: string, details?: unknown, errno?: string }
  | { t: 'closed' }

export interface TftpWorkerOptions extends WorkerSettings {
  readonly log: Logger
  readonly events?: TftpEvents
  /** Generated files by name (autoexec.ipxe); the names are fixed at start, the bytes change with setVirtualFile. */
  readonly virtualFiles?: Readonly<Record<string, Buffer>>
  /** Names served from a file outside the root (linked.ts linkedTargets). */
  readonly links?: Readonly<Record<string, string>>
  /** Crash restarts allowed per window; default 3 in 60 s. */
  readonly restarts?: { readonly max: number, readonly windowMs: number }
}

export interface TftpWorkerServer extends TftpServer {
  /** New bytes for a virtual file given at start; reaches the worker by message (later opens see them). */
  setVirtualFile (name: string, bytes: Buffer): void
  /** The worker's thread id, undefined when none runs. */
  threadId (): number | undefined
  /** Crash restarts so far. */
  restartCount (): number
  /** Tests only: an uncaught exception on the worker's loop. */
  crashForTest (message: string): void
}

/** The lowest level `log` writes (pino's levels), or silent. */
function levelOf (log: Logger): LevelName {
  for (const l of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) if (log.isLevelEnabled(l)) return l
  return 'silent'
}

type State = 'new' | 'starting' | 'running' | 'restarting' | 'failed' | 'closing' | 'closed'

class WorkerHost implements TftpWorkerServer {
  private state: State = 'new'
  private worker: Worker | undefined
  private readonly counts = new Int32Array(new SharedArrayBuffer(8))
  private readonly files: Map<string, Buffer>
  private readonly settings: WorkerSettings
  private readonly crashes: number[] = []
  private restarts = 0
  private exited: Promise<void> = Promise.resolve()
  /** Settles the pending start(): the first start or a restart. */
  private started: { resolve (port: number): void, reject (e: Error): void } | undefined

  constructor (private readonly opts: TftpWorkerOptions) {
    const { log, events, virtualFiles, links, restarts, ...settings } = opts
    // the engine's own validation, now, in this thread: a bad key throws CONFIG_INVALID naming it
    createTftpServer({ ...settings, log })
    this.settings = settings
    this.files = new Map(Object.entries(virtualFiles ?? {}))
  }

  private get log (): Logger { return this.opts.log }

  async start (): Promise<{ port: number }> {
    if (this.state !== 'new') throw new Error('tftp server already started')
    this.state = 'starting'
    const port = await this.spawn(this.settings.port ?? 69)
    this.state = 'running'
    return { port }
  }

  private spawn (port: number): Promise<number> {
    const init: WorkerInit = {
      options: { ...this.settings, port },
      level: levelOf(this.log),
      files: Object.fromEntries(this.files),
      links: { ...this.opts.links },
      events: (Object.keys(this.opts.events ?? {}) as Array<keyof TftpEvents>).filter((k) => typeof this.opts.events?.[k] === 'function'),
      counts: this.counts.buffer as SharedArrayBuffer,
    }
    const worker = new Worker(workerScript(import.meta.url, 'worker'), { workerData: init })
    this.worker = worker
    this.startFailed = false
    let lastError: Error | undefined
    worker.on('message', (m: FromWorker) => this.receive(m))
    worker.on('error', (e) => { lastError = e })
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = undefined
        Atomics.store(this.counts, 0, 0)
        Atomics.store(this.counts, 1, 0)
        resolve()
        this.onExit(code, lastError)
      })
    })
    return new Promise((resolve, reject) => { this.started = { resolve, reject } })
  }

  private onExit (code: number, err: Error | undefined): void {
    if (this.startFailed) {
      // its start() (or restart) is rejected with the reason the worker gave
      this.startFailed = false
      return
    }
    if (this.started !== undefined) {
      // died before listening (start-failed already settled it otherwise)
      const s = this.started
      this.started = undefined
      s.reject(err ?? new Error(`tftp worker exited with code ${code} before listening`))
      return
    }
    if (this.state === 'closing' || this.state === 'closed' || this.state === 'failed') return
    this.log.error({ err: err?.message ?? `exit code ${code}`, stack: err?.stack, exitCode: code }, 'tftp worker crashed')
    this.restart()
  }

  /** Bounded: at most restarts.max crashes per restarts.windowMs, then TFTP stays down, said at error. */
  private restart (): void {
    const { max, windowMs } = this.opts.restarts ?? { max: 3, windowMs: 60_000 }
    const now = performance.now()
    this.crashes.push(now)
    while (this.crashes.length > 0 && now - this.crashes[0]! > windowMs) this.crashes.shift()
    if (this.crashes.length > max) {
      this.state = 'failed'
      this.log.error({ crashes: this.crashes.length, windowMs }, 'tftp worker crashed too often; not restarted: TFTP is not served')
      return
    }
    this.state = 'restarting'
    const port = this.boundPort
    this.spawn(port).then(() => {
      if (this.state !== 'restarting') return
      this.state = 'running'
      this.restarts++
      this.log.warn({ port, restarts: this.restarts }, 'tftp worker restarted')
    }, (e: Error) => {
      if (this.state !== 'restarting') return
      this.log.error({ port, err: e.message }, 'tftp worker restart failed')
      setTimeout(() => { if (this.state === 'restarting') this.restart() }, 1000).unref()
    })
  }

  private boundPort = 0
  /** The running thread reported start-failed: its exit is not a crash. */
  private startFailed = false

  private receive (m: FromWorker): void {
    switch (m.t) {
      case 'batch':
        for (const i of m.items) this.receive(i)
        return
      case 'log':
        if (m.msg !== undefined) this.log[m.level](m.obj, m.msg)
        else this.log[m.level](m.obj)
        return
      case 'event': {
        const fn = this.opts.events?.[m.name] as ((...a: unknown[]) => void) | undefined
        try {
          fn?.apply(this.opts.events, m.args)
        } catch (e) {
          this.log.warn({ hook: m.name, err: (e as Error)?.message ?? String(e) }, 'tftp event hook threw')
        }
        return
      }
      case 'listening': {
        this.boundPort = m.port
        const s = this.started
        this.started = undefined
        s?.resolve(m.port)
        return
      }
      case 'start-failed': {
        this.startFailed = true
        const s = this.started
        this.started = undefined
        let e: Error
        if (m.code !== undefined) e = new NetbootError(m.code as ErrorCode, m.message, (m.details ?? []) as ErrorDetail[])
        else {
          e = new Error(m.message)
          if (m.errno !== undefined) (e as NodeJS.ErrnoException).code = m.errno
        }
        // settled once the thread has ended: a failed start leaves nothing running
        void this.exited.then(() => s?.reject(e))
        return
      }
      case 'closed':
        return
    }
  }

  private post (m: ToWorker): void {
    this.worker?.postMessage(m)
  }

  setVirtualFile (name: string, bytes: Buffer): void {
    if (!this.files.has(name)) throw new Error(`tftp: ${name} is not a virtual file of this server`)
    if (this.files.get(name)!.equals(bytes)) return
    this.files.set(name, bytes)
    this.post({ t: 'files', files: { [name]: bytes } })
  }

  async close (): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return await this.exited
    this.state = 'closing'
    const worker = this.worker
    if (worker !== undefined) {
      this.post({ t: 'close' })
      const timer = setTimeout(() => {
        this.log.warn({ deadlineMs: CLOSE_DEADLINE_MS }, 'tftp worker did not stop in time; terminated')
        void worker.terminate()
      }, CLOSE_DEADLINE_MS)
      await this.exited
      clearTimeout(timer)
    }
    this.state = 'closed'
  }

  activeTransfers (): number {
    return Atomics.load(this.counts, 0)
  }

  queuedRequests (): number {
    return Atomics.load(this.counts, 1)
  }

  threadId (): number | undefined {
    return this.worker?.threadId
  }

  restartCount (): number {
    return this.restarts
  }

  crashForTest (message: string): void {
    this.post({ t: 'crash', message })
  }
}

/** Validates `opts` now (throws NetbootError CONFIG_INVALID naming the key); starts the worker on `start()`. */
export function createTftpWorker (opts: TftpWorkerOptions): TftpWorkerServer {
  return new WorkerHost(opts)
}
