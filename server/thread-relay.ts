/**
 * What a service's worker thread (tftp/worker.ts, dhcp/worker.ts) sends its host
 * in the main thread, and how:
 *
 * - `Outbox`: records leave in one postMessage per turn of the worker's loop,
 *   `{ t: 'batch', items }`, in the order they were sent. A batch that cannot be
 *   cloned (a function in a log object) is sent item by item, each item that
 *   still cannot as a warning naming it, so one bad record loses nothing else.
 * - `workerLogger`: a pino-shaped Logger (the level methods, isLevelEnabled,
 *   level, child) whose records cross as (level, object, message); the host
 *   writes them through its own logger, so redaction, timestamps and bindings are
 *   the main thread's, as with the in-process service. Records below the level
 *   are not built. Errors cross as pino's err serializer writes them (type,
 *   message, stack, code, errno, syscall): a structured clone would keep only
 *   name, message and stack.
 * - `runService`: start, close and the test-only crash, as every service thread
 *   handles them.
 */
import type { MessagePort } from 'node:worker_threads'
import pino, { type Logger } from 'pino'
import { NetbootError } from './errors.js'

/** pino's numeric levels. */
export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const
export type LevelName = keyof typeof LEVELS

/** One log line, as it crosses. */
export interface LogRecord {
  readonly t: 'log'
  readonly level: Exclude<LevelName, 'silent'>
  readonly obj: Record<string, unknown>
  readonly msg?: string
}

/** Why the service could not start, as it crosses (service-thread.ts rebuilds the error from it). */
export interface StartFailed {
  readonly t: 'start-failed'
  readonly message: string
  /** A NetbootError's code and details. */
  readonly code?: string
  readonly details?: unknown
  /** A system error's code (EADDRINUSE, ENODEV, ...). */
  readonly errno?: string
}

export function startFailed (e: unknown): StartFailed {
  const err = e as Error
  return {
    t: 'start-failed',
    message: err?.message ?? String(e),
    ...(err instanceof NetbootError ? { code: err.code, details: JSON.parse(JSON.stringify(err.details ?? null)) as unknown } : {}),
    ...(typeof (err as NodeJS.ErrnoException)?.code === 'string' && !(err instanceof NetbootError) ? { errno: (err as NodeJS.ErrnoException).code } : {}),
  }
}

export class Outbox<M extends { readonly t: string }> {
  private items: M[] = []
  private flushing = false

  /**
   * `service` names the thread in the warning about a record that cannot be sent;
   * `beforeFlush` may add items summed over the turn (metrics) just before it leaves.
   */
  constructor (private readonly port: MessagePort, private readonly service: string, private readonly beforeFlush?: (add: (m: M) => void) => void) {}

  send (m: M): void {
    this.items.push(m)
    this.schedule()
  }

  /** Makes sure this turn ends with a flush (for state beforeFlush turns into items). */
  schedule (): void {
    if (this.flushing) return
    this.flushing = true
    setImmediate(() => { this.flush() })
  }

  /** Sends what is waiting now (before the thread ends, or a message the host waits for). */
  flush (): void {
    this.flushing = false
    this.beforeFlush?.((m) => this.items.push(m))
    if (this.items.length === 0) return
    const batch = this.items
    this.items = []
    try {
      this.port.postMessage({ t: 'batch', items: batch })
    } catch {
      for (const m of batch) {
        try {
          this.port.postMessage(m)
        } catch (e) {
          const warning: LogRecord = { t: 'log', level: 'warn', obj: { err: (e as Error).message, record: String((m as { msg?: string }).msg ?? m.t) }, msg: `${this.service} worker: a record could not be sent` }
          this.port.postMessage(warning)
        }
      }
    }
  }
}

/** What the host sends every service thread (service-thread.ts); a service adds its own. */
export type HostMessage = { readonly t: 'close' } | { readonly t: 'crash', readonly message: string }

export interface ServiceRun<L, O> {
  /** Starts the service; resolves to its `listening` message. */
  start (): Promise<L>
  /** Stops it (sockets, files, store) once a start has settled, on the host's close. */
  stop (): Promise<void>
  /** Releases what a failed start left open, before `start-failed` is sent. */
  abandon? (): Promise<void>
  /** The service's own messages from the host. */
  onMessage? (m: O): void
}

/**
 * The worker's side of the life the host supervises (service-thread.ts): starts the
 * service and sends its `listening` message, or `start-failed` after `abandon`; on
 * `close`, stops it (after a start still running) and sends `closed`; on the test-only
 * `crash`, throws on the loop as a bug would. The port's listener is removed when
 * closing or when the start failed: then nothing keeps the thread's loop alive.
 */
export async function runService<L extends { readonly t: string }, O extends { readonly t: string }> (
  port: MessagePort,
  outbox: Pick<Outbox<L | StartFailed | { t: 'closed' }>, 'send' | 'flush'>,
  s: ServiceRun<L, O>,
): Promise<void> {
  let starting: Promise<unknown> = Promise.resolve()
  let closing = false
  const close = async (): Promise<void> => {
    if (closing) return
    closing = true
    port.off('message', onMessage)
    await starting.catch(() => {})
    await s.stop()
    outbox.send({ t: 'closed' })
    outbox.flush()
  }
  const onMessage = (m: HostMessage | O): void => {
    if (m.t === 'close') void close()
    else if (m.t === 'crash') setImmediate(() => { throw new Error((m as { message: string }).message) })
    else s.onMessage?.(m as O)
  }
  port.on('message', onMessage)
  try {
    const start = s.start()
    starting = start
    outbox.send(await start)
    outbox.flush()
  } catch (e) {
    port.off('message', onMessage)
    await s.abandon?.()
    outbox.send(startFailed(e))
    outbox.flush()
  }
}

/** A Logger at `level` whose records go to `send` (see the header). */
export function workerLogger (level: LevelName, send: (r: LogRecord) => void, bindings: Record<string, unknown> = {}): Logger {
  const threshold = LEVELS[level]
  const method = (name: Exclude<LevelName, 'silent'>) => (a?: unknown, b?: unknown, ...rest: unknown[]): void => {
    if (LEVELS[name] < threshold) return
    let obj: Record<string, unknown>
    let msg: string | undefined
    if (typeof a === 'string') {
      obj = { ...bindings }
      msg = [a, b, ...rest].filter((x) => x !== undefined).map(String).join(' ')
    } else {
      const o = a instanceof Error ? { err: pino.stdSerializers.err(a) } : serializeErrors((a as Record<string, unknown> | undefined) ?? {})
      obj = Object.keys(bindings).length === 0 ? o : { ...bindings, ...o }
      msg = typeof b === 'string' ? b : undefined
    }
    send({ t: 'log', level: name, obj, ...(msg !== undefined ? { msg } : {}) })
  }
  const log = {
    level,
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    fatal: method('fatal'),
    silent: () => {},
    isLevelEnabled: (l: string) => (LEVELS[l as LevelName] ?? Infinity) >= threshold && threshold !== LEVELS.silent,
    child: (b: Record<string, unknown>) => workerLogger(level, send, { ...bindings, ...b }),
  }
  return log as unknown as Logger
}

/** The object with each Error value replaced by pino's serialization of it (the object itself when it has none). */
function serializeErrors (o: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(o)) {
    if (v instanceof Error) (out ??= { ...o })[k] = pino.stdSerializers.err(v)
  }
  return out ?? o
}
