/**
 * The main thread's side of a service that runs in a worker thread
 * (tftp/worker-host.ts, dhcp/worker-host.ts); the worker's side of the wire is
 * thread-relay.ts. One supervisor for both:
 *
 * - Start: the thread reports that it serves (the service's own message; the host
 *   calls `listening()`) or `start-failed` with the error, which start() then
 *   rejects with (a NetbootError with its code and details, or an Error with its
 *   errno), once the thread has ended: a failed start leaves nothing running.
 * - Messages: `batch` (one per turn of the worker's loop), `log` records written
 *   through the host's logger with their level, fields and message; everything
 *   else goes to the service's `handle`.
 * - Crash: a thread that exits without close() (an uncaught exception: a bug) is
 *   logged at error and started again with `workerData(true)`; more than
 *   `restarts.max` crashes within `restarts.windowMs` and it is left stopped,
 *   with an error line saying the service is no longer served.
 * - close(): asks the thread to close (`{ t: 'close' }`) and resolves when it has
 *   exited; a thread that has not exited CLOSE_DEADLINE_MS later is terminated,
 *   with a warning.
 */
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { NetbootError, type ErrorCode, type ErrorDetail } from './errors.js'
import type { LevelName, LogRecord, StartFailed } from './thread-relay.js'

export const CLOSE_DEADLINE_MS = 15_000

/** What every service thread may send besides its own messages. */
export type ThreadMessage =
  | { t: 'batch', items: unknown[] }
  | LogRecord
  | StartFailed
  | { t: 'closed' }

/** The lowest level `log` writes (pino's levels), or silent: the worker builds only the records it would write. */
export function levelOf (log: Logger): LevelName {
  for (const l of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) if (log.isLevelEnabled(l)) return l
  return 'silent'
}

export interface RestartBudget { readonly max: number, readonly windowMs: number }

type State = 'new' | 'starting' | 'running' | 'restarting' | 'failed' | 'closing' | 'closed'

export abstract class ServiceThread<M extends { readonly t: string }> {
  protected state: State = 'new'
  protected worker: Worker | undefined
  private readonly crashes: number[] = []
  private restarts = 0
  private exited: Promise<void> = Promise.resolve()
  /** Settles the pending start: the first start or a restart. */
  private started: { resolve (): void, reject (e: Error): void } | undefined
  /** The running thread reported start-failed: its exit is not a crash. */
  private startFailed = false

  constructor (
    /** The service's name in log lines: tftp, dhcp. */
    private readonly service: string,
    protected readonly log: Logger,
    private readonly script: URL,
    private readonly budget: RestartBudget = { max: 3, windowMs: 60_000 },
  ) {}

  /** The thread's workerData: for the first start, or (`restart`) after a crash. */
  protected abstract workerData (restart: boolean): unknown
  /** The service's own messages; the one saying it serves calls `listening()`. */
  protected abstract handle (m: M): void
  /** Fields of the restart log lines (the port). */
  protected abstract restartFields (): Record<string, unknown>
  /** Called when a thread has exited, whatever the reason, before a crash is handled. */
  protected threadExited (): void {}

  /** The thread serves: settles the pending start. */
  protected listening (): void {
    const s = this.started
    this.started = undefined
    s?.resolve()
  }

  /** The first start; rejects with the thread's start error (then the service is closed). */
  protected async startThread (): Promise<void> {
    if (this.state !== 'new') throw new Error(`${this.service} server already started`)
    this.state = 'starting'
    try {
      await this.spawn(false)
    } catch (e) {
      this.state = 'closed'
      throw e
    }
    this.state = 'running'
  }

  protected post (m: unknown): void {
    this.worker?.postMessage(m)
  }

  async close (): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return await this.exited
    this.state = 'closing'
    const worker = this.worker
    if (worker !== undefined) {
      worker.postMessage({ t: 'close' })
      const timer = setTimeout(() => {
        this.log.warn({ deadlineMs: CLOSE_DEADLINE_MS }, `${this.service} worker did not stop in time; terminated`)
        void worker.terminate()
      }, CLOSE_DEADLINE_MS)
      await this.exited
      clearTimeout(timer)
    }
    this.state = 'closed'
  }

  /** The worker's thread id, undefined when none runs. */
  threadId (): number | undefined {
    return this.worker?.threadId
  }

  /** Crash restarts so far. */
  restartCount (): number {
    return this.restarts
  }

  /** Tests only: an uncaught exception on the worker's loop. */
  crashForTest (message: string): void {
    this.post({ t: 'crash', message })
  }

  private spawn (restart: boolean): Promise<void> {
    const worker = new Worker(this.script, { workerData: this.workerData(restart) })
    this.worker = worker
    this.startFailed = false
    let lastError: Error | undefined
    worker.on('message', (m: M | ThreadMessage) => this.receive(m))
    worker.on('error', (e) => { lastError = e })
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = undefined
        this.threadExited()
        resolve()
        this.onExit(code, lastError)
      })
    })
    return new Promise((resolve, reject) => { this.started = { resolve, reject } })
  }

  private receive (m: M | ThreadMessage): void {
    const x = m as ThreadMessage
    switch (x.t) {
      case 'batch':
        for (const i of x.items) this.receive(i as M | ThreadMessage)
        return
      case 'log':
        if (x.msg !== undefined) this.log[x.level](x.obj, x.msg)
        else this.log[x.level](x.obj)
        return
      case 'start-failed': {
        this.startFailed = true
        const s = this.started
        this.started = undefined
        let e: Error
        if (x.code !== undefined) e = new NetbootError(x.code as ErrorCode, x.message, (x.details ?? []) as ErrorDetail[])
        else {
          e = new Error(x.message)
          if (x.errno !== undefined) (e as NodeJS.ErrnoException).code = x.errno
        }
        // settled once the thread has ended: a failed start leaves nothing running
        void this.exited.then(() => s?.reject(e))
        return
      }
      case 'closed':
        return
      default:
        this.handle(m as M)
    }
  }

  private onExit (code: number, err: Error | undefined): void {
    if (this.startFailed) {
      // its start (or restart) is rejected with the reason the worker gave
      this.startFailed = false
      return
    }
    if (this.started !== undefined) {
      // died before listening (start-failed already settled it otherwise)
      const s = this.started
      this.started = undefined
      s.reject(err ?? new Error(`${this.service} worker exited with code ${code} before listening`))
      return
    }
    if (this.state === 'closing' || this.state === 'closed' || this.state === 'failed') return
    this.log.error({ err: err?.message ?? `exit code ${code}`, stack: err?.stack, exitCode: code }, `${this.service} worker crashed`)
    this.restart()
  }

  /** Bounded: at most budget.max crashes per budget.windowMs, then the service stays down, said at error. */
  private restart (): void {
    const { max, windowMs } = this.budget
    const now = performance.now()
    this.crashes.push(now)
    while (this.crashes.length > 0 && now - this.crashes[0]! > windowMs) this.crashes.shift()
    if (this.crashes.length > max) {
      this.state = 'failed'
      this.log.error({ crashes: this.crashes.length, windowMs }, `${this.service} worker crashed too often; not restarted: ${this.service.toUpperCase()} is not served`)
      return
    }
    this.state = 'restarting'
    this.spawn(true).then(() => {
      if (this.state !== 'restarting') return
      this.state = 'running'
      this.restarts++
      this.log.warn({ ...this.restartFields(), restarts: this.restarts }, `${this.service} worker restarted`)
    }, (e: Error) => {
      if (this.state !== 'restarting') return
      this.log.error({ ...this.restartFields(), err: e.message }, `${this.service} worker restart failed`)
      setTimeout(() => { if (this.state === 'restarting') this.restart() }, 1000).unref()
    })
  }
}
