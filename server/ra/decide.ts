/**
 * Router-side decisions of Neighbor Discovery (RFC 4861 §6), as pure functions of
 * time and a random source. netboot advertises only to end iPXE's and hosts'
 * wait for a router: router lifetime 0 (not a default router, §6.2.3), M=0, O=0.
 */
import type { NdMessage, RouterAdvertisement, RouterSolicitation } from './codec.js'

/** §10 router constants, in milliseconds. */
export const MAX_INITIAL_RTR_ADVERT_INTERVAL_MS = 16_000
export const MAX_INITIAL_RTR_ADVERTISEMENTS = 3
export const MIN_DELAY_BETWEEN_RAS_MS = 3_000
export const MAX_RA_DELAY_TIME_MS = 500

/** §6.1: every ND message is sent with IP hop limit 255; one received with less came through a router. */
export const ND_HOP_LIMIT = 255

export const ALL_NODES = 'ff02::1'

/** §6.2.1: MinRtrAdvInterval defaults to 0.33 × MaxRtrAdvInterval when Max ≥ 9 s, else to Max. */
export function defaultMinInterval (maxSeconds: number): number {
  return maxSeconds >= 9 ? Math.max(3, Math.floor(0.33 * maxSeconds)) : maxSeconds
}

/**
 * §6.1.1: a Router Solicitation is valid when the IP hop limit is 255, the ICMP
 * code is 0 and its length and options are well formed (the decoder checked those
 * two), and, when the IP source is the unspecified address, it carries no source
 * link-layer address option. Returns why it is invalid, or undefined.
 */
export function invalidSolicitation (rs: RouterSolicitation, hopLimit: number, source: string): string | undefined {
  if (hopLimit !== ND_HOP_LIMIT) return `IP hop limit ${hopLimit}, must be ${ND_HOP_LIMIT} (sent from off-link?)`
  if (isUnspecified(source) && rs.sourceLinkLayer !== undefined) return 'source link-layer address option with the unspecified source address'
  return undefined
}

/**
 * §6.1.2 applied to an RA another node sends on our link: valid when its hop limit
 * is 255 and its source is link-local. Returns why it is invalid, or undefined.
 */
export function invalidAdvertisement (hopLimit: number, source: string): string | undefined {
  if (hopLimit !== ND_HOP_LIMIT) return `IP hop limit ${hopLimit}, must be ${ND_HOP_LIMIT}`
  if (!source.toLowerCase().startsWith('fe80:')) return `source ${source} is not link-local`
  return undefined
}

/**
 * §6.2.7 lets a router watch the others' advertisements. netboot goes quiet on a
 * link where a real router advertises (a default route, or DHCPv6 by M/O): iPXE
 * configures IPv6 from the first RA it gets only (ipxe src/net/ndp.c,
 * ipv6conf_rx_router_advertisement), so ours could hide the real router's from it.
 * Another server like netboot (lifetime 0, M=O=0) is no reason to stop.
 */
export function isRealRouter (ra: RouterAdvertisement): boolean {
  return ra.routerLifetime > 0 || ra.managed || ra.other
}

/** §6.2.1: the largest MaxRtrAdvInterval a router may use; a router that says nothing for longer is gone. */
export const MAX_RTR_ADV_INTERVAL_LIMIT_MS = 1_800_000

/**
 * How long netboot stays quiet after hearing a real router's RA: as long as the RA
 * says the router stays a default router (its router lifetime, at most 9,000 s by
 * §6.2.1), and, for a router that only announces DHCPv6 (lifetime 0, M or O), the
 * longest interval between a router's RAs. Each RA the router sends extends it;
 * when it passes with no RA heard, netboot advertises again. So a router that
 * leaves, or one forged RA on the link, silences netboot for a bounded time, not
 * until a restart.
 */
export function yieldHoldMs (ra: RouterAdvertisement): number {
  return ra.routerLifetime > 0 ? ra.routerLifetime * 1000 : MAX_RTR_ADV_INTERVAL_LIMIT_MS
}

/**
 * §6.2.4: the time to the next unsolicited RA, uniformly random in
 * [MinRtrAdvInterval, MaxRtrAdvInterval]; for the first MAX_INITIAL_RTR_ADVERTISEMENTS
 * it is at most MAX_INITIAL_RTR_ADVERT_INTERVAL. `sent` counts those already sent.
 */
export function nextUnsolicitedDelay (minMs: number, maxMs: number, sent: number, random: () => number): number {
  const d = minMs + random() * (maxMs - minMs)
  return sent < MAX_INITIAL_RTR_ADVERTISEMENTS ? Math.min(d, MAX_INITIAL_RTR_ADVERT_INTERVAL_MS) : d
}

/**
 * §6.2.6: when to answer a valid solicitation received at `now`, by multicast to
 * all nodes (the usual case; it also answers every other node soliciting at the
 * same time, as in a boot storm). The answer waits a random 0..MAX_RA_DELAY_TIME,
 * and consecutive multicast RAs are at least MIN_DELAY_BETWEEN_RAS apart. Returns
 * undefined when an answer or an unsolicited RA already scheduled comes at or
 * before that time (one advertisement answers several solicitations).
 */
export function solicitedSendTime (now: number, lastMulticast: number | undefined, nextScheduled: number | undefined, random: () => number): number | undefined {
  let at = now + random() * MAX_RA_DELAY_TIME_MS
  if (lastMulticast !== undefined) at = Math.max(at, lastMulticast + MIN_DELAY_BETWEEN_RAS_MS)
  if (nextScheduled !== undefined && nextScheduled <= at) return undefined
  return at
}

/** §6.2.6 rate limit for an unsolicited RA due at `due`. */
export function rateLimited (due: number, lastMulticast: number | undefined): number {
  return lastMulticast === undefined ? due : Math.max(due, lastMulticast + MIN_DELAY_BETWEEN_RAS_MS)
}

export function isUnspecified (addr: string): boolean {
  return addr === '::' || /^[0:]+$/.test(addr)
}

/** One line for the log about a message a peer sent. */
export function describe (m: NdMessage): string {
  if (m.type === 'rs') return `router solicitation${m.sourceLinkLayer !== undefined ? ` from ${m.sourceLinkLayer}` : ''}`
  return `router advertisement (lifetime ${m.routerLifetime} s, M=${m.managed ? 1 : 0}, O=${m.other ? 1 : 0}, ${m.prefixes.length} prefixes)`
}
