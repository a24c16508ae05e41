/**
 * Builds the router-advertisement service from the configuration (key `ra`):
 * which interfaces, intervals, the optional MTU and prefixes.
 */
import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.js'
import { parseIpv6Prefix, type PrefixInfo } from './codec.js'
import { defaultMinInterval } from './decide.js'
import { RaServer, type RaServerOptions } from './server.js'

/** RFC 4861 §6.2.1 defaults: AdvValidLifetime 30 days, AdvPreferredLifetime 7 days. */
const VALID_LIFETIME_S = 2_592_000
const PREFERRED_LIFETIME_S = 604_800

/** ra.interfaces, or else server.interfaces and the directly attached subnets' interfaces, without duplicates. */
export function raInterfaces (loaded: LoadedConfig): string[] {
  const c = loaded.config
  if (c.ra.interfaces !== undefined) return [...new Set(c.ra.interfaces)]
  return [...new Set([...c.server.interfaces, ...c.dhcp.subnets.flatMap((s) => (s.interface !== undefined ? [s.interface] : []))])]
}

export function raOptions (loaded: LoadedConfig, log: Logger): RaServerOptions {
  const c = loaded.config.ra
  const prefixes: PrefixInfo[] = c.prefixes.map((p) => {
    const x = parseIpv6Prefix(p)!
    return { prefix: x.prefix, length: x.length, onLink: true, autonomous: true, validLifetime: VALID_LIFETIME_S, preferredLifetime: PREFERRED_LIFETIME_S }
  })
  return {
    interfaces: raInterfaces(loaded),
    maxIntervalS: c.max_interval,
    minIntervalS: c.min_interval ?? defaultMinInterval(c.max_interval),
    ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    prefixes,
    log,
  }
}

/** Starts advertising, or returns undefined (logged) when disabled or there is no interface to advertise on. */
export function startRa (loaded: LoadedConfig, log: Logger): RaServer | undefined {
  const l = log.child({ component: 'ra' })
  if (!loaded.config.ra.enabled) { l.info('ra: not advertising (ra.enabled is false)'); return undefined }
  const o = raOptions(loaded, l)
  if (o.interfaces.length === 0) { l.info('ra: not advertising (no provisioning interface: server.interfaces, dhcp.subnets[].interface or ra.interfaces)'); return undefined }
  const ra = new RaServer(o)
  ra.start()
  return ra
}
