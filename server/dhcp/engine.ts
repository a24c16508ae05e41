/**
 * The DHCP decision engine: one validated client request in, one decision out
 * (a reply with its destination, or a drop with a reason). No sockets here: the
 * server (server.ts) feeds it packets and sends what it returns.
 *
 * The work is an ordered chain of steps, coredhcp-style: each step reads the
 * exchange, may fill in the reply, and either lets the next step run or ends the
 * chain with a decision. The chain per message type (RFC 2131 §4.3):
 *
 *   DISCOVER  subnet → identify → policy → offer-address → options → boot → OFFER
 *   REQUEST   subnet → server-id → identify → policy → confirm-address → options → boot → ACK | NAK
 *   DECLINE   subnet → identify → decline                           (no reply)
 *   RELEASE   subnet → identify → release                           (no reply)
 *   INFORM    subnet → identify → options → boot → ACK without address (§4.3.5)
 */
import {
  classifyClient, ipxeEncapsulatedOptions, replyDestination, selectBootFile,
  type BootConfig, type ClientClass, type ReplyDestination,
} from './decide/index.js'
import {
  MessageType, Opt, domainName, dnsServers, encodeReply, hostName, interfaceMtu, leaseTime, macOf, newReply, ntpServers, optionValue,
  rebindingTime, renewalTime, requestedIp, routers, serverId as serverIdCodec, subnetMask, broadcastAddress, textBytes,
  writeOption, bootfileName, tftpServerName, vendorClass as vendorClassCodec, parameterRequestList, vendorSpecific, PxeSubOpt, messageTypeOf,
  type ClientMessageType, type DhcpPacket, type ServerMessageType,
} from './codec/index.js'
import { cidrContains, intToIPv4, ipv4ToInt, type Cidr } from '../inventory/addresses.js'
import type { DhcpHost, Store } from '../store/store.js'
import type { LeaseTable, PoolRange } from './lease/table.js'
import type { Lease } from './lease/state.js'

export interface SubnetRuntime {
  readonly name: string
  readonly cidr: Cidr
  readonly interface?: string
  readonly ranges: readonly PoolRange[]
  /** This server's address on the subnet (server identifier, next-server), or the global one. */
  readonly serverAddress: string
  readonly router?: string
  readonly dns: readonly string[]
  readonly domain?: string
  readonly ntp: readonly string[]
  readonly mtu?: number
  /** seconds */
  readonly leaseTime: number
}

export interface EngineConfig {
  /** `server`: addresses and boot information. `proxy`: boot information only (PXE spec §2.2.4 proxyDHCP). */
  readonly mode: 'server' | 'proxy'
  readonly subnets: readonly SubnetRuntime[]
  readonly unknown: { readonly action: 'discover' | 'reboot' | 'ignore'; readonly leaseTime: number }
  /** Builds the boot configuration (URLs, TFTP server) for a subnet's server address. */
  readonly boot: (subnet: SubnetRuntime) => BootConfig
  /** How long a DECLINEd address stays out of use, seconds (RFC 2131 §3.1 step 5 leaves it to the server). */
  readonly declineHold: number
  /** How long an offered address is held for the client's REQUEST, seconds. */
  readonly offerHold: number
}

export type DropReason =
  | 'no-subnet' | 'unknown-node-ignored' | 'other-server-selected' | 'no-address-available'
  | 'reserved-elsewhere' | 'not-our-lease' | 'encode-failed' | 'no-reply-needed' | 'not-a-boot-client'

export interface DecisionLog {
  mac: string
  xid: string
  type: string
  subnet?: string
  node?: string
  ip?: string
  boot?: string
  firmware?: string
  arch?: string
  reason?: string
}

export type Decision =
  | { kind: 'reply'; type: 'OFFER' | 'ACK' | 'NAK'; bytes: Uint8Array; dest: ReplyDestination; log: DecisionLog }
  | { kind: 'drop'; reason: DropReason; log: DecisionLog }

interface Exchange {
  readonly req: DhcpPacket
  readonly type: ClientMessageType
  readonly via?: string
  readonly now: number
  readonly mac: string
  readonly client: ClientClass
  readonly log: DecisionLog
  subnet?: SubnetRuntime
  /** The inventory's entry for this MAC, when it has one. */
  node?: DhcpHost
  /** The node's reserved address on this subnet. */
  reserved?: string
  ip?: string
  reply?: DhcpPacket
  leaseSeconds?: number
}

type Step = (x: Exchange) => Promise<Decision | undefined> | Decision | undefined

/** At most this many MACs' inventory answers are kept (a flood of made-up MACs cannot grow it past this). */
export const HOST_CACHE_MAX = 65_536

export class DhcpEngine {
  /**
   * The inventory's answer per MAC (`findDhcpHost`, a SQLite read of ~40 µs), kept
   * while the store's generation stands: every inventory change an admin or the
   * system makes (a node added, removed, its MAC, address or DHCP overrides changed)
   * moves it (Store.generation), and the next request empties this map first. So a
   * DORA's REQUEST reuses its DISCOVER's lookup and the next phase's DORA both, and
   * a change is seen by the very next packet. "No such MAC" is kept too (adding the
   * node moves the generation). Entries are the store's frozen-shape DhcpHost
   * values, never modified here. Bounded: past HOST_CACHE_MAX the oldest entry goes.
   */
  private readonly hosts = new Map<string, DhcpHost | null>()
  private hostsGeneration = -1

  constructor (
    private readonly cfg: EngineConfig,
    private readonly store: Store,
    private readonly leases: LeaseTable,
  ) {}

  /** The inventory's entry for `mac`, from the kept answers when the store's generation has not moved. */
  private hostOf (mac: string): DhcpHost | undefined | Promise<DhcpHost | undefined> {
    const generation = this.store.generation
    if (generation !== this.hostsGeneration) {
      this.hosts.clear()
      this.hostsGeneration = generation
    }
    const hit = this.hosts.get(mac)
    if (hit !== undefined) return hit ?? undefined
    return this.store.findDhcpHost(mac).then((host) => {
      // keep it only if nothing changed while the read was in flight (a newer generation's map is not this answer's)
      if (this.store.generation === generation && this.hostsGeneration === generation) {
        if (this.hosts.size >= HOST_CACHE_MAX) this.hosts.delete(this.hosts.keys().next().value!)
        this.hosts.set(mac, host ?? null)
      }
      return host
    })
  }

  /**
   * Decides the answer to one validated client request that arrived on `via`
   * (undefined: relayed or unbound socket); `port` is the server port it came to
   * (67, or 4011 for proxyDHCP boot-server requests).
   */
  async handle (req: DhcpPacket, type: ClientMessageType, via: string | undefined, now = Date.now(), port = 67): Promise<Decision> {
    const mac = macOf(req)
    const client = classifyClient(req)
    const x: Exchange = {
      req, type, now, mac, client,
      ...(via !== undefined ? { via } : {}),
      log: { mac, xid: req.xid.toString(16).padStart(8, '0'), type: TYPE_NAMES[type] ?? String(type), firmware: client.firmware, arch: client.arch },
    }
    const chain = this.cfg.mode === 'proxy' ? this.proxyChain(type, port) : this.chain(type)
    for (const step of chain) {
      // most steps are synchronous: await only the ones that return a promise (one microtask less each)
      const r = step(x)
      const d = r instanceof Promise ? await r : r
      if (d !== undefined) return d
    }
    return drop(x, 'no-reply-needed')
  }

  private chain (type: ClientMessageType): Step[] {
    switch (type) {
      case MessageType.DISCOVER: return [this.subnet, this.identify, this.policy, this.offerAddress, this.options, this.boot, this.send]
      case MessageType.REQUEST: return [this.subnet, this.serverSelected, this.identify, this.policy, this.confirmAddress, this.options, this.boot, this.send]
      case MessageType.DECLINE: return [this.subnet, this.identify, this.decline]
      case MessageType.RELEASE: return [this.subnet, this.identify, this.release]
      case MessageType.INFORM: return [this.subnet, this.identify, this.inform, this.options, this.boot, this.send]
      default: return []
    }
  }

  /**
   * proxyDHCP (PXE spec 2.1 §2.2.4, §2.2.5): another server hands out addresses.
   * A PXE client's DISCOVER on 67 gets an OFFER with no address, `PXEClient` in
   * option 60 and the boot file; its REQUEST to 4011 gets the ACK. iPXE, UEFI
   * HTTP and plain clients that do not ask for PXE are not ours to answer.
   */
  private proxyChain (type: ClientMessageType, port: number): Step[] {
    if (type === MessageType.DISCOVER && port !== 4011) return [this.subnet, this.pxeOnly, this.identify, this.policy, this.proxyOffer, this.boot, this.send]
    if (type === MessageType.REQUEST && port === 4011) return [this.subnet, this.pxeOnly, this.identify, this.policy, this.proxyOffer, this.boot, this.send]
    if (type === MessageType.INFORM && port === 4011) return [this.subnet, this.pxeOnly, this.identify, this.policy, this.proxyOffer, this.boot, this.send]
    return []
  }

  private readonly pxeOnly: Step = (x) => {
    if (x.client.firmware !== 'pxe' && x.client.firmware !== 'ipxe') return drop(x, 'not-a-boot-client')
    return undefined
  }

  private readonly proxyOffer: Step = (x) => {
    const type = x.type === MessageType.DISCOVER ? MessageType.OFFER : MessageType.ACK
    x.reply = newReply(x.req, type as ServerMessageType, x.subnet!.serverAddress)
    x.reply.ciaddr = '0.0.0.0'
    writeOption(x.reply.options, vendorClassCodec, 'PXEClient')
    // PXE_DISCOVERY_CONTROL bit 3: the boot file name is given; skip boot-server discovery.
    writeOption(x.reply.options, vendorSpecific, [{ code: PxeSubOpt.DISCOVERY_CONTROL, data: new Uint8Array([8]) }])
    return undefined
  }

  /**
   * The subnet a request belongs to: the relay's (giaddr, RFC 2131 §4.3.1), else
   * the one configured on (or containing an address of) the receiving interface,
   * else, for a client that already has an address (INFORM, renewing REQUEST), the
   * one containing ciaddr.
   */
  private readonly subnet: Step = (x) => {
    const { giaddr, ciaddr } = x.req
    let s: SubnetRuntime | undefined
    if (giaddr !== '0.0.0.0') s = this.cfg.subnets.find((n) => cidrContains(n.cidr, giaddr))
    else if (x.via !== undefined) s = this.cfg.subnets.find((n) => n.interface === x.via)
    if (s === undefined && giaddr === '0.0.0.0' && ciaddr !== '0.0.0.0') s = this.cfg.subnets.find((n) => cidrContains(n.cidr, ciaddr))
    if (s === undefined && giaddr === '0.0.0.0' && x.via === undefined && this.cfg.subnets.length === 1) s = this.cfg.subnets[0]
    if (s === undefined) return drop(x, 'no-subnet')
    x.subnet = s
    x.log.subnet = s.name
    return undefined
  }

  /** RFC 2131 §4.3.2: a REQUEST naming another server's identifier means the client chose that server. */
  private readonly serverSelected: Step = (x) => {
    const sid = optionValue(x.req.options, serverIdCodec)
    if (sid !== undefined && sid !== x.subnet!.serverAddress) return drop(x, 'other-server-selected')
    return undefined
  }

  private readonly identify: Step = (x) => {
    const h = this.hostOf(x.mac)
    if (h instanceof Promise) return h.then((host) => this.identified(x, host))
    return this.identified(x, h)
  }

  private identified (x: Exchange, host: DhcpHost | undefined): undefined {
    if (host === undefined) return undefined
    x.node = host
    x.log.node = host.node
    const s = x.subnet!
    const ip = host.ip
    if (ip !== undefined && cidrContains(s.cidr, ip)) x.reserved = ip
    else if (ip !== undefined) x.log.reason = `reserved ${ip} is not on subnet ${s.name}`
    return undefined
  }

  /** Unknown MACs: per `unknown_nodes.action`, a short pool lease, or silence. */
  private readonly policy: Step = (x) => {
    if (x.node === undefined && this.cfg.unknown.action === 'ignore') return drop(x, 'unknown-node-ignored')
    return undefined
  }

  private readonly offerAddress: Step = async (x) => {
    const s = x.subnet!
    let ip = x.reserved
    if (ip === undefined) {
      const want = optionValue(x.req.options, requestedIp)
      ip = await this.leases.allocate(s, x.mac, want, x.now, async (cand) => await this.store.isReservedIp(cand))
      if (ip === undefined) return drop(x, 'no-address-available')
    } else if (!this.leases.availableTo(ip, x.mac, x.now)) {
      // the reserved address is held by another client (a stale pool lease): never hand it out twice
      return drop(x, 'reserved-elsewhere')
    }
    await this.leases.apply('offer', this.lease(x, ip, this.cfg.offerHold))
    x.ip = ip
    x.leaseSeconds = this.leaseSeconds(x)
    x.reply = newReply(x.req, MessageType.OFFER as ServerMessageType, s.serverAddress)
    x.reply.yiaddr = ip
    return undefined
  }

  /**
   * RFC 2131 §4.3.2: SELECTING/INIT-REBOOT carry option 50, RENEWING/REBINDING
   * carry ciaddr. ACK only the address this client may have; NAK anything else,
   * including a pool address of a MAC the inventory now knows (it comes back for
   * its reserved one).
   */
  private readonly confirmAddress: Step = async (x) => {
    const s = x.subnet!
    const asked = optionValue(x.req.options, requestedIp) ?? (x.req.ciaddr !== '0.0.0.0' ? x.req.ciaddr : undefined)
    const nak = (why: string): Decision => this.nak(x, why)
    if (asked === undefined) return nak('no requested address')
    x.log.ip = asked
    if (!cidrContains(s.cidr, asked)) return nak(`requested ${asked} is not on subnet ${s.name}`)
    if (x.node !== undefined && x.reserved !== undefined) {
      if (asked !== x.reserved) return nak(`node ${x.node.node} has reserved address ${x.reserved}`)
      if (!this.leases.availableTo(asked, x.mac, x.now)) return drop(x, 'reserved-elsewhere')
    } else {
      const own = this.leases.byMac(s.name, x.mac)
      const inPool = s.ranges.some((r) => { const n = ipv4ToInt(asked); return n >= r.first && n <= r.last })
      if (!inPool) return nak(`requested ${asked} is not in the pool`)
      if (own?.ip !== asked) {
        // INIT-REBOOT after a restart forgot the offer: grant it only if nobody holds it.
        if (!this.leases.availableTo(asked, x.mac, x.now) || (await this.store.isReservedIp(asked))) return nak(`${asked} is held by another client`)
      }
    }
    x.ip = asked
    x.leaseSeconds = this.leaseSeconds(x)
    const l = await this.leases.apply('ack', this.lease(x, asked, x.leaseSeconds))
    if (l === undefined) return nak(`${asked} is declined`)
    x.reply = newReply(x.req, MessageType.ACK as ServerMessageType, s.serverAddress)
    x.reply.yiaddr = asked
    return undefined
  }

  /** RFC 2131 §4.3.3: the address is in use elsewhere; keep it out of the pool for a while. No reply. */
  private readonly decline: Step = async (x) => {
    const ip = optionValue(x.req.options, requestedIp)
    if (ip === undefined || !cidrContains(x.subnet!.cidr, ip)) return drop(x, 'not-our-lease')
    x.log.ip = ip
    const l = this.leases.byIp(ip)
    if (l !== undefined && l.mac !== x.mac && l.state !== 'offered') return drop(x, 'not-our-lease')
    await this.leases.apply('decline', this.lease(x, ip, this.cfg.declineHold))
    x.log.reason = `declined; held for ${this.cfg.declineHold}s`
    return drop(x, 'no-reply-needed')
  }

  /** RFC 2131 §4.3.4: the client gives its address back. No reply. */
  private readonly release: Step = async (x) => {
    const ip = x.req.ciaddr
    x.log.ip = ip
    const l = this.leases.byIp(ip)
    if (l === undefined || l.mac !== x.mac) return drop(x, 'not-our-lease')
    await this.leases.apply('release', { ...l, expiresAt: x.now })
    return drop(x, 'no-reply-needed')
  }

  /** RFC 2131 §4.3.5: configuration only; no lease, no yiaddr, no lease time. */
  private readonly inform: Step = (x) => {
    x.reply = newReply(x.req, MessageType.ACK as ServerMessageType, x.subnet!.serverAddress)
    x.reply.ciaddr = x.req.ciaddr
    x.log.ip = x.req.ciaddr
    return undefined
  }

  /** Per-subnet options (RFC 2132 §3, §5, §8, §9), the node's overrides over them, and its host name. */
  private readonly options: Step = (x) => {
    const s = x.subnet!
    const n = x.node?.dhcp ?? {}
    const o = x.reply!.options
    writeOption(o, subnetMask, intToIPv4(s.cidr.prefix === 0 ? 0 : (0xffffffff << (32 - s.cidr.prefix)) >>> 0))
    writeOption(o, broadcastAddress, intToIPv4(s.cidr.last))
    const router = n.router ?? s.router
    const dns = n.dns ?? s.dns
    const ntp = n.ntp ?? s.ntp
    const domain = n.domain ?? s.domain
    const mtu = n.mtu ?? s.mtu
    if (router !== undefined) writeOption(o, routers, [router])
    if (dns.length > 0) writeOption(o, dnsServers, [...dns])
    if (domain !== undefined) writeOption(o, domainName, domain)
    if (ntp.length > 0) writeOption(o, ntpServers, [...ntp])
    if (mtu !== undefined) writeOption(o, interfaceMtu, mtu)
    if (x.node !== undefined) writeOption(o, hostName, x.node.node)
    if (x.leaseSeconds !== undefined) {
      writeOption(o, leaseTime, x.leaseSeconds)
      writeOption(o, renewalTime, Math.floor(x.leaseSeconds / 2))
      writeOption(o, rebindingTime, Math.floor(x.leaseSeconds * 7 / 8))
    }
    return undefined
  }

  /** What the firmware boots next (decide/select-boot-file.ts); iPXE also gets no-pxedhcp (175.176). */
  private readonly boot: Step = (x) => {
    const r = x.reply!
    const sel = selectBootFile(x.client, this.cfg.boot(x.subnet!))
    const asked = optionValue(x.req.options, parameterRequestList) ?? []
    switch (sel.kind) {
      case 'tftp':
        r.siaddr = sel.server
        r.file = sel.file
        if (asked.includes(Opt.TFTP_SERVER_NAME)) writeOption(r.options, tftpServerName, sel.server)
        if (asked.includes(Opt.BOOTFILE_NAME)) writeOption(r.options, bootfileName, sel.file)
        x.log.boot = `tftp:${sel.file}`
        break
      case 'http':
        r.file = sel.url
        writeOption(r.options, bootfileName, sel.url)
        writeOption(r.options, vendorClassCodec, sel.vendorClass)
        x.log.boot = sel.url
        break
      case 'ipxe-script':
        r.file = sel.url
        writeOption(r.options, bootfileName, sel.url)
        // no-pxedhcp tells iPXE not to wait for proxy offers; a proxy must not send it
        if (this.cfg.mode === 'server') r.options.set(Opt.IPXE_ENCAP, ipxeEncapsulatedOptions())
        x.log.boot = sel.url
        break
      case 'none':
        break
    }
    return undefined
  }

  private readonly send: Step = (x) => {
    const reply = x.reply!
    const enc = encodeReply(reply, { request: x.req })
    if (!enc.ok) return drop(x, 'encode-failed', enc.error.message)
    if (x.ip !== undefined) x.log.ip = x.ip
    const type = messageTypeOf(reply) === MessageType.OFFER ? 'OFFER' : 'ACK'
    return { kind: 'reply', type, bytes: enc.value, dest: replyDestination(x.req, reply), log: x.log }
  }

  private nak (x: Exchange, why: string): Decision {
    const reply = newReply(x.req, MessageType.NAK as ServerMessageType, x.subnet!.serverAddress)
    reply.options.set(Opt.MESSAGE, textBytes(why.slice(0, 200)))
    x.log.reason = why
    const enc = encodeReply(reply, { request: x.req })
    if (!enc.ok) return drop(x, 'encode-failed', enc.error.message)
    return { kind: 'reply', type: 'NAK', bytes: enc.value, dest: replyDestination(x.req, reply), log: x.log }
  }

  private leaseSeconds (x: Exchange): number {
    return x.node !== undefined && x.reserved !== undefined ? x.subnet!.leaseTime : this.cfg.unknown.leaseTime
  }

  private lease (x: Exchange, ip: string, seconds: number): Omit<Lease, 'state'> {
    const hn = optionValue(x.req.options, hostName)
    const cid = x.req.options.get(Opt.CLIENT_ID)
    return {
      ip, mac: x.mac, subnet: x.subnet!.name, startsAt: x.now, expiresAt: x.now + seconds * 1000,
      ...(hn !== undefined ? { hostname: hn.slice(0, 255) } : {}),
      ...(cid !== undefined ? { clientId: Buffer.from(cid).toString('hex') } : {}),
    }
  }
}

const TYPE_NAMES: Record<number, string> = { 1: 'DISCOVER', 3: 'REQUEST', 4: 'DECLINE', 7: 'RELEASE', 8: 'INFORM' }

function drop (x: Exchange, reason: DropReason, detail?: string): Decision {
  if (detail !== undefined) x.log.reason = detail
  return { kind: 'drop', reason, log: x.log }
}
