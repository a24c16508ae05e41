/**
 * Builds the DHCP service from the configuration: the subnets' run-time form, the
 * lease table (loaded from the store), the engine, and the sockets.
 */
import { networkInterfaces } from 'node:os'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { cidrContains, parseCidr } from '../inventory/addresses.js'
import { parseRange, type LoadedConfig } from '../config/load.js'
import type { Store } from '../store/store.js'
import { joinUrl } from './decide/index.js'
import { DhcpEngine, type EngineConfig, type SubnetRuntime } from './engine.js'
import { LeaseTable } from './lease/table.js'
import { DhcpServer } from './server.js'

/** Offers are held this long for the client's REQUEST (OVMF waits ~4 s before it). */
const OFFER_HOLD_S = 60

export function subnetRuntimes (loaded: LoadedConfig, localAddresses = hostAddresses()): SubnetRuntime[] {
  const c = loaded.config
  return c.dhcp.subnets.map((s) => {
    const cidr = parseCidr(s.network)!
    const local = localAddresses.find((a) => cidrContains(cidr, a.address) && (s.interface === undefined || a.iface === s.interface))
    return {
      name: s.name,
      cidr,
      ...(s.interface !== undefined ? { interface: s.interface } : {}),
      ranges: s.pool.map((r) => { const x = parseRange(r)!; return { first: x.first, last: x.last } }),
      serverAddress: local?.address ?? c.server.address ?? '0.0.0.0',
      ...(s.router !== undefined ? { router: s.router } : {}),
      dns: s.dns,
      ...(s.domain !== undefined ? { domain: s.domain } : {}),
      ntp: s.ntp,
      ...(s.mtu !== undefined ? { mtu: s.mtu } : {}),
      leaseTime: s.lease_time ?? c.dhcp.lease_time,
    }
  })
}

export function engineConfig (loaded: LoadedConfig, subnets: SubnetRuntime[]): EngineConfig {
  const c = loaded.config
  const files = c.dhcp.boot_files
  return {
    mode: c.dhcp.mode,
    subnets,
    unknown: { action: c.unknown_nodes.action, leaseTime: c.unknown_nodes.lease_time },
    declineHold: c.dhcp.decline_hold,
    offerHold: OFFER_HOLD_S,
    boot: (s) => {
      // Nodes reach the HTTP server at public_url if set, else at this subnet's server address.
      const base = c.server.public_url?.replace(/\/+$/, '') ?? `http://${s.serverAddress}:${c.http.port}`
      return {
        tftpServer: s.serverAddress,
        httpBase: joinUrl(base, 'ipxe'),
        files: { bios: files.bios, x64Uefi: files.x64_uefi, arm64Uefi: files.arm64_uefi },
        scriptUrl: (mac) => joinUrl(base, `boot/${mac}`),
      }
    },
  }
}

export async function startDhcp (loaded: LoadedConfig, store: Store, log: Logger, registry: Registry): Promise<DhcpServer> {
  const subnets = subnetRuntimes(loaded)
  const leases = await LeaseTable.load(store, Date.now())
  const engine = new DhcpEngine(engineConfig(loaded, subnets), store, leases)
  const server = new DhcpServer({
    engine,
    interfaces: loaded.config.server.interfaces,
    relays: subnets.some((s) => s.interface === undefined),
    port: loaded.config.dhcp.port,
    ...(loaded.config.dhcp.mode === 'proxy' ? { proxyPort: 4011 } : {}),
    log: log.child({ component: 'dhcp' }),
    registry,
  })
  await server.start()
  log.info({ subnets: subnets.map((s) => ({ name: s.name, server: s.serverAddress, iface: s.interface })), leases: leases.size }, 'dhcp: ready')
  return server
}

function hostAddresses (): { iface: string; address: string }[] {
  return Object.entries(networkInterfaces()).flatMap(([iface, list]) =>
    (list ?? []).filter((a) => a.family === 'IPv4').map((a) => ({ iface, address: a.address })))
}
