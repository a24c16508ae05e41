/**
 * Binding a UDP socket to one network interface (SO_BINDTODEVICE), through the
 * small native addon in `native/` (built by node-gyp at `npm ci`). node:dgram does
 * not expose the option; Node 20 does expose the bound socket's descriptor.
 */
import { createRequire } from 'node:module'
import type { Socket } from 'node:dgram'

interface SockoptAddon {
  bindToDevice (fd: number, ifname: string): void
  interfaceIndex (ifname: string): number
  forceBuffer (fd: number, kind: 'recv' | 'send', bytes: number): void
}

let addon: SockoptAddon | undefined

function load (): SockoptAddon {
  if (addon !== undefined) return addon
  const require = createRequire(import.meta.url)
  const candidates = ['../../build/Release/netboot_sockopt.node', '../../../build/Release/netboot_sockopt.node']
  for (const c of candidates) {
    try {
      addon = require(c) as SockoptAddon
      return addon
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e
    }
  }
  throw new Error("the native addon netboot_sockopt is not built: run 'npm ci' (or 'npx node-gyp rebuild')")
}

/** The descriptor of a bound dgram socket, without touching the deprecated `_handle` getter. */
function socketFd (sock: Socket): number {
  const state = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol')
  const fd = state === undefined ? undefined : (sock as unknown as Record<symbol, { handle?: { fd?: number } }>)[state]?.handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot find the descriptor of the dgram socket (is it bound?)')
  return fd
}

/** Restricts a bound socket to packets of one interface (and sends through it). Needs CAP_NET_RAW. */
export function bindToDevice (sock: Socket, ifname: string): void {
  load().bindToDevice(socketFd(sock), ifname)
}

export function interfaceExists (ifname: string): boolean {
  return load().interfaceIndex(ifname) > 0
}

/**
 * SO_RCVBUFFORCE / SO_SNDBUFFORCE (socket(7)): sets a bound socket's buffer to
 * `bytes` past net.core.rmem_max / wmem_max. Needs CAP_NET_ADMIN; throws an Error
 * with `code` EPERM without it (and the addon's own error when it is not built).
 */
export function forceBufferSize (sock: Socket, kind: 'recv' | 'send', bytes: number): void {
  load().forceBuffer(socketFd(sock), kind, bytes)
}
