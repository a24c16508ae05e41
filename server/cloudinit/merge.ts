/**
 * Which payloads apply to a node, in which order, and how they combine. cloud-init
 * reads one datasource and never merges across datasources, so netboot merges the
 * group, node, plain and secure payloads itself and hands the node one document of
 * each kind.
 *
 * Layer order (later wins), following the OpenCHAMI cloud-init server ("node-specific
 * entries win over the group sources") and its two-stage plain-then-secure boot:
 *   1. plain payloads of the node's groups, the last-listed group lowest: the first
 *      group listed is the most specific and wins, as in boot configuration
 *      (boot/resolve.ts) and xCAT's group lists (`gpu,compute,all`);
 *   2. the node's own plain payload;
 *   3. secure payloads of the node's groups, in the same order;
 *   4. the node's own secure payload.
 * A node's own payload is found under its name, or failing that its xname.
 *
 * user-data and vendor-data (cloud-config), each on its own, layer by layer:
 * - A layer carrying `merge_how`/`merge_type` is merged onto what came before with
 *   cloud-init's own mergers (merge-how.ts), exactly as cloud-init merges a part that
 *   names its mergers. The key is not passed on.
 * - Otherwise netboot's rules, per top-level key (`CLOUD_CONFIG_LIST_RULES`):
 *     write_files            by `path`: a later entry replaces every earlier entry for
 *                            that path, in the place of the first; an entry with
 *                            `append: true` is added after them instead
 *     users                  by `name` (a string entry is its own name): a later entry
 *                            replaces the earlier in its place; `default` is kept once
 *     runcmd, bootcmd        appended in layer order, duplicates kept
 *     packages,
 *     ssh_authorized_keys    appended in layer order, later duplicates dropped
 *   and for every other key, at any depth:
 *     two mappings           merged key by key, recursively
 *     a later null           removes the key (cloud-init's `allow_delete`)
 *     anything else          the later value replaces the earlier (lists included,
 *                            as with cloud-init's default `dict(replace)+list()+str()`)
 *   A listed key's rule applies within one layer too (a path given twice keeps the
 *   later entry); when either side is not a list, the later value replaces.
 * meta-data: the "every other key" rules. network-config: a later layer's document
 * replaces the earlier one whole (cloud-init reads one network configuration).
 * Jinja flags: a document carries `## template: jinja` if any layer's did.
 *
 * Everything here is pure; inputs are never modified.
 */
import type { Node } from '../inventory/model.js'
import { canonical, isJsonMap, put, type CloudInitData, type Json, type JsonMap } from './data.js'
import { ciMerge, parseMergeHow } from './merge-how.js'

export interface PayloadSet {
  /** Payload data by group name. */
  readonly groups: ReadonlyMap<string, CloudInitData>
  /** Payload data by node name (or xname). */
  readonly nodes: ReadonlyMap<string, CloudInitData>
}

export interface Layer {
  readonly kind: 'group' | 'node'
  /** The group's name, or the name the node's payload was found under. */
  readonly name: string
  readonly secure: boolean
  readonly data: CloudInitData
}

/** The layers that apply to `node`, lowest first. Omit `secure` for what the plain endpoint serves. */
export function layersForNode (node: Pick<Node, 'name' | 'xname' | 'groups'>, plain: PayloadSet, secure?: PayloadSet): Layer[] {
  const layers: Layer[] = []
  const add = (set: PayloadSet, isSecure: boolean): void => {
    for (const g of [...node.groups].reverse()) {
      const data = set.groups.get(g)
      if (data !== undefined) layers.push({ kind: 'group', name: g, secure: isSecure, data })
    }
    const own = set.nodes.get(node.name)
    const byXname = node.xname === undefined ? undefined : set.nodes.get(node.xname)
    if (own !== undefined) layers.push({ kind: 'node', name: node.name, secure: isSecure, data: own })
    else if (byXname !== undefined && node.xname !== undefined) layers.push({ kind: 'node', name: node.xname, secure: isSecure, data: byXname })
  }
  add(plain, false)
  if (secure !== undefined) add(secure, true)
  return layers
}

/** Merges the layers' data, lowest first. */
export function mergeLayers (layers: readonly Pick<Layer, 'data'>[]): CloudInitData {
  let userdata: JsonMap | undefined
  let vendordata: JsonMap | undefined
  let metadata: JsonMap | undefined
  let networkConfig: JsonMap | undefined
  let userdataJinja = false
  let vendordataJinja = false
  for (const { data } of layers) {
    if (data.userdata !== undefined) userdata = mergeCloudConfig(userdata ?? {}, data.userdata)
    if (data.vendordata !== undefined) vendordata = mergeCloudConfig(vendordata ?? {}, data.vendordata)
    if (data.metadata !== undefined) metadata = mergeMaps(metadata ?? {}, data.metadata)
    if (data.networkConfig !== undefined) networkConfig = data.networkConfig
    userdataJinja ||= data.userdataJinja === true
    vendordataJinja ||= data.vendordataJinja === true
  }
  return {
    ...(userdata !== undefined ? { userdata } : {}),
    ...(metadata !== undefined ? { metadata } : {}),
    ...(vendordata !== undefined ? { vendordata } : {}),
    ...(networkConfig !== undefined ? { networkConfig } : {}),
    ...(userdataJinja ? { userdataJinja } : {}),
    ...(vendordataJinja ? { vendordataJinja } : {}),
  }
}

export type ListRule = 'by-path' | 'by-name' | 'append' | 'append-unique'

/** netboot's rule for each top-level cloud-config key whose list is not simply replaced. */
export const CLOUD_CONFIG_LIST_RULES: Readonly<Record<string, ListRule>> = {
  write_files: 'by-path',
  users: 'by-name',
  runcmd: 'append',
  bootcmd: 'append',
  packages: 'append-unique',
  ssh_authorized_keys: 'append-unique',
}

/** One cloud-config layer onto the accumulated one (see the module comment). */
export function mergeCloudConfig (earlier: JsonMap, later: JsonMap): JsonMap {
  const how = later.merge_how ?? later.merge_type
  if (how !== undefined) {
    const parsed = parseMergeHow(how)
    // payload.ts refuses an invalid merge_how; one that slips through is dropped rather than guessed at.
    const rest: JsonMap = {}
    for (const [k, v] of Object.entries(later)) if (k !== 'merge_how' && k !== 'merge_type') put(rest, k, v)
    if (!parsed.ok) return mergeCloudConfig(earlier, rest)
    const merged = ciMerge(parsed.mergers, earlier, rest)
    return isJsonMap(merged) ? merged : earlier
  }
  const out: JsonMap = { ...earlier }
  for (const [k, v] of Object.entries(later)) {
    const rule = CLOUD_CONFIG_LIST_RULES[k]
    const old = out[k]
    if (!Object.hasOwn(out, k) || old === undefined) put(out, k, rule !== undefined && Array.isArray(v) ? mergeList(rule, [], v) : v)
    else if (v === null) delete out[k]
    else if (rule !== undefined && Array.isArray(old) && Array.isArray(v)) put(out, k, mergeList(rule, old, v))
    else put(out, k, mergeValue(old, v))
  }
  return out
}

/** Mappings merge recursively, a later null deletes, anything else: later wins. */
export function mergeMaps (earlier: JsonMap, later: JsonMap): JsonMap {
  const out: JsonMap = { ...earlier }
  for (const [k, v] of Object.entries(later)) {
    const old = out[k]
    if (!Object.hasOwn(out, k) || old === undefined) put(out, k, v)
    else if (v === null) delete out[k]
    else put(out, k, mergeValue(old, v))
  }
  return out
}

function mergeValue (earlier: Json, later: Json): Json {
  return isJsonMap(earlier) && isJsonMap(later) ? mergeMaps(earlier, later) : later
}

export function mergeList (rule: ListRule, earlier: readonly Json[], later: readonly Json[]): Json[] {
  switch (rule) {
    case 'append': return [...earlier, ...later]
    case 'append-unique': {
      const seen = new Set<string>()
      return [...earlier, ...later].filter((x) => {
        const k = canonical(x)
        if (seen.has(k)) return false
        seen.add(k)
        return true
      })
    }
    case 'by-path': return mergeKeyed(earlier, later, writeFileKey)
    case 'by-name': return mergeKeyed(earlier, later, userKey)
  }
}

interface EntryKey { readonly key: string | undefined; readonly addsToEarlier: boolean }

function writeFileKey (e: Json): EntryKey {
  if (!isJsonMap(e) || typeof e.path !== 'string') return { key: undefined, addsToEarlier: false }
  return { key: e.path, addsToEarlier: e.append === true }
}

function userKey (e: Json): EntryKey {
  if (typeof e === 'string') return { key: e.trim(), addsToEarlier: false }
  if (isJsonMap(e) && typeof e.name === 'string') return { key: e.name, addsToEarlier: false }
  return { key: undefined, addsToEarlier: false }
}

/**
 * The entries of both lists in order, each replacing every entry before it with the
 * same key (in the place of the first of them); an entry that `addsToEarlier`
 * (write_files `append: true`) or has no key is added at the end.
 */
function mergeKeyed (earlier: readonly Json[], later: readonly Json[], keyOf: (e: Json) => EntryKey): Json[] {
  const out: (Json | undefined)[] = []
  const at = new Map<string, number[]>()
  for (const entry of [...earlier, ...later]) {
    const { key, addsToEarlier } = keyOf(entry)
    if (key === undefined) { out.push(entry); continue }
    const where = at.get(key) ?? []
    if (addsToEarlier) {
      where.push(out.length)
      out.push(entry)
    } else if (where.length === 0) {
      out.push(entry)
      where.push(out.length - 1)
    } else {
      const [first, ...rest] = where as [number, ...number[]]
      out[first] = entry
      for (const i of rest) out[i] = undefined
      where.length = 1
    }
    at.set(key, where)
  }
  return out.filter((e): e is Json => e !== undefined)
}
