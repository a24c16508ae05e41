/**
 * The DHCP worker thread: the in-process service (SqliteStore, LeaseTable,
 * DhcpEngine, DhcpServer, unchanged) on its own event loop, so HTTP and
 * attestation work in the main thread cannot delay a reply (docs/dhcp-worker.md).
 * This module only carries what crosses the thread boundary (protocol and
 * contract in worker-host.ts):
 *
 * - in: workerData (the parsed configuration, the subnets as the main thread
 *   resolved them, socket settings, the database file, the log level, the
 *   shared word holding the main store's generation), then messages: close,
 *   and a test-only crash;
 * - out: `listening` or `start-failed`, then batches of log records and metric
 *   observations (one postMessage per turn of the loop, records in the order
 *   they happened), and `closed`.
 *
 * The worker ends when close() has closed its sockets and its store: nothing
 * else keeps its loop alive (the parentPort listener is removed).
 */
import { parentPort, workerData } from 'node:worker_threads'
import pino, { type Logger } from 'pino'
import { Registry } from 'prom-client'
import type { LoadedConfig } from '../config/load.js'
import { NetbootError } from '../errors.js'
import { SqliteStore } from '../store/sqlite/sqlite-store.js'
import type { ClientMessageType, DhcpPacket } from './codec/index.js'
import { DhcpEngine, type Decision, type EngineConfig } from './engine.js'
import { LeaseTable } from './lease/table.js'
import { DhcpServer, type DhcpMetrics } from './server.js'
import { engineConfig } from './setup.js'
import { LEVELS, type CounterDelta, type FromWorker, type LevelName, type ToWorker, type WorkerInit } from './worker-host.js'

const init = workerData as WorkerInit
const port = parentPort!
const generation = new Int32Array(init.generation)

// ---- outbox: one postMessage per turn of the loop ---------------------------

let outbox: FromWorker[] = []
const counters = new Map<string, CounterDelta>()
let latency: Array<string | number> = []
let flushing = false

function schedule (): void {
  if (!flushing) {
    flushing = true
    setImmediate(flush)
  }
}

function send (m: FromWorker): void {
  outbox.push(m)
  schedule()
}

function flush (): void {
  flushing = false
  if (counters.size > 0 || latency.length > 0) {
    outbox.push({ t: 'metrics', counters: [...counters.values()], latency })
    counters.clear()
    latency = []
  }
  if (outbox.length === 0) return
  const batch = outbox
  outbox = []
  try {
    port.postMessage({ t: 'batch', items: batch } satisfies FromWorker)
  } catch {
    // a value that cannot be cloned (a function in a log object): send each item alone, the bad ones as text
    for (const m of batch) {
      try {
        port.postMessage(m)
      } catch (e) {
        port.postMessage({ t: 'log', level: 'warn', obj: { err: (e as Error).message, record: String((m as { msg?: string }).msg ?? m.t) }, msg: 'dhcp worker: a record could not be sent' } satisfies FromWorker)
      }
    }
  }
}

/** Counter increments summed per (metric, label) until the turn's message; latency observations listed. */
const metrics: DhcpMetrics = (() => {
  const count = (metric: CounterDelta[0], label: string, n = 1): void => {
    const key = `${metric}|${label}`
    const c = counters.get(key)
    if (c !== undefined) c[2] += n
    else counters.set(key, [metric, label, n])
    schedule()
  }
  return {
    requests: { inc: (l, n) => count('requests', l.type, n) },
    replies: { inc: (l, n) => count('replies', l.type, n) },
    drops: { inc: (l, n) => count('drops', l.reason, n) },
    latency: { observe: (l, s) => { latency.push(l.type, s); schedule() } },
  }
})()

// ---- a pino-shaped logger whose records go to the host ----------------------

/**
 * What server.ts and net/socket-buffers.ts use of pino's Logger: the level
 * methods, isLevelEnabled, level and child. Records cross as (level, object,
 * message); the host writes them through its own `component: dhcp` logger, so
 * redaction, timestamps and bindings are the main thread's, as in-process.
 * (The same shape as tftp/worker.ts's.)
 */
function workerLogger (level: LevelName, bindings: Record<string, unknown> = {}): Logger {
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
    child: (b: Record<string, unknown>) => workerLogger(level, { ...bindings, ...b }),
  }
  return log as unknown as Logger
}

/**
 * Errors in a record, as pino's err serializer writes them (type, message, stack,
 * code, errno, syscall, ...): a structured clone would keep only name, message
 * and stack, losing a socket error's code.
 */
function serializeErrors (o: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(o)) {
    if (v instanceof Error) (out ??= { ...o })[k] = pino.stdSerializers.err(v)
  }
  return out ?? o
}

// ---- the service ------------------------------------------------------------

/**
 * The engine, following the main store's generation: before each packet it
 * adopts the generation the main thread last published (worker-host.ts), so an
 * admin change that returned before the packet arrived drops the kept host
 * answers before this packet reads them.
 */
class FollowingEngine extends DhcpEngine {
  constructor (cfg: EngineConfig, private readonly following: SqliteStore, leases: LeaseTable) {
    super(cfg, following, leases)
  }

  override handle (req: DhcpPacket, type: ClientMessageType, via: string | undefined, now = Date.now(), port = 67): Promise<Decision> {
    this.following.followGeneration(Atomics.load(generation, 0))
    return super.handle(req, type, via, now, port)
  }
}

let store: SqliteStore | undefined
let server: DhcpServer | undefined
let starting: Promise<unknown> = Promise.resolve()
let closing = false

async function close (): Promise<void> {
  if (closing) return
  closing = true
  port.off('message', onMessage)
  await starting.catch(() => {})
  await server?.close()
  // commits the leases saved in this turn; their exchanges' replies are not sent (the sockets are closed)
  await store?.close()
  send({ t: 'closed' })
  flush()
}

function onMessage (m: ToWorker): void {
  switch (m.t) {
    case 'close':
      void close()
      break
    case 'crash':
      // test hook: an uncaught exception on the worker's loop, as a bug in the engine would raise
      setImmediate(() => { throw new Error(m.message) })
      break
  }
}
port.on('message', onMessage)

async function start (): Promise<{ leases: number }> {
  store = SqliteStore.open(init.dbPath, { synchronous: init.synchronous })
  store.followGeneration(Atomics.load(generation, 0))
  const leases = await LeaseTable.load(store, Date.now())
  const engine = new FollowingEngine(engineConfig(init.config as LoadedConfig, [...init.subnets]), store, leases)
  server = new DhcpServer({ ...init.server, engine, log: workerLogger(init.level), registry: new Registry(), metrics })
  await server.start()
  return { leases: leases.size }
}

try {
  starting = start()
  const { leases } = await (starting as ReturnType<typeof start>)
  send({ t: 'listening', ports: server!.ports(), leases, ...(server!.socketBuffers() !== undefined ? { buffers: server!.socketBuffers()! } : {}) })
  flush()
} catch (e) {
  port.off('message', onMessage)
  await server?.close().catch(() => {})
  await store?.close().catch(() => {})
  const err = e as Error
  send({
    t: 'start-failed',
    message: err?.message ?? String(e),
    ...(err instanceof NetbootError ? { code: err.code, details: JSON.parse(JSON.stringify(err.details ?? null)) as unknown } : {}),
    ...(typeof (err as NodeJS.ErrnoException)?.code === 'string' && !(err instanceof NetbootError) ? { errno: (err as NodeJS.ErrnoException).code } : {}),
  })
  flush()
}
