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
 *   and a test-only crash (../thread-relay.ts runService);
 * - out: `listening` or `start-failed`, then batches of log records and metric
 *   observations (one postMessage per turn of the loop, records in the order
 *   they happened), and `closed`.
 *
 * The worker ends when close() has closed its sockets and its store: nothing
 * else keeps its loop alive (the parentPort listener is removed).
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { LoadedConfig } from '../config/load.js'
import { SqliteStore } from '../store/sqlite/sqlite-store.js'
import type { ClientMessageType, DhcpPacket } from './codec/index.js'
import { DhcpEngine, type Decision, type EngineConfig } from './engine.js'
import { LeaseTable } from './lease/table.js'
import { DhcpServer, type DhcpMetrics } from './server.js'
import { engineConfig } from './setup.js'
import { Outbox, runService, workerLogger } from '../thread-relay.js'
import type { CounterDelta, FromWorker, WorkerInit } from './worker-host.js'

const init = workerData as WorkerInit
const port = parentPort!
const generation = new Int32Array(init.generation)

// ---- outbox: one postMessage per turn of the loop (../thread-relay.ts) --------

const counters = new Map<string, CounterDelta>()
let latency: Array<string | number> = []
const outbox = new Outbox<FromWorker>(port, 'dhcp', (add) => {
  if (counters.size === 0 && latency.length === 0) return
  add({ t: 'metrics', counters: [...counters.values()], latency })
  counters.clear()
  latency = []
})
const send = (m: FromWorker): void => { outbox.send(m) }
const schedule = (): void => { outbox.schedule() }

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

await runService<FromWorker, never>(port, outbox, {
  start: async () => {
    store = SqliteStore.open(init.dbPath, { synchronous: init.synchronous })
    store.followGeneration(Atomics.load(generation, 0))
    const leases = await LeaseTable.load(store, Date.now())
    const engine = new FollowingEngine(engineConfig(init.config as LoadedConfig, [...init.subnets]), store, leases)
    server = new DhcpServer({ ...init.server, engine, log: workerLogger(init.level, send), metrics })
    await server.start()
    const buffers = server.socketBuffers()
    return { t: 'listening', ports: server.ports(), leases: leases.size, ...(buffers !== undefined ? { buffers } : {}) }
  },
  stop: async () => {
    await server?.close()
    // commits the leases saved in this turn; their exchanges' replies are not sent (the sockets are closed)
    await store?.close()
  },
  abandon: async () => {
    await server?.close().catch(() => {})
    await store?.close().catch(() => {})
  },
})
