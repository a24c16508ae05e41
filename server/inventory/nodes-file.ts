/**
 * Reads an inventory file in the formats OpenCHAMI users already have (the
 * bootcamp's `nodes.yaml`), both spellings of it:
 *
 *   flat:        - { name, xname, nid, group, mac, ipaddr, bmc_mac, bmc_ipaddr }
 *   interfaces:  - { name, xname, nid, group, bmc_mac, bmc_ip,
 *                    interfaces: [ { mac_addr, ip_addrs: [ { name, ip_addr } ] } ] }
 *
 * under a top-level `nodes:` key or as a bare list. `groups: [a, b]` may replace
 * `group`. Every problem is reported, each naming its line and key; the caller
 * gets either a complete list of valid specs or an IMPORT_INVALID error.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml'
import { NetbootError, type ErrorCode, type ErrorDetail } from '../errors.js'
import { parseIPv4, parseMac, parseName, parseXname } from './addresses.js'
import type { NodeInterface, NodeSpec } from './model.js'

/** An import never holds more nodes than this; split bigger sites into several files. */
export const MAX_IMPORT_NODES = 50_000

const NODE_KEYS = new Set(['name', 'xname', 'nid', 'group', 'groups', 'mac', 'ipaddr', 'bmc_mac', 'bmc_ipaddr', 'bmc_ip', 'interfaces'])
const IFACE_KEYS = new Set(['mac_addr', 'ip_addrs'])
const IPADDR_KEYS = new Set(['name', 'ip_addr'])

export function parseNodesFile (text: string, source: string): NodeSpec[] {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  const errors: ErrorDetail[] = []
  const at = (n: YamlNode | null | undefined): string => {
    const off = n?.range?.[0]
    return off === undefined ? source : `${source}:${lines.linePos(off).line}`
  }
  const fail = (n: YamlNode | null | undefined, path: string, message: string, code?: ErrorCode): void => {
    errors.push({ where: at(n), message: `${path}: ${message}`, ...(code !== undefined ? { code } : {}) })
  }

  for (const e of doc.errors) {
    errors.push({ where: `${source}:${lines.linePos(e.pos[0]).line}`, message: `YAML: ${e.message.split('\n')[0] ?? e.code}` })
  }
  if (errors.length > 0) throw invalid(source, errors)

  let list: YamlNode | null = doc.contents as YamlNode | null
  if (isMap(list)) {
    for (const pair of list.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '?'
      if (k !== 'nodes') fail(pair.key as YamlNode, k, "unknown top-level key (expected 'nodes')")
    }
    list = list.get('nodes', true) as YamlNode | null ?? null
  }
  if (!isSeq(list)) {
    fail(list, 'nodes', 'expected a list of nodes')
    throw invalid(source, errors)
  }
  if (list.items.length > MAX_IMPORT_NODES) {
    fail(list, 'nodes', `more than ${MAX_IMPORT_NODES} nodes in one file`)
    throw invalid(source, errors)
  }

  const specs: NodeSpec[] = []
  const seen = { name: new Map<string, string>(), xname: new Map<string, string>(), nid: new Map<string, string>(), mac: new Map<string, string>(), ip: new Map<string, string>() }
  const once = (kind: keyof typeof seen, value: string, node: YamlNode | null | undefined, path: string, code: ErrorCode): void => {
    const first = seen[kind].get(value)
    if (first !== undefined) fail(node, path, `${kind} ${value} already used at ${first}`, code)
    else seen[kind].set(value, at(node))
  }

  list.items.forEach((item, i) => {
    const p = `nodes[${i}]`
    if (!isMap(item)) { fail(item as YamlNode, p, 'expected a mapping'); return }
    const m = item as YAMLMap<unknown, unknown>
    for (const pair of m.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '?'
      if (!NODE_KEYS.has(k)) fail(pair.key as YamlNode, `${p}.${k}`, `unknown key (expected one of ${[...NODE_KEYS].join(', ')})`)
    }
    const str = (key: string): { value: string; node: YamlNode } | undefined => {
      const n = m.get(key, true) as YamlNode | undefined
      if (n === undefined || (isScalar(n) && n.value === null)) return undefined
      if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'number')) {
        fail(n, `${p}.${key}`, 'expected a string'); return undefined
      }
      return { value: String(n.value), node: n }
    }
    const parsed = <T>(key: string, parse: (s: string) => T | undefined, what: string, code: ErrorCode): { value: T; node: YamlNode } | undefined => {
      const s = str(key)
      if (s === undefined) return undefined
      const v = parse(s.value)
      if (v === undefined) { fail(s.node, `${p}.${key}`, `invalid ${what} '${s.value}'`, code); return undefined }
      return { value: v, node: s.node }
    }

    const xname = parsed('xname', parseXname, 'xname', 'INVALID_XNAME')
    const nameRaw = str('name')
    let name: string | undefined
    if (nameRaw !== undefined) {
      name = parseName(nameRaw.value)
      if (name === undefined) fail(nameRaw.node, `${p}.name`, `invalid name '${nameRaw.value}' (a hostname label: letters, digits, '-')`, 'INVALID_NAME')
    } else if (xname !== undefined) {
      name = xname.value
    } else {
      fail(m, p, "a node needs 'name' (or 'xname')")
    }
    if (name !== undefined) once('name', name, nameRaw?.node ?? m, `${p}.name`, 'NODE_EXISTS')
    if (xname !== undefined) once('xname', xname.value, xname.node, `${p}.xname`, 'DUPLICATE_XNAME')

    let nid: number | undefined
    const nidNode = m.get('nid', true) as YamlNode | undefined
    if (nidNode !== undefined) {
      const v = isScalar(nidNode) ? Number(nidNode.value) : NaN
      if (!Number.isSafeInteger(v) || v < 0) fail(nidNode, `${p}.nid`, 'expected a non-negative integer')
      else { nid = v; once('nid', String(v), nidNode, `${p}.nid`, 'DUPLICATE_NID') }
    }

    const groups: string[] = []
    const addGroup = (raw: unknown, n: YamlNode | undefined, path: string): void => {
      const g = typeof raw === 'string' ? parseName(raw) : undefined
      if (g === undefined) fail(n, path, `invalid group name '${String(raw)}'`, 'INVALID_NAME')
      else if (!groups.includes(g)) groups.push(g)
    }
    const group = m.get('group', true) as YamlNode | undefined
    if (group !== undefined) addGroup(isScalar(group) ? group.value : undefined, group, `${p}.group`)
    const groupList = m.get('groups', true) as YamlNode | undefined
    if (groupList !== undefined) {
      if (!isSeq(groupList)) fail(groupList, `${p}.groups`, 'expected a list of group names')
      else groupList.items.forEach((g, j) => addGroup(isScalar(g) ? g.value : undefined, g as YamlNode, `${p}.groups[${j}]`))
    }

    const interfaces: NodeInterface[] = []
    const addIface = (mac: { value: string; node: YamlNode } | undefined, ip: { value: string; node: YamlNode } | undefined, network: string | undefined, path: string): void => {
      if (mac === undefined) return
      once('mac', mac.value, mac.node, `${path}`, 'DUPLICATE_MAC')
      if (ip !== undefined) once('ip', ip.value, ip.node, `${path}`, 'DUPLICATE_IP')
      interfaces.push({ mac: mac.value, ...(ip !== undefined ? { ip: ip.value } : {}), ...(network !== undefined ? { network } : {}) })
    }
    const flatMac = parsed('mac', parseMac, 'MAC address', 'INVALID_MAC')
    const flatIp = parsed('ipaddr', parseIPv4, 'IPv4 address', 'INVALID_IP')
    if (flatIp !== undefined && flatMac === undefined && str('mac') === undefined) fail(flatIp.node, `${p}.ipaddr`, "'ipaddr' needs a 'mac' beside it")
    addIface(flatMac, flatIp, undefined, `${p}.mac`)

    const ifs = m.get('interfaces', true) as YamlNode | undefined
    if (ifs !== undefined) {
      if (!isSeq(ifs)) fail(ifs, `${p}.interfaces`, 'expected a list')
      else {
        ifs.items.forEach((ifc, j) => {
          const ip = `${p}.interfaces[${j}]`
          if (!isMap(ifc)) { fail(ifc as YamlNode, ip, 'expected a mapping'); return }
          for (const pair of ifc.items) {
            const k = isScalar(pair.key) ? String(pair.key.value) : '?'
            if (!IFACE_KEYS.has(k)) fail(pair.key as YamlNode, `${ip}.${k}`, `unknown key (expected one of ${[...IFACE_KEYS].join(', ')})`)
          }
          const macNode = ifc.get('mac_addr', true) as YamlNode | undefined
          const macStr = isScalar(macNode) ? String(macNode.value) : undefined
          const mac = macStr === undefined ? undefined : parseMac(macStr)
          if (macNode === undefined) { fail(ifc, ip, "an interface needs 'mac_addr'"); return }
          if (mac === undefined) { fail(macNode, `${ip}.mac_addr`, `invalid MAC address '${macStr ?? ''}'`, 'INVALID_MAC'); return }
          const addrs = ifc.get('ip_addrs', true) as YamlNode | undefined
          let ipv4: { value: string; node: YamlNode } | undefined
          let network: string | undefined
          if (addrs !== undefined) {
            if (!isSeq(addrs)) fail(addrs, `${ip}.ip_addrs`, 'expected a list')
            else if (addrs.items.length > 1) fail(addrs, `${ip}.ip_addrs`, 'one IPv4 address per interface is supported; list further addresses as further interfaces')
            else if (addrs.items.length === 1) {
              const a = addrs.items[0]
              if (!isMap(a)) fail(a as YamlNode, `${ip}.ip_addrs[0]`, 'expected a mapping with ip_addr')
              else {
                for (const pair of a.items) {
                  const k = isScalar(pair.key) ? String(pair.key.value) : '?'
                  if (!IPADDR_KEYS.has(k)) fail(pair.key as YamlNode, `${ip}.ip_addrs[0].${k}`, 'unknown key (expected name, ip_addr)')
                }
                const ipNode = a.get('ip_addr', true) as YamlNode | undefined
                const v = isScalar(ipNode) ? parseIPv4(String(ipNode.value)) : undefined
                if (v === undefined) fail(ipNode ?? a, `${ip}.ip_addrs[0].ip_addr`, `invalid IPv4 address '${isScalar(ipNode) ? String(ipNode.value) : ''}'`, 'INVALID_IP')
                else ipv4 = { value: v, node: ipNode! }
                const nn = a.get('name', true) as YamlNode | undefined
                if (isScalar(nn) && nn.value !== null) network = String(nn.value)
              }
            }
          }
          addIface({ value: mac, node: macNode }, ipv4, network, `${ip}.mac_addr`)
        })
      }
    }

    const bmcMac = parsed('bmc_mac', parseMac, 'MAC address', 'INVALID_MAC')
    const bmcIpRaw = str('bmc_ipaddr') !== undefined ? 'bmc_ipaddr' : 'bmc_ip'
    if (str('bmc_ipaddr') !== undefined && str('bmc_ip') !== undefined) fail(m, p, "give either 'bmc_ipaddr' or 'bmc_ip', not both")
    const bmcIp = parsed(bmcIpRaw, parseIPv4, 'IPv4 address', 'INVALID_IP')
    if (bmcMac !== undefined) once('mac', bmcMac.value, bmcMac.node, `${p}.bmc_mac`, 'DUPLICATE_MAC')
    if (bmcIp !== undefined) once('ip', bmcIp.value, bmcIp.node, `${p}.${bmcIpRaw}`, 'DUPLICATE_IP')

    if (name === undefined) return
    specs.push({
      name,
      ...(xname !== undefined ? { xname: xname.value } : {}),
      ...(nid !== undefined ? { nid } : {}),
      groups,
      interfaces,
      ...(bmcMac !== undefined ? { bmcMac: bmcMac.value } : {}),
      ...(bmcIp !== undefined ? { bmcIp: bmcIp.value } : {}),
    })
  })

  if (errors.length > 0) throw invalid(source, errors)
  return specs
}

function invalid (source: string, errors: ErrorDetail[]): NetbootError {
  const n = errors.length
  return new NetbootError('IMPORT_INVALID', `${source}: ${n} error${n === 1 ? '' : 's'}, nothing imported`, errors)
}
