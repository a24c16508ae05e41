/**
 * The DHCP server's sockets. One UDP socket on 0.0.0.0:67 per provisioning
 * interface, bound to that device (SO_BINDTODEVICE, see net/bind-device.ts): it
 * hears only that segment, and its broadcast replies leave through it whatever
 * the routing table says. When relayed subnets are configured, one more unbound
 * socket takes unicast from relays (giaddr set) arriving on any interface; it
 * ignores everything else, so a request from a non-provisioning segment is never
 * answered. With no interfaces configured (development), one unbound socket
 * serves everything, and the start-up log says so.
 *
 * Every packet ends in exactly one log line: the decision (MAC, xid, type,
 * address, boot file) or the reason it was dropped, naming the peer.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import type { Logger } from 'pino'
import { Counter, Histogram, type Registry } from 'prom-client'
import { bindToDevice } from '../net/bind-device.js'
import { DHCP_RECV_BUFFER_BYTES, sizeUdpBuffers, UDP_BUFFER_BYTES, type BufferSizes } from '../net/socket-buffers.js'
import { decodePacket, macOf, validateClientRequest } from './codec/index.js'
import type { Decision, DhcpEngine } from './engine.js'

/**
 * Where the counters and the histogram go: registered on `registry`, or observed on
 * `metrics` (the worker thread's, which relays them to the main thread's: worker.ts).
 */
export type DhcpServerOptions = DhcpServerSetup & (
  | { readonly registry: Registry; readonly metrics?: undefined }
  | { readonly metrics: DhcpMetrics; readonly registry?: undefined })

interface DhcpServerSetup {
  readonly engine: DhcpEngine
  /** Provisioning interfaces; empty = one unbound socket for everything. */
  readonly interfaces: readonly string[]
  /** Also listen unbound for relayed requests (subnets without a local interface). */
  readonly relays: boolean
  readonly port: number
  /** proxyDHCP: also serve PXE boot-server requests on this port (4011). */
  readonly proxyPort?: number
  /** Where replies to clients go; 68 except in tests. */
  readonly clientPort?: number
  readonly log: Logger
  /**
   * Kernel receive and send buffer per socket, octets (default 32 MiB receive,
   * 4 MiB send; past net.core.rmem_max / wmem_max with CAP_NET_ADMIN, else capped
   * with a warning at start). A storm's burst of DISCOVERs waits here while the
   * loop works (net/socket-buffers.ts).
   */
  readonly bufferBytes?: number
}

type State = 'stopped' | 'starting' | 'serving' | 'closing'

export class DhcpServer {
  private state: State = 'stopped'
  private readonly sockets: Socket[] = []
  private readonly metrics: DhcpMetrics
  private inflight = 0
  private buffers: BufferSizes | undefined

  private readonly logsInfo: boolean

  constructor (private readonly o: DhcpServerOptions) {
    this.metrics = o.metrics !== undefined ? o.metrics : dhcpMetrics(o.registry)
    this.logsInfo = o.log.isLevelEnabled('info')
  }

  async start (): Promise<void> {
    if (this.state !== 'stopped') throw new Error(`dhcp server cannot start while ${this.state}`)
    this.state = 'starting'
    try {
      const ports = [this.o.port, ...(this.o.proxyPort !== undefined ? [this.o.proxyPort] : [])]
      for (const port of ports) {
        if (this.o.interfaces.length === 0) {
          this.o.log.warn({ port }, 'dhcp: no provisioning interfaces configured (server.interfaces); answering on every interface')
          await this.open(undefined, 'any', port)
        } else {
          for (const ifname of this.o.interfaces) await this.open(ifname, 'device', port)
          if (this.o.relays) await this.open(undefined, 'relay', port)
        }
      }
    } catch (e) {
      await this.close()
      throw e
    }
    this.state = 'serving'
    this.o.log.info({ port: this.o.port, interfaces: this.o.interfaces, relays: this.o.relays }, 'dhcp: serving')
  }

  /** The effective kernel buffer sizes of the last socket opened (undefined before start). */
  socketBuffers (): BufferSizes | undefined {
    return this.buffers
  }

  /** The local port of every socket, in the order opened (empty before start). */
  ports (): number[] {
    return this.sockets.map((s) => s.address().port)
  }

  async close (): Promise<void> {
    this.state = 'closing'
    await Promise.all(this.sockets.splice(0).map(async (s) => await new Promise<void>((resolve) => s.close(() => resolve()))))
    this.state = 'stopped'
  }

  private async open (ifname: string | undefined, role: 'device' | 'relay' | 'any', port: number): Promise<void> {
    const sock = createSocket({ type: 'udp4', reuseAddr: true })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(port, '0.0.0.0', () => { sock.off('error', reject); resolve() })
    })
    try {
      if (ifname !== undefined) bindToDevice(sock, ifname)
      sock.setBroadcast(true)
      const want = { recv: this.o.bufferBytes ?? DHCP_RECV_BUFFER_BYTES, send: this.o.bufferBytes ?? UDP_BUFFER_BYTES }
      this.buffers = sizeUdpBuffers(sock, want, this.o.log, `dhcp ${role}${ifname !== undefined ? ` ${ifname}` : ''} port ${port}`)
    } catch (e) {
      // not yet in this.sockets: close() would not close it (a bad interface left it bound)
      sock.close()
      throw e
    }
    sock.on('error', (err) => this.o.log.error({ err, iface: ifname }, 'dhcp: socket error'))
    sock.on('message', (msg, peer) => { void this.receive(sock, role, ifname, port, msg, peer) })
    this.sockets.push(sock)
  }

  private async receive (sock: Socket, role: 'device' | 'relay' | 'any', via: string | undefined, port: number, msg: Buffer, peer: RemoteInfo): Promise<void> {
    if (this.state !== 'serving') return
    const started = performance.now()
    const from = `${peer.address}:${peer.port}`
    const dec = decodePacket(msg)
    if (!dec.ok) {
      this.metrics.drops.inc({ reason: dec.error.code })
      this.o.log.warn({ peer: from, iface: via, len: msg.length, reason: dec.error.code, detail: dec.error.message }, 'dhcp: dropped malformed packet')
      return
    }
    const pkt = dec.value
    const val = validateClientRequest(pkt)
    if (!val.ok) {
      this.metrics.drops.inc({ reason: val.error.code })
      this.o.log.warn({ peer: from, iface: via, mac: safeMac(pkt), xid: pkt.xid.toString(16), reason: val.error.code }, 'dhcp: dropped packet')
      return
    }
    // the relay socket answers relays only; broadcasts reach it from every segment
    if (role === 'relay' && pkt.giaddr === '0.0.0.0') return
    this.inflight++
    let d: Decision
    try {
      d = await this.o.engine.handle(pkt, val.value.messageType, via, Date.now(), port)
    } catch (err) {
      this.metrics.drops.inc({ reason: 'internal' })
      this.o.log.error({ err, peer: from, mac: safeMac(pkt), xid: pkt.xid.toString(16) }, 'dhcp: failed to handle request')
      return
    } finally {
      this.inflight--
    }
    // closed while deciding (the lease may be stored): the socket is gone, nothing is sent
    if (this.state !== 'serving') return
    this.metrics.requests.inc({ type: d.log.type })
    if (d.kind === 'drop') {
      this.metrics.drops.inc({ reason: d.reason })
      const level = d.reason === 'no-reply-needed' || d.reason === 'other-server-selected' ? 'info' : 'warn'
      this.o.log[level]({ ...d.log, peer: from, iface: via, result: d.reason }, 'dhcp: no reply')
      return
    }
    // PXE spec §2.2.5: a boot-server (4011) reply goes back to where the request came from.
    const toPort = d.dest.kind === 'relay' ? d.dest.port : port === this.o.proxyPort ? peer.port : this.o.clientPort ?? d.dest.port
    const toAddr = port === this.o.proxyPort && d.dest.kind !== 'relay' ? peer.address : d.dest.address
    sock.send(d.bytes, toPort, toAddr, (err) => {
      if (err !== null && err !== undefined) this.o.log.error({ err, ...d.log, to: d.dest.address }, 'dhcp: send failed')
    })
    this.metrics.replies.inc({ type: d.type })
    this.metrics.latency.observe({ type: d.log.type }, (performance.now() - started) / 1000)
    // the reply line is the busiest log line of a storm: not even built below info
    if (this.logsInfo) this.o.log.info({ ...d.log, peer: from, iface: via, reply: d.type, to: `${toAddr}:${toPort}`, dest: d.dest.reason }, 'dhcp: reply')
  }
}

function safeMac (p: Parameters<typeof macOf>[0]): string {
  try { return macOf(p) } catch { return '?' }
}

/** What DhcpServer observes; dhcpMetrics gives the Prometheus metrics on a registry. */
export interface DhcpMetrics {
  readonly requests: { inc (labels: { type: string }, value?: number): void }
  readonly replies: { inc (labels: { type: string }, value?: number): void }
  readonly drops: { inc (labels: { reason: string }, value?: number): void }
  readonly latency: { observe (labels: { type: string }, seconds: number): void }
}

/** The DHCP metrics on `registry`, made once and shared by every server using it. */
export function dhcpMetrics (registry: Registry): DhcpMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make()
  return {
    requests: get('netboot_dhcp_requests_total', () => new Counter({ name: 'netboot_dhcp_requests_total', help: 'DHCP requests decided, by message type', labelNames: ['type'], registers: [registry] })),
    replies: get('netboot_dhcp_replies_total', () => new Counter({ name: 'netboot_dhcp_replies_total', help: 'DHCP replies sent, by type', labelNames: ['type'], registers: [registry] })),
    drops: get('netboot_dhcp_drops_total', () => new Counter({ name: 'netboot_dhcp_drops_total', help: 'DHCP packets not answered, by reason', labelNames: ['reason'], registers: [registry] })),
    latency: get('netboot_dhcp_decision_seconds', () => new Histogram({
      name: 'netboot_dhcp_decision_seconds', help: 'Time from receipt to reply', labelNames: ['type'], registers: [registry],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    })),
  }
}
