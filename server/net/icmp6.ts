/**
 * A raw ICMPv6 socket bound to one interface, through the native addon
 * `native/icmp6.c` (node:dgram has no raw sockets). Used for Neighbor Discovery:
 * router advertisements (server/ra/). Needs CAP_NET_RAW.
 */
import { createRequire } from 'node:module'

type Handle = object

interface Icmp6Addon {
  open (ifname: string, types: readonly number[], joinAllRouters: boolean, onPacket: (data: Buffer, source: string, hopLimit: number) => void): Handle
  send (h: Handle, data: Buffer, destination: string, source: string): void
  close (h: Handle): void
}

let addon: Icmp6Addon | undefined

function load (): Icmp6Addon {
  if (addon !== undefined) return addon
  const require = createRequire(import.meta.url)
  for (const c of ['../../build/Release/netboot_icmp6.node', '../../../build/Release/netboot_icmp6.node']) {
    try {
      addon = require(c) as Icmp6Addon
      return addon
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e
    }
  }
  throw new Error("the native addon netboot_icmp6 is not built: run 'npm ci' (or 'npx node-gyp rebuild')")
}

export interface Icmp6Packet {
  readonly data: Buffer
  /** The IPv6 source, without zone. */
  readonly source: string
  /** The IP hop limit it arrived with (-1 if the kernel did not say). */
  readonly hopLimit: number
}

export interface Icmp6SocketOptions {
  readonly ifname: string
  /** ICMPv6 types to receive (ICMP6_FILTER); all others are dropped by the kernel. */
  readonly types: readonly number[]
  /** Join ff02::2 (all routers) on the interface, to hear router solicitations. */
  readonly joinAllRouters: boolean
  readonly onPacket: (p: Icmp6Packet) => void
}

export class Icmp6Socket {
  private handle: Handle | undefined

  constructor (readonly o: Icmp6SocketOptions) {
    this.handle = load().open(o.ifname, o.types, o.joinAllRouters, (data, source, hopLimit) => { o.onPacket({ data, source, hopLimit }) })
  }

  /** Sends `data` (an ICMPv6 message, checksum filled by the kernel) to `destination` on the interface, from `source`. */
  send (data: Buffer, destination: string, source: string): void {
    if (this.handle === undefined) throw Object.assign(new Error(`icmp6 socket on ${this.o.ifname} is closed`), { code: 'EBADF' })
    load().send(this.handle, data, destination, source)
  }

  close (): void {
    if (this.handle === undefined) return
    load().close(this.handle)
    this.handle = undefined
  }
}
