/**
 * The lease table: every lease of every subnet in memory (indexed by address and
 * by MAC), written through to the store. Pool allocation is next-fit from a
 * cursor, so a busy pool is scanned once per lap, not once per request.
 *
 * Contract: an address is never held by two clients. The in-memory maps are the
 * authority while the process runs; the store's primary key on the address backs
 * it across restarts. Offers live in memory only (a restart forgets them; the
 * client's REQUEST is then checked against what is bound).
 */
import { intToIPv4, ipv4ToInt } from '../../inventory/addresses.js'
import type { Store } from '../../store/store.js'
import { holdsAddress, next, type Lease, type LeaseEvent } from './state.js'

export interface PoolRange { readonly first: number; readonly last: number }

export interface PoolSubnet {
  readonly name: string
  readonly ranges: readonly PoolRange[]
}

export class LeaseTable {
  private readonly byIpMap = new Map<string, Lease>()
  private readonly byMacMap = new Map<string, Lease>()
  private readonly cursor = new Map<string, number>()

  private constructor (private readonly store: Store) {}

  static async load (store: Store, now: number): Promise<LeaseTable> {
    const t = new LeaseTable(store)
    for (const l of await store.listLeases()) {
      if (l.state === 'released' || l.expiresAt <= now) continue
      t.index(l)
    }
    return t
  }

  get size (): number { return this.byIpMap.size }

  byIp (ip: string): Lease | undefined { return this.byIpMap.get(ip) }

  byMac (subnet: string, mac: string): Lease | undefined {
    return this.byMacMap.get(`${subnet}|${mac}`)
  }

  /** Whether `ip` may be given to `mac` at `now`: nobody else holds it. */
  availableTo (ip: string, mac: string, now: number): boolean {
    const l = this.byIpMap.get(ip)
    if (l === undefined) return true
    // A client that declined an address does not get it back until the hold ends.
    if (l.mac === mac) return l.state !== 'declined' || l.expiresAt <= now
    return !holdsAddress(l, now)
  }

  /**
   * An address from the subnet's pool for `mac`: its current one, else the one it
   * asked for (option 50) when that is in the pool and free, else the next free.
   * `reserved` says whether the inventory reserves an address for another node.
   */
  async allocate (subnet: PoolSubnet, mac: string, requested: string | undefined, now: number, reserved: (ip: string) => Promise<boolean>): Promise<string | undefined> {
    const own = this.byMac(subnet.name, mac)
    const inPool = (n: number): boolean => subnet.ranges.some((r) => n >= r.first && n <= r.last)
    const candidates: string[] = []
    if (own !== undefined && own.state !== 'declined' && inPool(ipv4ToInt(own.ip))) candidates.push(own.ip)
    if (requested !== undefined && inPool(ipv4ToInt(requested))) candidates.push(requested)
    for (const ip of candidates) {
      if (this.availableTo(ip, mac, now) && !(await reserved(ip)) && this.availableTo(ip, mac, now)) return ip
    }
    const total = subnet.ranges.reduce((n, r) => n + (r.last - r.first + 1), 0)
    let pos = this.cursor.get(subnet.name) ?? 0
    for (let tried = 0; tried < total; tried++, pos = (pos + 1) % total) {
      const ip = intToIPv4(nth(subnet.ranges, pos))
      if (!this.availableTo(ip, mac, now)) continue
      if (await reserved(ip)) continue
      if (!this.availableTo(ip, mac, now)) continue
      this.cursor.set(subnet.name, (pos + 1) % total)
      return ip
    }
    return undefined
  }

  /**
   * Applies an event to the lease of `ip` and records the result: in memory for
   * offers, in the store (before the caller replies) for everything else.
   * Returns the new lease, or undefined when the event does not apply.
   */
  async apply (event: LeaseEvent, lease: Omit<Lease, 'state'>): Promise<Lease | undefined> {
    const prev = this.byIpMap.get(lease.ip)
    const from = prev === undefined || prev.mac !== lease.mac ? 'free' : prev.state
    const state = next(from, event)
    if (state === undefined) return undefined
    const l: Lease = { ...lease, state }
    const old = this.byMac(l.subnet, l.mac)
    if (state !== 'offered') await this.store.saveLease(l)
    if (old !== undefined && old.ip !== l.ip) this.unindex(old)
    this.index(l)
    return l
  }

  private index (l: Lease): void {
    const prev = this.byIpMap.get(l.ip)
    if (prev !== undefined && prev.mac !== l.mac) this.byMacMap.delete(`${prev.subnet}|${prev.mac}`)
    this.byIpMap.set(l.ip, l)
    this.byMacMap.set(`${l.subnet}|${l.mac}`, l)
  }

  private unindex (l: Lease): void {
    if (this.byIpMap.get(l.ip)?.mac === l.mac) this.byIpMap.delete(l.ip)
    if (this.byMacMap.get(`${l.subnet}|${l.mac}`)?.ip === l.ip) this.byMacMap.delete(`${l.subnet}|${l.mac}`)
  }
}

function nth (ranges: readonly PoolRange[], i: number): number {
  for (const r of ranges) {
    const n = r.last - r.first + 1
    if (i < n) return r.first + i
    i -= n
  }
  throw new RangeError('pool index out of range')
}
