/**
 * Kernel socket buffers for the UDP services (DHCP, TFTP).
 *
 * Contract: `sizeUdpBuffers` asks the kernel for `recv`/`send` octets of buffer
 * (SO_RCVBUF / SO_SNDBUF through node:dgram) on a bound socket and reports what
 * it got. Linux caps the request at net.core.rmem_max / wmem_max (socket(7));
 * the value it reports back (getsockopt) is twice what it granted, for its own
 * bookkeeping overhead, so the effective size is the reported value halved.
 * When the plain request is capped, it asks again with SO_RCVBUFFORCE /
 * SO_SNDBUFFORCE (socket(7): not capped by the sysctls, needs CAP_NET_ADMIN,
 * which the server running as root has); without the capability (EPERM) or the
 * native addon, it keeps the capped size silently. Only when the effective size
 * is still smaller than asked does one warning name the socket, the sysctl and
 * the value to set. One info line per socket logs the effective sizes and
 * whether they were forced. The server never changes host sysctls itself
 * (docs/bench-storm.md: raising net.core.rmem_max is the administrator's call;
 * on this kernel the sysctl is read-only inside a network namespace, so it is
 * not a per-namespace setting either).
 *
 * Why: a burst of DHCP DISCOVERs from a cluster rebooting at once arrives in a
 * few milliseconds; with the default buffer (net.core.rmem_default, ~208 KiB,
 * a few hundred datagrams at ~2 KiB of kernel memory each) the kernel drops the
 * rest (RcvbufErrors in /proc/net/snmp), and every drop costs the node RFC 2131
 * §4.1's 4 s (then 8 s, 16 s) retransmission.
 */
import type { Socket } from 'node:dgram'
import type { Logger } from 'pino'
import { forceBufferSize } from './bind-device.js'

/** Default for the DHCP and TFTP server sockets: 4 MiB each way. */
export const UDP_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * The DHCP receive buffer: 32 MiB. A cluster of 10,000 rebooting at once sends
 * 10,000 DISCOVERs within milliseconds; each queued datagram costs the kernel
 * its skb truesize (~2–3 KiB on a veth or NIC, not the ~300 octets of payload),
 * so 4 MiB held ~1,500 of them and the rest were dropped (docs/bench-storm.md,
 * 8,485 drops at N = 10,000). Memory is charged only while datagrams wait.
 */
export const DHCP_RECV_BUFFER_BYTES = 32 * 1024 * 1024

export interface BufferSizes {
  /** Effective octets (the kernel's reported value halved, see above). */
  readonly recv: number
  readonly send: number
  /** Which buffers needed (and got) SO_RCVBUFFORCE / SO_SNDBUFFORCE. */
  readonly forced?: { readonly recv: boolean, readonly send: boolean }
}

/** How the sizes are obtained; replaceable in tests (e.g. to act as a process without CAP_NET_ADMIN). */
export interface BufferSizing {
  /** Tries the uncapped setsockopt; returns false when refused (no capability, no addon). */
  force (sock: Socket, kind: 'recv' | 'send', bytes: number): boolean
}

const nativeForce: BufferSizing = {
  force (sock, kind, bytes) {
    try {
      forceBufferSize(sock, kind, bytes)
      return true
    } catch {
      return false
    }
  },
}

/**
 * Sets both buffers on a bound socket; never throws (a refusal leaves the
 * kernel's default and is logged). Returns the effective sizes.
 */
export function sizeUdpBuffers (sock: Socket, want: { recv: number, send: number }, log: Logger, what: string, sizing: BufferSizing = nativeForce): BufferSizes {
  const read = (kind: 'recv' | 'send'): number => {
    try {
      return Math.floor((kind === 'recv' ? sock.getRecvBufferSize() : sock.getSendBufferSize()) / 2)
    } catch {
      return 0
    }
  }
  const set = (kind: 'recv' | 'send'): number => {
    try {
      if (kind === 'recv') sock.setRecvBufferSize(want.recv)
      else sock.setSendBufferSize(want.send)
    } catch (e) {
      log.warn({ socket: what, buffer: kind, want: want[kind], err: (e as Error)?.message }, 'udp: cannot set the socket buffer size')
      return read(kind)
    }
    const plain = read(kind)
    if (plain >= want[kind] || !sizing.force(sock, kind, want[kind])) return plain
    forced[kind] = true
    return read(kind)
  }
  const forced = { recv: false, send: false }
  const got = { recv: set('recv'), send: set('send'), forced }
  log.info({ socket: what, recv: got.recv, send: got.send, forced }, `udp: ${what} buffers ${got.recv} / ${got.send} octets (receive / send)`)
  for (const kind of ['recv', 'send'] as const) {
    if (got[kind] >= want[kind]) continue
    const sysctl = kind === 'recv' ? 'net.core.rmem_max' : 'net.core.wmem_max'
    log.warn(
      { socket: what, buffer: kind, want: want[kind], effective: got[kind], sysctl },
      `udp: ${what} ${kind} buffer is ${got[kind]} octets, less than the ${want[kind]} asked: the kernel caps it at ${sysctl}; ` +
      `a boot storm may overflow it (set sysctl ${sysctl}=${want[kind]} or more, see docs/bench-storm.md)`,
    )
  }
  return got
}
