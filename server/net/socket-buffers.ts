/**
 * Kernel socket buffers for the UDP services (DHCP, TFTP).
 *
 * Contract: `sizeUdpBuffers` asks the kernel for `recv`/`send` octets of buffer
 * (SO_RCVBUF / SO_SNDBUF through node:dgram) on a bound socket and reports what
 * it got. Linux caps the request at net.core.rmem_max / wmem_max (socket(7));
 * the value it reports back (getsockopt) is twice what it granted, for its own
 * bookkeeping overhead, so the effective size is the reported value halved.
 * When the effective size is smaller than asked, one warning names the socket,
 * the sysctl and the value to set. The server never changes host sysctls itself
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

/** Default for the DHCP and TFTP server sockets: 4 MiB each way. */
export const UDP_BUFFER_BYTES = 4 * 1024 * 1024

export interface BufferSizes {
  /** Effective octets (the kernel's reported value halved, see above). */
  readonly recv: number
  readonly send: number
}

/**
 * Sets both buffers on a bound socket; never throws (a refusal leaves the
 * kernel's default and is logged). Returns the effective sizes.
 */
export function sizeUdpBuffers (sock: Socket, want: { recv: number, send: number }, log: Logger, what: string): BufferSizes {
  const set = (kind: 'recv' | 'send'): number => {
    try {
      if (kind === 'recv') sock.setRecvBufferSize(want.recv)
      else sock.setSendBufferSize(want.send)
    } catch (e) {
      log.warn({ socket: what, buffer: kind, want: want[kind], err: (e as Error)?.message }, 'udp: cannot set the socket buffer size')
    }
    try {
      return Math.floor((kind === 'recv' ? sock.getRecvBufferSize() : sock.getSendBufferSize()) / 2)
    } catch {
      return 0
    }
  }
  const got = { recv: set('recv'), send: set('send') }
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
