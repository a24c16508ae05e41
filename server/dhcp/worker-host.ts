/**
 * The DHCP server in a worker thread (worker.ts), seen from the main thread as
 * the DhcpService startDhcp returns. Why: in the 10,000-node whole-plane storm
 * the later DHCP exchanges (iPXE's, then Linux's) waited behind HTTP and
 * attestation work on the shared event loop (p99 35 s, ~40,000 client
 * retransmissions; DHCP alone answers the same 10,000 nodes in ~10 s without
 * one: docs/bench-storm.md). On its own loop, with its own sockets and its own
 * SQLite connection, a DISCOVER waits only for other DHCP work.
 *
 * Contract (what differs from the in-process DhcpServer):
 * - The worker opens the same database file through SqliteStore (WAL, a busy
 *   timeout of 5 s on each connection: a write that meets the other
 *   connection's transaction waits, it does not fail). It reads hosts
 *   (findDhcpHost, isReservedIp) and loads and saves leases as in-process; the
 *   main thread writes no lease, the worker writes nothing else.
 * - Invalidation: the engine keeps findDhcpHost answers per MAC while the
 *   store's generation stands still. The main store's generation (admin and
 *   system changes: nodes, groups, reservations, ...) is copied into a shared
 *   Int32Array by a SqliteStore.onChange listener, after the commit and before
 *   the changing call returns to its caller; the worker reads it (Atomics.load)
 *   before deciding each packet and adopts it (followGeneration), which drops
 *   its kept answers. Shared memory rather than a message because it orders
 *   strictly: a packet sent after an admin change returned is decided with
 *   that change, whatever order the worker's loop takes its message port and
 *   its sockets in. Writes nodes cause (leases, attestations) do not move the
 *   generation, so a storm keeps its kept answers.
 * - Log records are written by `log` in the main thread with the fields and
 *   levels the server gives them (one message per turn of the worker's loop).
 *   Metrics: the worker sums counter increments and lists histogram
 *   observations per turn and sends them in the same message; the host applies
 *   them to the main registry's DHCP metrics (server.ts dhcpMetrics): same
 *   names, labels and values, a turn of the worker's loop later.
 * - A worker that dies without close() (an uncaught exception: a bug) is
 *   logged at error and started again on the same ports; more than
 *   `restarts.max` crashes within `restarts.windowMs` and it is left stopped,
 *   with an error line saying DHCP is no longer served. Offers held in memory
 *   at a crash are lost, as at a process restart: clients retransmit (RFC 2131
 *   §4.1) and a REQUEST is checked against the stored leases.
 * - Start-up errors (port in use, bad interface, unreadable database) reject
 *   start() with the error the in-process server raises (a NetbootError keeps
 *   its code and details, a system error its errno code).
 * - close() closes the sockets and the worker's store (pending lease writes are
 *   committed) and resolves when the thread has exited; a thread that has not
 *   exited CLOSE_DEADLINE_MS later is terminated, with a warning.
 */
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { LoadedConfig } from '../config/load.js'
import { NetbootError } from '../errors.js'
import type { BufferSizes } from '../net/socket-buffers.js'
import { ServiceThread, levelOf, type RestartBudget, type ThreadMessage } from '../service-thread.js'
import type { SqliteStore } from '../store/sqlite/sqlite-store.js'
import type { LevelName } from '../thread-relay.js'
import { workerScript } from '../worker-url.js'
import type { SubnetRuntime } from './engine.js'
import { dhcpMetrics, type DhcpMetrics } from './server.js'


/** What startDhcp returns in either mode (DhcpServer in-process, the host in worker mode). */
export interface DhcpService {
  /** Stops answering, closes the sockets (and in worker mode ends the thread). */
  close (): Promise<void>
  /** The effective kernel buffer sizes of the last socket opened (undefined before start). */
  socketBuffers (): BufferSizes | undefined
  /** The local port of every socket (empty before start). */
  ports (): number[]
}

/** The DhcpServer settings that cross as workerData (its options without engine, log, registry, metrics). */
export interface WorkerServerSettings {
  readonly interfaces: readonly string[]
  readonly relays: boolean
  readonly port: number
  readonly proxyPort?: number
  readonly clientPort?: number
  readonly bufferBytes?: number
}

export interface WorkerInit {
  /** The parsed configuration (the engine's settings are built from it in the worker: engineConfig). */
  readonly config: Pick<LoadedConfig, 'config'>
  /** The subnets as the main thread resolved them (its interfaces' addresses). */
  readonly subnets: readonly SubnetRuntime[]
  readonly server: WorkerServerSettings
  /** The database file the main store has open. */
  readonly dbPath: string
  readonly synchronous: 'normal' | 'full'
  readonly level: LevelName
  /** Int32Array[1]: the main store's generation. */
  readonly generation: SharedArrayBuffer
}

/** Counter increments of one turn: [metric, label value, count]. */
export type CounterDelta = [metric: 'requests' | 'replies' | 'drops', label: string, n: number]

/** The DHCP thread's own messages (ThreadMessage: batches, log records, start-failed, closed). */
export type DhcpMessage =
  /** One turn's metrics: counter sums, and latency observations as [type, seconds] pairs flattened. */
  | { t: 'metrics', counters: CounterDelta[], latency: Array<string | number> }
  | { t: 'listening', ports: number[], buffers?: BufferSizes, leases: number }

export type FromWorker = DhcpMessage | ThreadMessage

export interface DhcpWorkerOptions {
  readonly loaded: LoadedConfig
  readonly subnets: readonly SubnetRuntime[]
  readonly server: WorkerServerSettings
  /** The main store: its file is opened by the worker, its generation followed. */
  readonly store: SqliteStore
  /** The `component: dhcp` logger the in-process server would be given. */
  readonly log: Logger
  readonly registry: Registry
  /** Crash restarts allowed per window; default 3 in 60 s. */
  readonly restarts?: RestartBudget
}

export interface DhcpWorkerService extends DhcpService {
  start (): Promise<void>
  /** Leases loaded by the worker at its (last) start. */
  leasesLoaded (): number
  /** The worker's thread id, undefined when none runs. */
  threadId (): number | undefined
  /** Crash restarts so far. */
  restartCount (): number
  /** Tests only: an uncaught exception on the worker's loop. */
  crashForTest (message: string): void
}

class DhcpWorkerHost extends ServiceThread<DhcpMessage> implements DhcpWorkerService {
  private readonly generation = new Int32Array(new SharedArrayBuffer(4))
  private readonly metrics: DhcpMetrics
  private unfollow: (() => void) | undefined
  private bound: number[] = []
  private buffers: BufferSizes | undefined
  private leases = 0

  constructor (private readonly opts: DhcpWorkerOptions) {
    super('dhcp', opts.log, workerScript(import.meta.url, 'worker'), opts.restarts)
    const file = opts.store.file
    if (file === '' || file === ':memory:') {
      throw new NetbootError('CONFIG_INVALID', 'dhcp.worker: the DHCP worker opens the database file itself; a private (in-memory) database cannot be shared: set dhcp.worker: false',
        [{ where: 'dhcp.worker', message: 'needs the database on disk', code: 'CONFIG_INVALID' }])
    }
    this.metrics = dhcpMetrics(opts.registry)
  }

  async start (): Promise<void> {
    if (this.state !== 'new') throw new Error('dhcp server already started')
    // from now on every admin change is in the shared word before its caller resumes
    Atomics.store(this.generation, 0, this.opts.store.generation)
    this.unfollow = this.opts.store.onChange((g) => { Atomics.store(this.generation, 0, g) })
    try {
      await this.startThread()
    } catch (e) {
      this.unfollow()
      this.unfollow = undefined
      throw e
    }
  }

  /** Port 0 (tests) bound one socket on a port the kernel chose: a restart takes the same again. */
  private port (restart: boolean): number {
    return restart && this.opts.server.port === 0 ? this.bound[0] ?? 0 : this.opts.server.port
  }

  protected workerData (restart: boolean): WorkerInit {
    const { loaded, subnets, server, store } = this.opts
    return {
      config: { config: loaded.config },
      subnets,
      server: { ...server, port: this.port(restart) },
      dbPath: store.file,
      synchronous: loaded.config.database.synchronous,
      level: levelOf(this.log),
      generation: this.generation.buffer as SharedArrayBuffer,
    }
  }

  protected restartFields (): Record<string, unknown> {
    return { port: this.port(true) }
  }

  protected handle (m: DhcpMessage): void {
    switch (m.t) {
      case 'metrics':
        for (const [metric, label, n] of m.counters) {
          if (metric === 'drops') this.metrics.drops.inc({ reason: label }, n)
          else this.metrics[metric].inc({ type: label }, n)
        }
        for (let i = 0; i + 1 < m.latency.length; i += 2) this.metrics.latency.observe({ type: m.latency[i] as string }, m.latency[i + 1] as number)
        return
      case 'listening':
        this.bound = m.ports
        this.buffers = m.buffers
        this.leases = m.leases
        this.listening()
    }
  }

  override async close (): Promise<void> {
    this.unfollow?.()
    this.unfollow = undefined
    await super.close()
    this.bound = []
  }

  socketBuffers (): BufferSizes | undefined {
    return this.buffers
  }

  ports (): number[] {
    return this.worker === undefined ? [] : [...this.bound]
  }

  leasesLoaded (): number {
    return this.leases
  }
}

/** Checks that the store can be shared (a file on disk); starts the worker on `start()`. */
export function createDhcpWorker (opts: DhcpWorkerOptions): DhcpWorkerService {
  return new DhcpWorkerHost(opts)
}
