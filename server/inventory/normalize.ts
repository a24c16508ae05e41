/**
 * Turns what an admin typed (API body, CLI flags) into canonical inventory values,
 * raising the catalogue's INVALID_* code naming the field.
 */
import { NetbootError, type ErrorCode } from '../errors.js'
import { parseIPv4, parseMac, parseName, parseXname } from './addresses.js'
import type { DhcpOverrides, NodeChanges, NodeInterface, NodeSpec } from './model.js'

function canon (value: string, parse: (s: string) => string | undefined, code: ErrorCode, field: string, what: string): string {
  const v = parse(value)
  if (v === undefined) throw new NetbootError(code, `${field}: invalid ${what} '${value}'`, [{ where: field, message: `invalid ${what}`, code }])
  return v
}

export const canonMac = (v: string, field = 'mac'): string => canon(v, parseMac, 'INVALID_MAC', field, 'MAC address')
export const canonIp = (v: string, field = 'ip'): string => canon(v, parseIPv4, 'INVALID_IP', field, 'IPv4 address')
export const canonXname = (v: string, field = 'xname'): string => canon(v, parseXname, 'INVALID_XNAME', field, 'xname')
export const canonName = (v: string, field = 'name'): string => canon(v, parseName, 'INVALID_NAME', field, 'name')

function canonInterfaces (list: readonly NodeInterface[], field: string): NodeInterface[] {
  return list.map((i, n) => ({
    mac: canonMac(i.mac, `${field}[${n}].mac`),
    ...(i.ip !== undefined ? { ip: canonIp(i.ip, `${field}[${n}].ip`) } : {}),
    ...(i.network !== undefined ? { network: i.network } : {}),
  }))
}

function canonDhcp (d: DhcpOverrides): DhcpOverrides {
  return {
    ...(d.router !== undefined ? { router: canonIp(d.router, 'dhcp.router') } : {}),
    ...(d.dns !== undefined ? { dns: d.dns.map((a, i) => canonIp(a, `dhcp.dns[${i}]`)) } : {}),
    ...(d.domain !== undefined ? { domain: d.domain.toLowerCase() } : {}),
    ...(d.ntp !== undefined ? { ntp: d.ntp.map((a, i) => canonIp(a, `dhcp.ntp[${i}]`)) } : {}),
    ...(d.mtu !== undefined ? { mtu: d.mtu } : {}),
  }
}

export function normalizeSpec (b: NodeSpec): NodeSpec {
  return {
    name: canonName(b.name),
    ...(b.xname !== undefined ? { xname: canonXname(b.xname) } : {}),
    ...(b.nid !== undefined ? { nid: b.nid } : {}),
    groups: [...new Set(b.groups.map((g, i) => canonName(g, `groups[${i}]`)))],
    interfaces: canonInterfaces(b.interfaces, 'interfaces'),
    ...(b.bmcMac !== undefined ? { bmcMac: canonMac(b.bmcMac, 'bmcMac') } : {}),
    ...(b.bmcIp !== undefined ? { bmcIp: canonIp(b.bmcIp, 'bmcIp') } : {}),
    ...(b.dhcp !== undefined ? { dhcp: canonDhcp(b.dhcp) } : {}),
  }
}

export function normalizeChanges (c: NodeChanges): NodeChanges {
  const opt = <T>(v: T | null | undefined, f: (x: T) => T): T | null | undefined => (v === undefined || v === null ? v : f(v))
  const groups = (l: readonly string[] | undefined, field: string): string[] | undefined => l?.map((g, i) => canonName(g, `${field}[${i}]`))
  const out: Record<string, unknown> = {
    xname: opt(c.xname, (v) => canonXname(v)),
    nid: c.nid,
    bmcMac: opt(c.bmcMac, (v) => canonMac(v, 'bmcMac')),
    bmcIp: opt(c.bmcIp, (v) => canonIp(v, 'bmcIp')),
    groups: groups(c.groups, 'groups'),
    addGroups: groups(c.addGroups, 'addGroups'),
    removeGroups: groups(c.removeGroups, 'removeGroups'),
    interfaces: c.interfaces === undefined ? undefined : canonInterfaces(c.interfaces, 'interfaces'),
    dhcp: c.dhcp === undefined || c.dhcp === null ? c.dhcp : canonDhcp(c.dhcp),
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as NodeChanges
}
