/**
 * Router advertisements on the provisioning interfaces (RFC 4861 §6.2). netboot is
 * not a router: every RA says router lifetime 0, M=0, O=0, and carries only the
 * source link-layer address and what the configuration adds (MTU, prefixes). It
 * exists because iPXE, on an IPv4-only segment, waits ~16 s for an RA before it
 * goes on ("Configuring (net0 …)"); any RA that arrives while it solicits ends
 * that wait when M and O are clear (ipxe src/net/ndp.c, ipv6conf_rx_router_advertisement).
 *
 * Per interface, one raw ICMPv6 socket (net/icmp6.ts) hears router solicitations
 * (ff02::2) and other routers' advertisements, and a small state machine sends:
 *
 *   advertising ──(a real router's RA heard, §6.2.7)──▶ yielded ──close()──▶ closed
 *        ▲  └──────────────────────── close() ───────────────────────────────▲
 *        └──(no router RA for the hold time, decide.ts yieldHoldMs)── yielded
 *
 * All RAs go to ff02::1 from the interface's link-local address (§6.1.2, §6.2.6),
 * solicited ones after a random 0–0.5 s and never closer than 3 s to the previous
 * one (decide.ts). A bad solicitation is dropped with a warning naming the peer.
 */
import { networkInterfaces } from 'node:os'
import type { Logger } from 'pino'
import { LogLimiter } from '../log.js'
import { Icmp6Socket, type Icmp6Packet } from '../net/icmp6.js'
import { decodeNd, encodeRa, ICMP6_ROUTER_ADVERTISEMENT, ICMP6_ROUTER_SOLICITATION, type PrefixInfo } from './codec.js'
import { ALL_NODES, describe, invalidAdvertisement, invalidSolicitation, isRealRouter, nextUnsolicitedDelay, rateLimited, solicitedSendTime, yieldHoldMs } from './decide.js'

export interface LinkInfo { readonly linkLocal?: string; readonly mac?: string }

export interface RaServerOptions {
  readonly interfaces: readonly string[]
  readonly minIntervalS: number
  readonly maxIntervalS: number
  readonly mtu?: number
  readonly prefixes: readonly PrefixInfo[]
  readonly log: Logger
  readonly random?: () => number
  /** The interface's usable link-local address and MAC; default from os.networkInterfaces(). */
  readonly linkInfo?: (ifname: string) => LinkInfo
}

export type AdvertiserState = 'advertising' | 'yielded' | 'closed'

export interface AdvertiserStats { sent: number; solicitations: number; badSolicitations: number; sendErrors: number }

/** A failed send (no link-local address yet: the link has no carrier or is in DAD) is retried this often, this many times. */
const RETRY_MS = 1_000
const MAX_RETRIES = 10
/** A peer's bad solicitations are logged at most once per this period (a flood must not flood the log). */
const BAD_LOG_PERIOD_MS = 60_000
const BAD_LOG_PEERS = 1_024

export function hostLinkInfo (ifname: string): LinkInfo {
  const list = networkInterfaces()[ifname] ?? []
  const ll = list.find((a) => a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:'))
  const mac = list.find((a) => a.mac !== '00:00:00:00:00:00')?.mac
  return { ...(ll !== undefined ? { linkLocal: ll.address.split('%')[0]! } : {}), ...(mac !== undefined ? { mac } : {}) }
}

class Advertiser {
  state: AdvertiserState = 'advertising'
  readonly stats: AdvertiserStats = { sent: 0, solicitations: 0, badSolicitations: 0, sendErrors: 0 }
  private readonly sock: Icmp6Socket
  private lastMulticast: number | undefined
  private unsolicitedAt: number | undefined
  private unsolicitedTimer: NodeJS.Timeout | undefined
  private solicitedAt: number | undefined
  private solicitedTimer: NodeJS.Timeout | undefined
  private unsolicitedSent = 0
  private yieldTimer: NodeJS.Timeout | undefined
  private readonly badLogged = new Map<string, number>()

  /** Per peer once a period (above), and at most a few lines a second in all: spoofed sources defeat a per-peer limit alone. */
  private readonly badLog: LogLimiter

  constructor (readonly ifname: string, private readonly o: RaServerOptions, private readonly log: Logger) {
    this.badLog = new LogLimiter(log, 5, 'ra')
    try {
      this.sock = new Icmp6Socket({ ifname, types: [ICMP6_ROUTER_SOLICITATION, ICMP6_ROUTER_ADVERTISEMENT], joinAllRouters: true, onPacket: (p) => { this.onPacket(p) } })
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      throw new Error(`ra: cannot open an ICMPv6 socket on interface '${ifname}' (ra.interfaces): ${(e as Error).message}${code === 'EPERM' ? ' (needs CAP_NET_RAW)' : ''}`, { cause: e })
    }
    // §6.2.4: the first advertisement goes out as soon as the interface advertises.
    this.scheduleUnsolicited(0)
  }

  private get random (): () => number { return this.o.random ?? Math.random }

  private scheduleUnsolicited (delayMs: number): void {
    clearTimeout(this.unsolicitedTimer)
    const at = rateLimited(Date.now() + delayMs, this.lastMulticast)
    this.unsolicitedAt = at
    this.unsolicitedTimer = setTimeout(() => {
      this.unsolicitedAt = undefined
      this.unsolicitedTimer = undefined
      if (this.state !== 'advertising') return
      if (this.send('unsolicited')) this.unsolicitedSent++
      this.scheduleUnsolicited(nextUnsolicitedDelay(this.o.minIntervalS * 1000, this.o.maxIntervalS * 1000, this.unsolicitedSent, this.random))
    }, Math.max(0, at - Date.now()))
  }

  private scheduleSolicited (at: number, retries: number): void {
    this.solicitedAt = at
    this.solicitedTimer = setTimeout(() => {
      this.solicitedAt = undefined
      this.solicitedTimer = undefined
      if (this.state !== 'advertising') return
      if (!this.send('solicited') && retries < MAX_RETRIES) this.scheduleSolicited(Date.now() + RETRY_MS, retries + 1)
    }, Math.max(0, at - Date.now()))
  }

  /** One RA to all nodes; false when it could not be sent (logged). */
  private send (why: 'solicited' | 'unsolicited'): boolean {
    const link = (this.o.linkInfo ?? hostLinkInfo)(this.ifname)
    if (link.linkLocal === undefined) {
      this.stats.sendErrors++
      this.log.debug({ iface: this.ifname, why }, 'ra: no link-local address on the interface yet (no carrier?); not advertising this time')
      return false
    }
    const ra = encodeRa({
      routerLifetime: 0,
      ...(link.mac !== undefined ? { sourceLinkLayer: link.mac } : {}),
      ...(this.o.mtu !== undefined ? { mtu: this.o.mtu } : {}),
      prefixes: this.o.prefixes,
    })
    try {
      this.sock.send(ra, ALL_NODES, link.linkLocal)
    } catch (e) {
      this.stats.sendErrors++
      // EINVAL/EADDRNOTAVAIL: the link-local address is still tentative (DAD); ENETDOWN: link down.
      this.log.debug({ iface: this.ifname, why, err: (e as Error).message }, 'ra: send failed')
      return false
    }
    this.lastMulticast = Date.now()
    this.stats.sent++
    this.log.debug({ iface: this.ifname, why, from: link.linkLocal }, 'ra: advertisement sent')
    return true
  }

  private onPacket (p: Icmp6Packet): void {
    if (this.state === 'closed') return
    const d = decodeNd(p.data)
    if (!d.ok) {
      if (p.data[0] === ICMP6_ROUTER_SOLICITATION) this.bad(p.source, undefined, `${d.error.code}: ${d.error.detail}`)
      else this.log.debug({ iface: this.ifname, peer: p.source, err: d.error }, 'ra: undecodable router advertisement ignored')
      return
    }
    const m = d.message
    if (m.type === 'rs' && this.state !== 'advertising') return
    if (m.type === 'rs') {
      const why = invalidSolicitation(m, p.hopLimit, p.source)
      if (why !== undefined) { this.bad(p.source, m.sourceLinkLayer, why); return }
      this.stats.solicitations++
      const at = solicitedSendTime(Date.now(), this.lastMulticast, this.solicitedAt ?? this.unsolicitedAt, this.random)
      this.log.debug({ iface: this.ifname, peer: p.source, mac: m.sourceLinkLayer, answerInMs: at === undefined ? null : Math.round(at - Date.now()) }, 'ra: router solicitation')
      if (at !== undefined) {
        clearTimeout(this.solicitedTimer)
        this.scheduleSolicited(at, 0)
      }
      return
    }
    const own = (this.o.linkInfo ?? hostLinkInfo)(this.ifname).linkLocal
    if (own !== undefined && own === p.source) return
    if (invalidAdvertisement(p.hopLimit, p.source) !== undefined) return
    if (!isRealRouter(m)) return
    const holdMs = yieldHoldMs(m)
    if (this.state === 'advertising') {
      this.log.warn({ iface: this.ifname, router: p.source, mac: m.sourceLinkLayer, ra: describe(m), quietForS: holdMs / 1000 },
        'ra: a router advertises on this interface; netboot stops advertising here while it does (iPXE uses the first RA only, it must be the router\'s)')
      this.state = 'yielded'
      this.stopTimers()
    }
    // every RA of the router extends the quiet time
    clearTimeout(this.yieldTimer)
    this.yieldTimer = setTimeout(() => { this.resume(p.source, holdMs) }, holdMs)
  }

  private resume (router: string, holdMs: number): void {
    this.yieldTimer = undefined
    if (this.state !== 'yielded') return
    this.log.warn({ iface: this.ifname, router, silentForS: holdMs / 1000 }, 'ra: the router on this interface stopped advertising; netboot advertises again')
    this.state = 'advertising'
    this.scheduleUnsolicited(0)
  }

  private bad (peer: string, mac: string | undefined, why: string): void {
    this.stats.badSolicitations++
    const now = Date.now()
    const last = this.badLogged.get(peer)
    if (last !== undefined && now - last < BAD_LOG_PERIOD_MS) return
    if (this.badLogged.size >= BAD_LOG_PEERS) this.badLogged.clear()
    this.badLogged.set(peer, now)
    this.badLog.warn({ iface: this.ifname, peer, ...(mac !== undefined ? { mac } : {}), reason: why }, 'ra: bad router solicitation dropped')
  }

  private stopTimers (): void {
    clearTimeout(this.unsolicitedTimer)
    clearTimeout(this.solicitedTimer)
    this.unsolicitedTimer = this.solicitedTimer = undefined
    this.unsolicitedAt = this.solicitedAt = undefined
  }

  close (): void {
    this.stopTimers()
    clearTimeout(this.yieldTimer)
    this.sock.close()
    this.state = 'closed'
  }
}

export class RaServer {
  private readonly advertisers: Advertiser[] = []

  constructor (private readonly o: RaServerOptions) {}

  /** Throws (naming the interface) when a socket cannot be opened, except on a host without IPv6, where it only warns. */
  start (): void {
    try {
      for (const ifname of this.o.interfaces) this.advertisers.push(new Advertiser(ifname, this.o, this.o.log))
    } catch (e) {
      this.close()
      if ((e as { cause?: NodeJS.ErrnoException }).cause?.code === 'EAFNOSUPPORT') {
        this.o.log.warn({ err: (e as Error).message }, 'ra: this host has no IPv6; not advertising (iPXE will wait for a router as before)')
        return
      }
      throw e
    }
    this.o.log.info({ interfaces: this.o.interfaces, minIntervalS: this.o.minIntervalS, maxIntervalS: this.o.maxIntervalS, prefixes: this.o.prefixes.map((p) => `${p.prefix}/${p.length}`) }, 'ra: advertising (router lifetime 0, M=0, O=0)')
  }

  state (ifname: string): AdvertiserState | undefined {
    return this.advertisers.find((a) => a.ifname === ifname)?.state
  }

  stats (ifname: string): AdvertiserStats | undefined {
    return this.advertisers.find((a) => a.ifname === ifname)?.stats
  }

  close (): void {
    for (const a of this.advertisers.splice(0)) a.close()
  }
}
