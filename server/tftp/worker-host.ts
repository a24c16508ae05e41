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
import type { Logger } from 'pino'
import { createTftpServer, type TftpEvents, type TftpServer, type TftpServerOptions } from './server.js'
import { workerScript } from '../worker-url.js'
import { ServiceThread, levelOf, type RestartBudget, type ThreadMessage } from '../service-thread.js'
import type { HostMessage, LevelName } from '../thread-relay.js'

/** How often the worker publishes its transfer counts. */
export const COUNTS_MS = 10

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

/** New virtual file bytes, besides close and the test-only crash (../thread-relay.ts). */
export type FilesMessage = { t: 'files', files: Record<string, Uint8Array> }
export type ToWorker = FilesMessage | HostMessage

/** The TFTP thread's own messages (ThreadMessage: batches, log records, start-failed, closed). */
export type TftpMessage =
  | { t: 'event', name: keyof TftpEvents, args: unknown[] }
  | { t: 'listening', port: number }

export type FromWorker = TftpMessage | ThreadMessage

export interface TftpWorkerOptions extends WorkerSettings {
  readonly log: Logger
  readonly events?: TftpEvents
  /** Generated files by name (autoexec.ipxe); the names are fixed at start, the bytes change with setVirtualFile. */
  readonly virtualFiles?: Readonly<Record<string, Buffer>>
  /** Names served from a file outside the root (linked.ts linkedTargets). */
  readonly links?: Readonly<Record<string, string>>
  /** Crash restarts allowed per window; default 3 in 60 s. */
  readonly restarts?: RestartBudget
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

class WorkerHost extends ServiceThread<TftpMessage> implements TftpWorkerServer {
  private readonly counts = new Int32Array(new SharedArrayBuffer(8))
  private readonly files: Map<string, Buffer>
  private readonly settings: WorkerSettings
  private boundPort = 0

  constructor (private readonly opts: TftpWorkerOptions) {
    super('tftp', opts.log, workerScript(import.meta.url, 'worker'), opts.restarts)
    const { log, events, virtualFiles, links, restarts, ...settings } = opts
    // the engine's own validation, now, in this thread: a bad key throws CONFIG_INVALID naming it
    createTftpServer({ ...settings, log })
    this.settings = settings
    this.files = new Map(Object.entries(virtualFiles ?? {}))
  }

  async start (): Promise<{ port: number }> {
    await this.startThread()
    return { port: this.boundPort }
  }

  /** A restart takes the port the first start bound (port 0 in tests: the kernel's choice). */
  protected workerData (restart: boolean): WorkerInit {
    return {
      options: { ...this.settings, port: restart ? this.boundPort : this.settings.port ?? 69 },
      level: levelOf(this.log),
      files: Object.fromEntries(this.files),
      links: { ...this.opts.links },
      events: (Object.keys(this.opts.events ?? {}) as Array<keyof TftpEvents>).filter((k) => typeof this.opts.events?.[k] === 'function'),
      counts: this.counts.buffer as SharedArrayBuffer,
    }
  }

  protected restartFields (): Record<string, unknown> {
    return { port: this.boundPort }
  }

  protected override threadExited (): void {
    Atomics.store(this.counts, 0, 0)
    Atomics.store(this.counts, 1, 0)
  }

  protected handle (m: TftpMessage): void {
    switch (m.t) {
      case 'event': {
        const fn = this.opts.events?.[m.name] as ((...a: unknown[]) => void) | undefined
        try {
          fn?.apply(this.opts.events, m.args)
        } catch (e) {
          this.log.warn({ hook: m.name, err: (e as Error)?.message ?? String(e) }, 'tftp event hook threw')
        }
        return
      }
      case 'listening':
        this.boundPort = m.port
        this.listening()
    }
  }

  setVirtualFile (name: string, bytes: Buffer): void {
    if (!this.files.has(name)) throw new Error(`tftp: ${name} is not a virtual file of this server`)
    if (this.files.get(name)!.equals(bytes)) return
    this.files.set(name, bytes)
    this.post({ t: 'files', files: { [name]: bytes } } satisfies ToWorker)
  }

  activeTransfers (): number {
    return Atomics.load(this.counts, 0)
  }

  queuedRequests (): number {
    return Atomics.load(this.counts, 1)
  }
}

/** Validates `opts` now (throws NetbootError CONFIG_INVALID naming the key); starts the worker on `start()`. */
export function createTftpWorker (opts: TftpWorkerOptions): TftpWorkerServer {
  return new WorkerHost(opts)
}
