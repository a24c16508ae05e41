/**
 * Read-only TFTP server (RFC 1350, options RFC 2347/2348/2349/7440) on node:dgram.
 *
 * - Requests arrive on the well-known port; each accepted RRQ gets its own
 *   ephemeral socket, whose port is the server's transfer ID (RFC 1350 §4).
 *   A packet on a transfer socket from any other address:port is answered with
 *   ERROR 5 and does not touch the transfer.
 * - WRQ is refused with ERROR 2 "read-only server"; unknown file ERROR 1;
 *   names leaving the root ERROR 2; mail or unknown mode ERROR 4. Refusals are
 *   sent from the well-known port. Other malformed datagrams are dropped with a
 *   log line naming the peer (rate-limited).
 * - At `maxTransfers` concurrent transfers a new RRQ waits, unanswered, in a
 *   FIFO of at most `maxQueued` requests and is started as soon as a transfer
 *   ends; a retransmission of a waiting RRQ keeps its place (and shows the
 *   client is still there). A request not heard from for `maxQueueWaitMs` is
 *   dropped when its turn comes (its client may have given up; a live one
 *   retransmits and queues again). With the queue full the RRQ is dropped.
 *   Either way no ERROR: it would end the client's transfer (RFC 1350 §7) and a
 *   PXE ROM fails the boot; silence lets the client retransmit on its own timer.
 *   Drops are logged rate-limited, with the `too-many-transfers` refusal event.
 *   (Why a queue: nodes powered on together retransmit their RRQs at the same
 *   instants, 1, 3, 7, 15, 31 s; without it the slots that free between those
 *   instants stay idle. docs/bench-storm.md.)
 * - Retransmission timer (RFC 1123 §4.2.3.2: adaptive, exponential backoff): a
 *   window (or OACK) not acknowledged within `timeoutMs` is sent again and the
 *   wait doubles with each consecutive retransmission, capped at
 *   `maxTimeoutMs` (1, 2, 4, 8, 8, 8 s by default: the transfer waits ~31 s for
 *   a stalled client, as long as a PXE ROM retries); progress resets it. A
 *   client that negotiated the RFC 2349 `timeout` option gets exactly that
 *   interval on every retransmission, no backoff.
 * - A RRQ from a peer address:port that already has a transfer: if it repeats
 *   the running request and the peer has not acknowledged anything yet, or is
 *   still acknowledging every window (no retransmission pending), it is a
 *   retransmitted request that was late (in a storm, copies the client sent
 *   while its RRQ waited in the queue arrive after the transfer began) and is
 *   dropped; otherwise the peer has given up on the old transfer (PXE ROMs
 *   probe tsize, abort, and ask again from the same port; a client restarting
 *   the same request stops acknowledging, and its next copy finds the transfer
 *   waiting), which is ended silently and replaced. (Replacing on a late copy
 *   killed the transfer the client was still reading, and a new transfer
 *   reusing the freed port then answered its ACKs with ERROR 5: 303 of 10,000
 *   nodes failed that way, docs/bench-storm.md.)
 * - Each transfer is the pure machine in transfer.ts; this module owns its
 *   socket, timer and file, and feeds it events one at a time.
 */

import dgram from 'node:dgram'
import dns from 'node:dns'
import net from 'node:net'
import type { Logger } from 'pino'
import { LogLimiter } from '../log.js'
import { NetbootError } from '../errors.js'
import { sizeUdpBuffers, UDP_BUFFER_BYTES } from '../net/socket-buffers.js'
import { decodePacket, encodeError, encodePacket, TFTP_ERROR, type RequestPacket, type TftpOption } from './codec.js'
import { createFileStore, type BlockSource, type FileErrorCode, type FileStore, type OpenedFile, type VirtualFiles } from './files.js'
import { negotiate, validateLimits, type NegotiationLimits } from './negotiate.js'
import {
  blocksNeeded,
  bytesAcknowledged,
  initialState,
  isTerminal,
  transition,
  type TransferEvent,
  type TransferFailureReason,
  type TransferState,
} from './transfer.js'

export interface Peer {
  readonly address: string
  readonly port: number
}

export interface TransferInfo {
  readonly peer: Peer
  readonly file: string
  readonly mode: 'netascii' | 'octet'
  readonly blksize: number
  readonly windowsize: number
}

/** Why a request got no transfer. Stable values, for metrics labels. */
export type RefusalReason =
  | 'malformed'
  | 'unsupported-mode'
  | 'write-request'
  | 'too-many-transfers'
  | 'shutting-down'
  | FileErrorCode
  | 'socket-error'

/** Why a started transfer ended without the final ACK. */
export type FailureReason = TransferFailureReason | 'read-error' | 'shutdown' | 'superseded'

/** Optional hooks (netboot wires them to Prometheus). Exceptions thrown by a hook are logged and ignored. */
export interface TftpEvents {
  onTransferStart?(info: TransferInfo): void
  onTransferDone?(bytes: number, ms: number, info: TransferInfo): void
  onTransferFailed?(reason: FailureReason, info: TransferInfo): void
  onRequestRefused?(reason: RefusalReason, peer: Peer): void
}

export interface TftpServerOptions {
  /** Directory served; must exist. */
  readonly root: string
  readonly virtualFiles?: VirtualFiles
  /** Listen address; default 0.0.0.0 (an IPv6 literal selects udp6). */
  readonly address?: string
  /** Default 69; 0 picks a free port (tests). */
  readonly port?: number
  /** Concurrent transfers, including requests still opening their file. Default 1024. */
  readonly maxTransfers?: number
  /** RRQs waiting for a free transfer slot; 0 drops every RRQ at capacity. Default 16384. */
  readonly maxQueued?: number
  /** A waiting RRQ not heard from for this long is dropped at its turn. Default 10000. */
  readonly maxQueueWaitMs?: number
  /** Default 1468 (fits a 1500-octet MTU). */
  readonly maxBlksize?: number
  /** Default 64. */
  readonly maxWindowsize?: number
  /** First retransmission timeout when the client did not negotiate one; doubles per retransmission. Default 1000. */
  readonly timeoutMs?: number
  /** Cap of the doubled retransmission timeout. Default 8000 (at least timeoutMs). */
  readonly maxTimeoutMs?: number
  /** Retransmissions of one window (or OACK) before a transfer fails. Default 5. */
  readonly retries?: number
  readonly log: Logger
  readonly events?: TftpEvents
}

export interface TftpServer {
  start(): Promise<{ port: number }>
  /** Stops listening, aborts running transfers (ERROR 0 to their peers), closes every socket and file. */
  close(): Promise<void>
  /** Transfers running or opening. */
  activeTransfers(): number
  /** RRQs waiting for a free slot. */
  queuedRequests(): number
}

interface Settings {
  readonly root: string
  readonly virtualFiles: VirtualFiles | undefined
  readonly address: string
  readonly port: number
  readonly maxTransfers: number
  readonly maxQueued: number
  readonly maxQueueWaitMs: number
  readonly limits: NegotiationLimits
  readonly timeoutMs: number
  readonly maxTimeoutMs: number
  readonly retries: number
}

function configError(key: string, message: string): NetbootError {
  return new NetbootError('CONFIG_INVALID', `tftp.${key} ${message}`, [{ where: `tftp.${key}`, message }])
}

function intIn(value: number, key: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw configError(key, `must be an integer in ${min}..${max}, got ${value}`)
  return value
}

/** Validates and defaults the options once; throws NetbootError CONFIG_INVALID naming the key. */
function settingsFrom(opts: TftpServerOptions): Settings {
  if (typeof opts.root !== 'string' || opts.root === '') throw configError('root', 'must be a directory path')
  const address = opts.address ?? '0.0.0.0'
  if (net.isIP(address) === 0) throw configError('address', `must be an IP address literal, got ${JSON.stringify(address)}`)
  const limits = { maxBlksize: opts.maxBlksize ?? 1468, maxWindowsize: opts.maxWindowsize ?? 64 }
  const bad = validateLimits(limits)
  if (bad) throw configError(bad.key, bad.message)
  return {
    root: opts.root,
    virtualFiles: opts.virtualFiles,
    address,
    port: intIn(opts.port ?? 69, 'port', 0, 65535),
    maxTransfers: intIn(opts.maxTransfers ?? 1024, 'maxTransfers', 1, 65536),
    maxQueued: intIn(opts.maxQueued ?? 16384, 'maxQueued', 0, 1_000_000),
    maxQueueWaitMs: intIn(opts.maxQueueWaitMs ?? 10_000, 'maxQueueWaitMs', 1, 600_000),
    limits,
    timeoutMs: intIn(opts.timeoutMs ?? 1000, 'timeoutMs', 1, 255_000),
    maxTimeoutMs: intIn(opts.maxTimeoutMs ?? Math.max(8000, opts.timeoutMs ?? 1000), 'maxTimeoutMs', opts.timeoutMs ?? 1000, 255_000),
    retries: intIn(opts.retries ?? 5, 'retries', 0, 100),
  }
}

const peerKey = (p: Peer): string => `${p.address}:${p.port}`

/**
 * dgram passes the destination of every unconnected send through `lookup`
 * (dns.lookup by default), which even for an IP literal costs its option
 * handling and a process.nextTick hop per datagram. Every address a TFTP reply
 * goes to is a literal from the request's rinfo, so literals are answered at
 * once; anything else still goes to dns.lookup. (On the shared benchmark
 * machine the server's CPU per lock-step block did not change measurably,
 * 17-20 µs before and after: the sendto itself dominates; docs/bench-chainload.md.) (A
 * connected transfer socket would skip the lookup too, but the kernel would
 * then drop packets from other TIDs, which RFC 1350 §4 wants answered with
 * ERROR 5.)
 */
const literalLookup: NonNullable<dgram.SocketOptions['lookup']> = (hostname, options, callback) => {
  const family = net.isIP(hostname)
  if (family === 0) dns.lookup(hostname, options, callback)
  else callback(null, hostname, family)
}

/**
 * dgram's send throws synchronously on some inputs (port 0, closed socket); a reply is best-effort.
 * The completion callback (a closure and a process.nextTick per datagram in dgram's doSend) is
 * only passed when its debug line would be written: a lost DATA block is the timer's business.
 */
function sendTo(socket: dgram.Socket, buf: Buffer, peer: Peer, log: Logger): void {
  try {
    if (!log.isLevelEnabled('debug')) socket.send(buf, peer.port, peer.address)
    else socket.send(buf, peer.port, peer.address, (e) => {
      if (e) log.debug({ peer: peerKey(peer), err: e.message }, 'tftp send failed')
    })
  } catch (e) {
    log.debug({ peer: peerKey(peer), err: (e as Error)?.message }, 'tftp send failed')
  }
}

/** TFTP error code and message for a file refusal. */
function fileRefusal(code: FileErrorCode, message: string): { code: number; message: string } {
  switch (code) {
    case 'not-found':
      return { code: TFTP_ERROR.FILE_NOT_FOUND, message: 'file not found' }
    case 'io-error':
      return { code: TFTP_ERROR.NOT_DEFINED, message: 'error reading file' }
    default:
      return { code: TFTP_ERROR.ACCESS_VIOLATION, message: `access violation: ${message}` }
  }
}

const MAX_QUEUED_EVENTS = 64

/**
 * The wait before retransmission number `retries + 1` (RFC 1123 §4.2.3.2
 * exponential backoff): `baseMs` doubled per consecutive retransmission so far,
 * at most `capMs`. Pure; `retries` is the machine's count since the last progress.
 */
export function retransmitDelay(baseMs: number, capMs: number, retries: number): number {
  return Math.min(baseMs * 2 ** Math.min(retries, 30), capMs)
}

function sameRequest(a: RequestPacket, b: RequestPacket): boolean {
  if (a.filename !== b.filename || a.mode !== b.mode || a.options.length !== b.options.length) return false
  return a.options.every((o, i) => o.name === b.options[i]!.name && o.value === b.options[i]!.value)
}

class Transfer {
  private state: TransferState
  private readonly queue: TransferEvent[] = []
  private draining = false
  private timer: NodeJS.Timeout | undefined
  private readonly startedAt = performance.now()
  private finished = false
  /** Set when reading the file failed; the failure is then reported as 'read-error'. */
  private readError: string | null = null
  private superseded = false
  readonly info: TransferInfo
  readonly closed: Promise<void>
  private resolveClosed!: () => void

  constructor(
    private readonly server: Server,
    private readonly socket: dgram.Socket,
    private readonly file: OpenedFile,
    private readonly source: BlockSource,
    readonly peer: Peer,
    readonly request: RequestPacket,
    private readonly oack: readonly TftpOption[] | null,
    blksize: number,
    windowsize: number,
    /** The first wait; with `backoff` it doubles per consecutive retransmission up to `maxTimeoutMs`. */
    private readonly timeoutMs: number,
    private readonly maxTimeoutMs: number,
    private readonly backoff: boolean,
    retries: number,
  ) {
    this.info = { peer, file: file.name, mode: request.mode, blksize, windowsize }
    this.state = initialState({ blksize, windowsize, maxRetries: retries, oack })
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve))
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo))
    socket.on('error', (e) => {
      this.server.log.warn({ peer: peerKey(peer), err: e.message }, 'tftp transfer socket error')
      this.deliver({ type: 'abort', code: TFTP_ERROR.NOT_DEFINED, message: 'server socket error' })
    })
  }

  start(): void {
    if (this.server.logsInfo) this.server.log.info(
      {
        peer: peerKey(this.peer),
        file: this.file.name,
        virtual: this.file.virtual,
        mode: this.request.mode,
        size: this.file.size,
        requested: Object.fromEntries(this.request.options.map((o) => [o.name, o.value])),
        options: this.oack ? Object.fromEntries(this.oack.map((o) => [o.name, o.value])) : null,
        blksize: this.info.blksize,
        windowsize: this.info.windowsize,
        tid: (this.socket.address() as { port: number }).port,
      },
      'tftp transfer started',
    )
    this.server.emit('onTransferStart', this.info)
    this.deliver({ type: 'start' })
  }

  abort(message: string): void {
    this.deliver({ type: 'abort', code: TFTP_ERROR.NOT_DEFINED, message })
  }

  /**
   * True if `req` is this transfer's own request sent again and arriving late:
   * before the peer acknowledged anything, or while it is acknowledging every
   * window (nothing retransmitted since its last ACK), so it has not given up.
   */
  isRetransmissionOf(req: RequestPacket): boolean {
    const awaitingFirstAck = this.state.phase === 'oack-sent' || (this.state.phase !== 'done' && this.state.lastAcked === -1)
    const peerKeepsUp = this.state.phase !== 'done' && this.state.retries === 0
    return (awaitingFirstAck || peerKeepsUp) && sameRequest(this.request, req)
  }

  /** Ends the transfer without telling the peer, which has moved on to a new request. */
  supersede(): void {
    this.superseded = true
    this.deliver({ type: 'abort', code: null, message: 'superseded by a new request from the same peer' })
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.address !== this.peer.address || rinfo.port !== this.peer.port) {
      // RFC 1350 §4: a packet from another TID gets ERROR 5; the transfer goes on.
      this.server.log.debug({ peer: `${rinfo.address}:${rinfo.port}`, transfer: peerKey(this.peer) }, 'tftp packet from unknown TID')
      sendTo(this.socket, encodeError(TFTP_ERROR.UNKNOWN_TID, 'unknown transfer ID'), rinfo, this.server.log)
      return
    }
    const d = decodePacket(msg)
    if (!d.ok) {
      this.server.malformed.warn(
        { peer: peerKey(this.peer), code: d.error.code, length: msg.length, file: this.file.name },
        'tftp malformed packet dropped',
      )
      return
    }
    const p = d.value
    if (p.op === 'ACK') this.deliver({ type: 'ack', block: p.block })
    else if (p.op === 'ERROR') this.deliver({ type: 'error', code: p.code, message: p.message })
    else this.server.log.debug({ peer: peerKey(this.peer), op: p.op }, 'tftp unexpected packet on transfer socket dropped')
  }

  private deliver(event: TransferEvent): void {
    if (this.finished) return
    if (!this.draining && this.queue.length === 0) {
      // Fast path (every ACK while the read-ahead covers the window): no queue, no promise.
      const need = blocksNeeded(this.state, event)
      if (need === null || this.source.isLoaded(need.first, need.last)) {
        this.apply(event)
        return
      }
    }
    if (this.queue.length >= MAX_QUEUED_EVENTS && event.type === 'ack') return
    this.queue.push(event)
    if (!this.draining) void this.drain()
  }

  private async drain(): Promise<void> {
    this.draining = true
    try {
      while (this.queue.length > 0 && !this.finished) {
        let event = this.queue.shift()!
        const need = blocksNeeded(this.state, event)
        if (need !== null && !this.source.isLoaded(need.first, need.last)) {
          try {
            await this.source.load(need.first, need.last)
          } catch (e) {
            this.readError = (e as Error)?.message ?? String(e)
            event = { type: 'abort', code: TFTP_ERROR.NOT_DEFINED, message: 'error reading file' }
          }
          if (this.finished) break
        }
        this.apply(event)
      }
    } finally {
      this.draining = false
    }
  }

  private apply(event: TransferEvent): void {
    let step
    try {
      step = transition(this.state, event, (i) => this.source.readBlock(i))
    } catch (e) {
      this.readError = (e as Error)?.message ?? String(e)
      step = transition(this.state, { type: 'abort', code: TFTP_ERROR.NOT_DEFINED, message: 'error reading file' }, () => Buffer.alloc(0))
    }
    this.state = step.state
    for (const p of step.send) {
      const bytes = (p.op === 'DATA' ? this.source.framed?.(p.data, p.block) : undefined) ?? encodePacket(p)
      sendTo(this.socket, bytes, this.peer, this.server.log)
    }
    if (step.timer === 'restart') this.armTimer()
    else if (step.timer === 'stop') this.clearTimer()
    if (isTerminal(this.state)) void this.finish(event)
  }

  private armedMs = 0

  private armTimer(): void {
    const ms = this.backoff ? retransmitDelay(this.timeoutMs, this.maxTimeoutMs, this.state.retries) : this.timeoutMs
    // refresh() re-arms with the timer's own interval: the common case (progress, same wait) costs no new timer
    if (this.timer !== undefined && ms === this.armedMs) this.timer.refresh()
    else {
      if (this.timer !== undefined) clearTimeout(this.timer)
      this.timer = setTimeout(this.onTimeout, ms)
      this.armedMs = ms
    }
  }

  private readonly onTimeout = (): void => {
    this.timer = undefined
    this.deliver({ type: 'timeout' })
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  private async finish(last: TransferEvent): Promise<void> {
    if (this.finished) return
    this.finished = true
    this.clearTimer()
    // Free the peer's slot now: a client may reuse its port for its next request at once.
    this.server.release(this)
    const ms = Math.round(performance.now() - this.startedAt)
    const bytes = bytesAcknowledged(this.state)
    const common = {
      peer: peerKey(this.peer),
      file: this.file.name,
      bytes,
      ms,
      blksize: this.info.blksize,
      windowsize: this.info.windowsize,
      retransmitted: this.state.retransmitted,
    }
    if (this.state.phase === 'done') {
      if (this.server.logsInfo) this.server.log.info(common, 'tftp transfer done')
      this.server.emit('onTransferDone', bytes, ms, this.info)
    } else {
      const failure = this.state.failure
      let reason: FailureReason = failure?.reason ?? 'aborted'
      if (this.readError !== null) reason = 'read-error'
      else if (this.superseded) reason = 'superseded'
      else if (last.type === 'abort' && this.server.closing) reason = 'shutdown'
      // A peer's own abort or new request is routine (PXE ROMs probe tsize that way); the rest is worth a warning.
      const level = reason === 'peer-error' || reason === 'superseded' ? 'info' : 'warn'
      this.server.log[level]({ ...common, reason, message: this.readError ?? failure?.message }, 'tftp transfer failed')
      this.server.emit('onTransferFailed', reason, this.info)
    }
    // Let the final packets (an ERROR) leave before closing the socket.
    await new Promise<void>((resolve) => setImmediate(resolve))
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve())
      } catch {
        resolve()
      }
    })
    await this.file.close().catch((e: Error) => this.server.log.warn({ file: this.file.name, err: e.message }, 'tftp file close failed'))
    this.resolveClosed()
    this.server.closedTransfer(this)
  }
}

class Server implements TftpServer {
  readonly log: Logger
  readonly malformed: LogLimiter
  /** Whether info lines are written: a transfer's start and done lines are not even built otherwise. */
  readonly logsInfo: boolean
  /** At capacity a storm sends thousands of RRQs a second: one line a second, with the count suppressed. */
  private readonly busy: LogLimiter
  closing = false
  private readonly settings: Settings
  private readonly events: TftpEvents
  private socket: dgram.Socket | undefined
  private files: FileStore | undefined
  /** Keyed by peer address:port; null while the request is still opening its file. */
  private readonly transfers = new Map<string, Transfer | null>()
  /** Every transfer whose socket and file are not closed yet (a finished one leaves `transfers` first). */
  private readonly live = new Set<Transfer>()
  private readonly idle = new Set<() => void>()
  /** RRQs waiting for a slot, oldest first (Map insertion order), by peer address:port; `heard` = performance.now() of the last copy. */
  private readonly waiting = new Map<string, { req: RequestPacket; peer: Peer; heard: number }>()

  constructor(opts: TftpServerOptions) {
    this.settings = settingsFrom(opts)
    this.log = opts.log
    this.logsInfo = opts.log.isLevelEnabled('info')
    this.events = opts.events ?? {}
    this.malformed = new LogLimiter(this.log, 20, 'tftp')
    this.busy = new LogLimiter(this.log, 1, 'tftp')
  }

  activeTransfers(): number {
    return this.transfers.size
  }

  emit<K extends keyof TftpEvents>(name: K, ...args: Parameters<NonNullable<TftpEvents[K]>>): void {
    const fn = this.events[name] as ((...a: unknown[]) => void) | undefined
    if (fn === undefined) return
    try {
      fn.apply(this.events, args)
    } catch (e) {
      this.log.warn({ hook: name, err: (e as Error)?.message ?? String(e) }, 'tftp event hook threw')
    }
  }

  async start(): Promise<{ port: number }> {
    if (this.socket) throw new Error('tftp server already started')
    const { root, virtualFiles, address, port } = this.settings
    try {
      this.files = await createFileStore({ root, virtualFiles })
    } catch (e) {
      throw configError('root', `is not usable: ${(e as Error)?.message ?? String(e)}`)
    }
    const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', lookup: literalLookup })
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        socket.close()
        reject(e)
      }
      socket.once('error', onError)
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError)
        resolve()
      })
    })
    // a storm's RRQs wait here while the loop works; capped by net.core.rmem_max (warned)
    sizeUdpBuffers(socket, { recv: UDP_BUFFER_BYTES, send: UDP_BUFFER_BYTES }, this.log, `tftp port ${socket.address().port}`)
    socket.on('message', (msg, rinfo) => this.onRequest(msg, { address: rinfo.address, port: rinfo.port }))
    socket.on('error', (e) => this.log.error({ err: e.message }, 'tftp server socket error'))
    this.socket = socket
    const bound = socket.address().port
    this.log.info({ address, port: bound, root: this.files.root }, 'tftp server listening')
    return { port: bound }
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    const socket = this.socket
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()))
    // Requests still opening their file see `closing` and give up; running ones are aborted.
    while (this.transfers.size > 0 || this.live.size > 0) {
      for (const t of this.live) t.abort('server shutting down')
      await new Promise<void>((resolve) => this.idle.add(resolve))
    }
  }

  release(t: Transfer): void {
    const key = peerKey(t.peer)
    if (this.transfers.get(key) === t) this.transfers.delete(key)
    this.admitWaiting()
  }

  /** Starts waiting RRQs, oldest first, while there are free slots; drops those not heard from for too long. */
  private admitWaiting(): void {
    if (this.closing) {
      this.waiting.clear()
      return
    }
    const now = performance.now()
    for (const [key, w] of this.waiting) {
      if (this.transfers.size >= this.settings.maxTransfers) return
      this.waiting.delete(key)
      if (now - w.heard > this.settings.maxQueueWaitMs) {
        this.busy.warn({ peer: key, file: w.req.filename, reason: 'too-many-transfers', waitedMs: Math.round(now - w.heard) }, 'tftp queued request dropped: not heard from for too long')
        this.emit('onRequestRefused', 'too-many-transfers', w.peer)
        continue
      }
      if (this.transfers.has(key)) continue
      this.startTransfer(w.req, w.peer)
    }
  }

  /** Queued requests (tests, metrics). */
  queuedRequests(): number {
    return this.waiting.size
  }

  closedTransfer(t: Transfer): void {
    this.live.delete(t)
    this.notifyIdle()
  }

  private notifyIdle(): void {
    this.admitWaiting()
    if (this.transfers.size > 0 || this.live.size > 0) return
    for (const fn of this.idle) fn()
    this.idle.clear()
  }

  private refuse(peer: Peer, reason: RefusalReason, code: number, message: string, level: 'info' | 'warn' = 'info'): void {
    this.log[level]({ peer: peerKey(peer), reason, code, message }, 'tftp request refused')
    this.emit('onRequestRefused', reason, peer)
    if (this.socket && !this.closing) sendTo(this.socket, encodeError(code, message), peer, this.log)
  }

  private onRequest(msg: Buffer, peer: Peer): void {
    if (this.closing) return
    if (peer.port === 0) {
      this.malformed.warn({ peer: peerKey(peer) }, 'tftp datagram from source port 0 dropped')
      this.emit('onRequestRefused', 'malformed', peer)
      return
    }
    const d = decodePacket(msg)
    if (!d.ok) {
      if (d.error.code === 'mail-mode' || d.error.code === 'unknown-mode') {
        this.refuse(peer, 'unsupported-mode', TFTP_ERROR.ILLEGAL_OPERATION, d.error.message)
        return
      }
      this.malformed.warn({ peer: peerKey(peer), code: d.error.code, length: msg.length }, 'tftp malformed packet dropped')
      this.emit('onRequestRefused', 'malformed', peer)
      return
    }
    const req = d.value
    if (req.op === 'WRQ') {
      this.refuse(peer, 'write-request', TFTP_ERROR.ACCESS_VIOLATION, 'read-only server')
      return
    }
    if (req.op !== 'RRQ') {
      this.log.debug({ peer: peerKey(peer), op: req.op }, 'tftp non-request packet on server port dropped')
      return
    }
    const key = peerKey(peer)
    const existing = this.transfers.get(key)
    if (existing === null || existing?.isRetransmissionOf(req)) {
      this.log.debug({ peer: key, file: req.filename }, 'tftp retransmitted request dropped')
      return
    }
    if (existing !== undefined) {
      this.log.info({ peer: key, file: req.filename, previous: existing.info.file }, 'tftp new request from a peer replaces its running transfer')
      this.transfers.delete(key)
      existing.supersede()
    }
    if (this.transfers.size >= this.settings.maxTransfers) {
      // no ERROR (it would end the client's boot, RFC 1350 §7): wait for a slot, or the client's retransmission
      const queued = this.waiting.get(key)
      if (queued !== undefined && sameRequest(queued.req, req)) {
        queued.heard = performance.now()
        return
      }
      this.waiting.delete(key)
      if (this.waiting.size < this.settings.maxQueued) {
        this.waiting.set(key, { req, peer, heard: performance.now() })
        return
      }
      this.busy.warn(
        { peer: key, file: req.filename, reason: 'too-many-transfers', maxTransfers: this.settings.maxTransfers, queued: this.waiting.size },
        'tftp request dropped: at capacity, the client will retransmit',
      )
      this.emit('onRequestRefused', 'too-many-transfers', peer)
      return
    }
    this.startTransfer(req, peer)
  }

  private startTransfer(req: RequestPacket, peer: Peer): void {
    const key = peerKey(peer)
    this.transfers.set(key, null)
    void this.accept(req, peer).catch((e: Error) => {
      this.log.error({ peer: key, err: e?.message ?? String(e) }, 'tftp request handling failed')
      if (this.transfers.get(key) === null) this.transfers.delete(key)
      this.notifyIdle()
    })
  }

  private async accept(req: RequestPacket, peer: Peer): Promise<void> {
    const key = peerKey(peer)
    const opened = await this.files!.open(req.filename, { peer })
    if (!opened.ok) {
      this.transfers.delete(key)
      this.notifyIdle()
      const { code, message } = fileRefusal(opened.error.code, opened.error.message)
      this.log.info({ peer: key, file: req.filename, reason: opened.error.code, detail: opened.error.message }, 'tftp file refused')
      this.refuse(peer, opened.error.code, code, message)
      return
    }
    const file = opened.value
    const n = negotiate(req, req.mode === 'octet' ? file.size : null, this.settings.limits)
    let socket: dgram.Socket | undefined
    try {
      if (this.closing) throw new Error('shutting down')
      socket = await this.bindTransferSocket()
      if (this.closing) {
        socket.close()
        throw new Error('shutting down')
      }
    } catch (e) {
      await file.close().catch(() => {})
      this.transfers.delete(key)
      this.notifyIdle()
      if (this.closing) {
        this.emit('onRequestRefused', 'shutting-down', peer)
        return
      }
      this.log.error({ peer: key, err: (e as Error)?.message }, 'tftp transfer socket bind failed')
      this.refuse(peer, 'socket-error', TFTP_ERROR.NOT_DEFINED, 'server error')
      return
    }
    // RFC 2349: a negotiated timeout is the client's interval, used as is; otherwise back off (RFC 1123 §4.2.3.2)
    const negotiated = n.timeoutSeconds !== null
    const timeoutMs = negotiated ? n.timeoutSeconds! * 1000 : this.settings.timeoutMs
    const source = file.blocks(n.blksize, req.mode)
    const t = new Transfer(
      this, socket, file, source, peer, req, n.oack, n.blksize, n.windowsize,
      timeoutMs, this.settings.maxTimeoutMs, !negotiated, this.settings.retries,
    )
    this.transfers.set(key, t)
    this.live.add(t)
    t.start()
  }

  private bindTransferSocket(): Promise<dgram.Socket> {
    const { address } = this.settings
    const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', lookup: literalLookup })
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        socket.close()
        reject(e)
      }
      socket.once('error', onError)
      socket.bind({ address, port: 0, exclusive: true }, () => {
        socket.off('error', onError)
        resolve(socket)
      })
    })
  }
}

/** Validates `opts` now (throws NetbootError CONFIG_INVALID naming the key); binds on `start()`. */
export function createTftpServer(opts: TftpServerOptions): TftpServer {
  return new Server(opts)
}
