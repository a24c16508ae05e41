/**
 * The data model shared by the cloud-init modules: JSON-shaped values (what
 * cloud-init's YAML loader can produce once dates, binaries and non-string keys
 * are refused) and the four NoCloud documents one payload may carry.
 */

export type Json = null | boolean | number | string | Json[] | JsonMap
export interface JsonMap { [key: string]: Json }

/** What one payload (a group's or a node's, plain or secure) contributes. */
export interface CloudInitData {
  /** cloud-config user-data, as a mapping (a `#cloud-config` string is parsed into one). */
  readonly userdata?: JsonMap
  /** NoCloud meta-data keys besides `instance-id` and `local-hostname`, which netboot sets. */
  readonly metadata?: JsonMap
  /** cloud-config vendor-data; cloud-init merges it under user-data on the node. */
  readonly vendordata?: JsonMap
  /** Network configuration v1 or v2, without the top-level `network:` wrapper. */
  readonly networkConfig?: JsonMap
  /** The user-data string began `## template: jinja`: cloud-init renders it on the node. */
  readonly userdataJinja?: boolean
  /** The same for vendor-data. */
  readonly vendordataJinja?: boolean
}

export type DocumentKey = 'userdata' | 'metadata' | 'vendordata' | 'networkConfig'

/** Keys a payload's `cloud-init` mapping may hold, each with the spelling used in messages. */
export const DOCUMENTS: readonly { readonly key: DocumentKey; readonly label: string; readonly spellings: readonly string[] }[] = [
  { key: 'userdata', label: 'user-data', spellings: ['userdata', 'user-data', 'user_data'] },
  { key: 'metadata', label: 'meta-data', spellings: ['metadata', 'meta-data', 'meta_data'] },
  { key: 'vendordata', label: 'vendor-data', spellings: ['vendordata', 'vendor-data', 'vendor_data'] },
  { key: 'networkConfig', label: 'network-config', spellings: ['network_config', 'network-config', 'networkconfig'] },
]

export function isJsonMap (v: unknown): v is JsonMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A string equal for equal JSON values whatever their key order: the identity used for de-duplication. */
export function canonical (v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (isJsonMap(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k] as Json)}`).join(',')}}`
  return JSON.stringify(v)
}

/** Sets an own property, even one named `__proto__` (plain assignment would change the prototype). */
export function put (m: JsonMap, key: string, value: Json): void {
  Object.defineProperty(m, key, { value, enumerable: true, writable: true, configurable: true })
}

/** `a.b[2].c` — the path notation every message uses. */
export function childPath (path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  const k = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key)
  return path === '' ? k : `${path}.${k}`
}
