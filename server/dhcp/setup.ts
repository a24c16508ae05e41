/**
 * Builds the DHCP service from the configuration: the subnets' run-time form, the
 * lease table (loaded from the store), the engine, and the sockets. With
 * `dhcp.worker` (the default) the table, the engine and the sockets live in a
 * worker thread with its own connection to the database (worker-host.ts); the
 * log lines and metrics are the same, written here in the main thread.
 */
import { networkInterfaces } from 'node:os'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { cidrContains, parseCidr } from '../inventory/addresses.js'
import { parseRange, type LoadedConfig } from '../config/load.js'
import type { Store } from '../store/store.js'
import { SqliteStore } from '../store/sqlite/sqlite-store.js'
import { NetbootError } from '../errors.js'
import { joinUrl } from './decide/index.js'
import { DhcpEngine, type EngineConfig, type SubnetRuntime } from './engine.js'
import { LeaseTable } from './lease/table.js'
import { DhcpServer } from './server.js'
import { createDhcpWorker, type DhcpService } from './worker-host.js'

export type { DhcpService } from './worker-host.js'

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

export function engineConfig (loaded: Pick<LoadedConfig, 'config'>, subnets: SubnetRuntime[]): EngineConfig {
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

/** `options.restarts`: the worker's crash budget (worker-host.ts; default 3 a minute). */
export async function startDhcp (loaded: LoadedConfig, store: Store, log: Logger, registry: Registry, options: { restarts?: { max: number, windowMs: number } } = {}): Promise<DhcpService> {
  const subnets = subnetRuntimes(loaded)
  const settings = {
    interfaces: loaded.config.server.interfaces,
    relays: subnets.some((s) => s.interface === undefined),
    port: loaded.config.dhcp.port,
    ...(loaded.config.dhcp.mode === 'proxy' ? { proxyPort: 4011 } : {}),
  }
  const dlog = log.child({ component: 'dhcp' })
  let server: DhcpService
  let leaseCount: number
  if (loaded.config.dhcp.worker) {
    if (!(store instanceof SqliteStore)) {
      throw new NetbootError('CONFIG_INVALID', `dhcp.worker: the DHCP worker shares the SQLite database; this store is '${store.kind}': set dhcp.worker: false`,
        [{ where: 'dhcp.worker', message: 'needs the SQLite store', code: 'CONFIG_INVALID' }])
    }
    const w = createDhcpWorker({ loaded, subnets, server: settings, store, log: dlog, registry, ...(options.restarts !== undefined ? { restarts: options.restarts } : {}) })
    await w.start()
    server = w
    leaseCount = w.leasesLoaded()
  } else {
    const leases = await LeaseTable.load(store, Date.now())
    const engine = new DhcpEngine(engineConfig(loaded, subnets), store, leases)
    const s = new DhcpServer({ ...settings, engine, log: dlog, registry })
    await s.start()
    server = s
    leaseCount = leases.size
  }
  log.info({ subnets: subnets.map((s) => ({ name: s.name, server: s.serverAddress, iface: s.interface })), leases: leaseCount, worker: loaded.config.dhcp.worker }, 'dhcp: ready')
  return server
}

function hostAddresses (): { iface: string; address: string }[] {
  return Object.entries(networkInterfaces()).flatMap(([iface, list]) =>
    (list ?? []).filter((a) => a.family === 'IPv4').map((a) => ({ iface, address: a.address })))
}
