/**
 * Reads an admin's cloud-init payload file in the OpenCHAMI format (the bootcamp's
 * `ochami cloud-init config add --payload-format yaml`): one object or a list of
 *
 *   name: compute                # a group or node name (which, the caller decides)
 *   cloud-init:
 *     userdata: {…} | "#cloud-config\n…"
 *     metadata: {…}
 *     vendordata: {…} | "#cloud-config\n…"
 *     network_config: {…}        # v1 or v2, with or without a top-level `network:`
 *
 * Each document key is accepted as written run together, hyphenated or underscored
 * (`userdata`, `user-data`, `user_data`; likewise meta-, vendor-data and
 * network-config, so ochami's and BSS's spellings work); `cloud_init` may stand for
 * `cloud-init`; a null document is absent.
 *
 * The file is read as YAML 1.1, the way cloud-init (PyYAML) reads user-data, so a
 * payload means what it would mean to cloud-init: `permissions: 0400` is octal,
 * `on`/`yes` are booleans. Values YAML 1.1 reads surprisingly are refused rather than
 * passed on: base-60 numbers (an unquoted MAC address), timestamps, `!!binary`,
 * non-string mapping keys, non-finite numbers.
 *
 * user-data and vendor-data must be cloud-config: a mapping, or a string whose first
 * line is `#cloud-config` (optionally after `## template: jinja`). Scripts, boothooks,
 * `#include`, `#cloud-config-archive`, JSON patches, MIME multipart and gzip are
 * refused: netboot merges group, node, plain and secure data into one cloud-config
 * document per node, and those formats cannot be merged that way.
 *
 * Every problem is reported with its `file:line` and key path. The result is typed;
 * nothing is thrown for bad input.
 */
import { LineCounter, isScalar, visit, type Node as YamlNode } from 'yaml'
import type { ErrorDetail } from '../errors.js'
import { parseName } from '../inventory/addresses.js'
import { DOCUMENTS, childPath, isJsonMap, put, type CloudInitData, type DocumentKey, type Json, type JsonMap } from './data.js'
import { parseMergeHow } from './merge-how.js'
import { checkValue } from './template.js'
import { parseYaml11 } from './yaml.js'

/** A payload file is never larger than this. */
export const MAX_PAYLOAD_FILE_BYTES = 8 * 1024 * 1024
/** One payload (one `name`), as JSON, is never larger than this. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024
export const MAX_PAYLOADS = 10_000
/** Nesting deeper than this is refused (no cloud-config needs it). */
export const MAX_DEPTH = 64
/** YAML aliases expanded per document, against "billion laughs". */
const MAX_ALIASES = 1000

export interface CloudInitPayload {
  /** Canonical (lower-case) group or node name. */
  readonly name: string
  readonly data: CloudInitData
  /** `file:line` where the entry starts. */
  readonly where: string
}

export type PayloadParse =
  | { readonly ok: true; readonly payloads: CloudInitPayload[]; readonly warnings: ErrorDetail[] }
  | { readonly ok: false; readonly problems: ErrorDetail[] }

type Keys = readonly (string | number)[]
/** Where a key path is in the source: `file:line`. */
type Locate = (keys: Keys) => string

interface Ctx {
  readonly source: string
  readonly problems: ErrorDetail[]
  readonly warnings: ErrorDetail[]
}

/** Parses payload text (YAML 1.1; JSON is YAML). `source` names the file in messages. */
export function parsePayloadFile (text: string, source: string): PayloadParse {
  const ctx: Ctx = { source, problems: [], warnings: [] }
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > MAX_PAYLOAD_FILE_BYTES) {
    return { ok: false, problems: [{ where: source, message: `file is ${bytes} bytes; the limit is ${MAX_PAYLOAD_FILE_BYTES}` }] }
  }
  const loaded = loadYaml(text, source, (line) => `${source}:${line}`, '', ctx)
  if (loaded === undefined) return { ok: false, problems: ctx.problems }
  return finish(ctx, readEntries(loaded.value, loaded.locate, ctx, loaded.isBlock))
}

/**
 * The same for a document that is already a value, e.g. a JSON request body
 * (`{name, "cloud-init"}` or a list of them). Messages name `source` and the key path.
 */
export function parsePayloadValue (value: unknown, source: string): PayloadParse {
  const ctx: Ctx = { source, problems: [], warnings: [] }
  const json = toJson(value, [], '', 0, () => source, ctx)
  if (ctx.problems.length > 0 || json === undefined) return { ok: false, problems: ctx.problems }
  return finish(ctx, readEntries(json, () => source, ctx))
}

function finish (ctx: Ctx, payloads: CloudInitPayload[]): PayloadParse {
  return ctx.problems.length > 0 ? { ok: false, problems: ctx.problems } : { ok: true, payloads, warnings: ctx.warnings }
}

function problem (ctx: Ctx, where: string, path: string, message: string): void {
  ctx.problems.push({ where, message: path === '' ? message : `${path}: ${message}` })
}

/**
 * YAML 1.1 text → JSON value, checking for what cloud-init would read differently
 * from what the author probably meant. `lineWhere` maps a line of `text` to a
 * `file:line`; `path` prefixes key paths in messages.
 */
function loadYaml (text: string, source: string, lineWhere: (line: number) => string, path: string, ctx: Ctx): { value: Json; locate: Locate; isBlock: (keys: Keys) => boolean } | undefined {
  const lines = new LineCounter()
  const doc = parseYaml11(text, lines)
  const lineOf = (n: YamlNode | null | undefined): string => {
    const off = n?.range?.[0]
    return off === undefined ? lineWhere(1) : lineWhere(lines.linePos(off).line)
  }
  const before = ctx.problems.length
  for (const e of [...doc.errors, ...doc.warnings]) {
    problem(ctx, lineWhere(lines.linePos(e.pos[0]).line), path, `YAML: ${e.message.split('\n')[0] ?? e.code}`)
  }
  if (ctx.problems.length > before) return undefined
  visit(doc, {
    Scalar (_key, node) {
      if (typeof node.value === 'number' && typeof node.source === 'string' && node.source.includes(':')) {
        problem(ctx, lineOf(node), path, `'${node.source}' is a base-60 number (${node.value}) in YAML 1.1, as cloud-init reads it; quote it if it is a string (a MAC address, a time)`)
      }
    },
  })
  const locate: Locate = (keys) => {
    for (let n = keys.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true)
      if (node !== undefined && node !== null && typeof node === 'object' && 'range' in node) return lineOf(node as YamlNode)
    }
    return lineOf(doc.contents)
  }
  let raw: unknown
  try {
    raw = doc.toJS({ mapAsMap: true, maxAliasCount: MAX_ALIASES })
  } catch (e) {
    problem(ctx, source, path, `YAML: ${e instanceof Error ? e.message : String(e)}`)
    return undefined
  }
  const isBlock = (keys: Keys): boolean => {
    const n = doc.getIn(keys, true)
    return isScalar(n) && (n.type === 'BLOCK_LITERAL' || n.type === 'BLOCK_FOLDED')
  }
  const value = toJson(raw, [], path, 0, locate, ctx)
  if (ctx.problems.length > before || value === undefined) return undefined
  return { value, locate, isBlock }
}

/** A parsed YAML or JSON value → Json, refusing what cloud-config cannot hold. */
function toJson (v: unknown, keys: Keys, path: string, depth: number, locate: Locate, ctx: Ctx): Json | undefined {
  const bad = (message: string): undefined => { problem(ctx, locate(keys), path, message); return undefined }
  if (depth > MAX_DEPTH) return bad(`nested deeper than ${MAX_DEPTH} levels`)
  if (v === null || v === undefined) return null
  if (typeof v === 'string' || typeof v === 'boolean') return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : bad(`${v} cannot be passed on (not a finite number)`)
  if (v instanceof Date) return bad('read as a timestamp by YAML 1.1 (cloud-init would get a date, not a string); quote it')
  if (v instanceof Uint8Array) return bad('!!binary is not supported; put base64 text in write_files with encoding: b64')
  if (Array.isArray(v)) {
    const out: Json[] = []
    v.forEach((x, i) => { const j = toJson(x, [...keys, i], childPath(path, i), depth + 1, locate, ctx); if (j !== undefined) out.push(j) })
    return out
  }
  const entries: [unknown, unknown][] | undefined = v instanceof Map
    ? [...v.entries()]
    : typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v)) ? Object.entries(v) : undefined
  if (entries === undefined) return bad(`unsupported value (${v instanceof Set ? '!!set' : typeof v}); use a list or a mapping`)
  const out: JsonMap = {}
  for (const [k, x] of entries) {
    if (typeof k !== 'string') {
      bad(`mapping key ${String(k)} is read as a ${k === null ? 'null' : typeof k} by YAML 1.1; quote it`)
      continue
    }
    const kp = childPath(path, k)
    if (k === '__proto__') { problem(ctx, locate([...keys, k]), kp, 'this key name is not accepted'); continue }
    const j = toJson(x, [...keys, k], kp, depth + 1, locate, ctx)
    if (j !== undefined) put(out, k, j)
  }
  return out
}

function readEntries (root: Json, locate: Locate, ctx: Ctx, isBlock: (keys: Keys) => boolean = () => false): CloudInitPayload[] {
  const list = Array.isArray(root) ? root : [root]
  if (list.length > MAX_PAYLOADS) { problem(ctx, locate([]), '', `more than ${MAX_PAYLOADS} payloads in one file`); return [] }
  const payloads: CloudInitPayload[] = []
  const seen = new Map<string, string>()
  list.forEach((entry, i) => {
    const keys: Keys = Array.isArray(root) ? [i] : []
    const p = Array.isArray(root) ? `[${i}]` : ''
    const at = (more: Keys = []): string => locate([...keys, ...more])
    if (!isJsonMap(entry)) { problem(ctx, at(), p, "expected a mapping with 'name' and 'cloud-init'"); return }
    let ciKey: string | undefined
    for (const k of Object.keys(entry)) {
      if (k === 'name') continue
      if (k === 'cloud-init' || k === 'cloud_init') {
        if (ciKey !== undefined) problem(ctx, at([k]), childPath(p, k), `given twice (also as '${ciKey}')`)
        ciKey = k
        continue
      }
      problem(ctx, at([k]), childPath(p, k), "unknown key (expected 'name' and 'cloud-init')")
    }
    const rawName = entry.name
    let name: string | undefined
    if (typeof rawName !== 'string') problem(ctx, at(rawName === undefined ? [] : ['name']), childPath(p, 'name'), rawName === undefined ? "missing 'name'" : 'expected a string')
    else {
      name = parseName(rawName)
      if (name === undefined) problem(ctx, at(['name']), childPath(p, 'name'), `invalid name '${rawName}' (a group or node name: letters, digits, '-')`)
      else {
        const first = seen.get(name)
        if (first !== undefined) problem(ctx, at(['name']), childPath(p, 'name'), `'${name}' already given at ${first}`)
        else seen.set(name, at(['name']))
      }
    }
    if (ciKey === undefined) { problem(ctx, at(), p, "missing 'cloud-init'"); return }
    const ci = entry[ciKey] as Json
    const ciPath = childPath(p, ciKey)
    const ciAt = (more: Keys = []): string => at([ciKey as string, ...more])
    const data: { -readonly [K in keyof CloudInitData]: CloudInitData[K] } = {}
    if (ci !== null && !isJsonMap(ci)) { problem(ctx, ciAt(), ciPath, 'expected a mapping of userdata, metadata, vendordata, network_config'); return }
    const given = new Map<DocumentKey, string>()
    for (const [k, v] of Object.entries(ci ?? {})) {
      const kp = childPath(ciPath, k)
      const doc = DOCUMENTS.find((d) => d.spellings.includes(k))
      if (doc === undefined) {
        problem(ctx, ciAt([k]), kp, `unknown key (expected ${DOCUMENTS.map((d) => d.spellings[0]).join(', ')}, or the same hyphenated or underscored)`)
        continue
      }
      const other = given.get(doc.key)
      if (other !== undefined) { problem(ctx, ciAt([k]), kp, `${doc.label} given twice (also as '${other}')`); continue }
      given.set(doc.key, k)
      if (v === null) continue
      const docAt: Locate = (more) => ciAt([k, ...more])
      switch (doc.key) {
        case 'userdata':
        case 'vendordata': {
          const cc = readCloudConfig(v, kp, doc.label, docAt, isBlock([...keys, ciKey as string, k]), ctx)
          if (cc === undefined) break
          data[doc.key] = cc.value
          if (cc.jinja) data[doc.key === 'userdata' ? 'userdataJinja' : 'vendordataJinja'] = true
          break
        }
        case 'metadata': {
          if (!isJsonMap(v)) { problem(ctx, docAt([]), kp, 'expected a mapping of meta-data keys'); break }
          for (const own of ['instance-id', 'local-hostname']) {
            if (Object.hasOwn(v, own)) ctx.warnings.push({ where: docAt([own]), message: `${childPath(kp, own)}: ignored; netboot sets ${own} per node (and image)` })
          }
          checkTemplates(v, kp, docAt, ctx)
          data.metadata = v
          break
        }
        case 'networkConfig': {
          const nc = readNetworkConfig(v, kp, docAt, ctx)
          if (nc !== undefined) data.networkConfig = nc
          break
        }
      }
    }
    if (name === undefined) return
    const size = Buffer.byteLength(JSON.stringify(data), 'utf8')
    if (size > MAX_PAYLOAD_BYTES) { problem(ctx, at(), p, `payload '${name}' is ${size} bytes as JSON; the limit is ${MAX_PAYLOAD_BYTES}`); return }
    payloads.push({ name, data, where: at() })
  })
  return payloads
}

const REFUSED: readonly { readonly test: (s: string) => boolean; readonly what: string }[] = [
  { test: (s) => s.startsWith('\x1f\x8b'), what: 'gzip-compressed' },
  { test: (s) => /^#cloud-config-archive\b/.test(s), what: 'a #cloud-config-archive' },
  { test: (s) => /^#cloud-config-jsonp\b/.test(s), what: 'a #cloud-config-jsonp JSON patch' },
  { test: (s) => /^#include(-once)?\b/.test(s), what: 'an #include list' },
  { test: (s) => /^#cloud-boothook\b/.test(s), what: 'a #cloud-boothook' },
  { test: (s) => /^#part-handler\b/.test(s), what: 'a #part-handler' },
  { test: (s) => /^#upstart-job\b/.test(s), what: 'an #upstart-job' },
  { test: (s) => s.startsWith('#!'), what: 'a script (#!)' },
  { test: (s) => /^(content-type|mime-version)\s*:/i.test(s), what: 'MIME multipart' },
]

const WHY = 'netboot merges group, node, plain and secure data into one cloud-config document, so only cloud-config is accepted (put commands in runcmd or bootcmd and files in write_files)'
const JINJA_HEADER = /^##\s*template:\s*jinja\s*$/i

/**
 * user-data or vendor-data: a mapping, or `#cloud-config` text. `block`: the text is a
 * block scalar (`userdata: |`), so its line k is the key's line + k.
 */
function readCloudConfig (v: Json, path: string, label: string, locate: Locate, block: boolean, ctx: Ctx): { value: JsonMap; jinja: boolean } | undefined {
  let value: JsonMap
  let jinja = false
  let innerLocate: Locate = locate
  if (isJsonMap(v)) {
    value = v
  } else if (typeof v === 'string') {
    const where = locate([])
    const firstLines = v.split('\n', 2).map((l) => l.replace(/\r$/, ''))
    let body = v
    if (JINJA_HEADER.test(firstLines[0] ?? '')) {
      jinja = true
      body = v.slice(v.indexOf('\n') + 1)
    }
    const head = body.split('\n', 1)[0]?.replace(/\r$/, '').trimEnd() ?? ''
    if (head !== '#cloud-config') {
      const refused = REFUSED.find((r) => r.test(body))
      problem(ctx, where, path, refused !== undefined
        ? `${label} is ${refused.what}; ${WHY}`
        : `${label} text must start with a '#cloud-config' line${jinja ? " after '## template: jinja'" : ''} (or be a mapping); ${WHY}`)
      return undefined
    }
    const base = Number(/:(\d+)$/.exec(where)?.[1] ?? NaN)
    const offset = jinja ? 1 : 0
    const lineWhere = (line: number): string => block && !Number.isNaN(base) ? `${ctx.source}:${base + line + offset}` : `${where} (${label} line ${line + offset})`
    const loaded = loadYaml(body, ctx.source, lineWhere, path, ctx)
    if (loaded === undefined) return undefined
    if (loaded.value === null) value = {}
    else if (!isJsonMap(loaded.value)) { problem(ctx, where, path, `${label} must be a mapping of cloud-config keys`); return undefined }
    else value = loaded.value
    innerLocate = loaded.locate
  } else {
    problem(ctx, locate([]), path, `expected a mapping or '#cloud-config' text`)
    return undefined
  }
  for (const key of ['merge_how', 'merge_type']) {
    if (!Object.hasOwn(value, key)) continue
    const r = parseMergeHow(value[key] as Json)
    if (!r.ok) problem(ctx, innerLocate([key]), childPath(path, key), r.message)
  }
  if (Object.hasOwn(value, 'merge_how') && Object.hasOwn(value, 'merge_type')) {
    problem(ctx, innerLocate(['merge_type']), childPath(path, 'merge_type'), 'give merge_how or merge_type, not both')
  }
  checkTemplates(value, path, innerLocate, ctx)
  return { value, jinja }
}

/** Network configuration v1 (`config: [...]`) or v2, with the `network:` wrapper removed. */
function readNetworkConfig (v: Json, path: string, locate: Locate, ctx: Ctx): JsonMap | undefined {
  if (!isJsonMap(v)) { problem(ctx, locate([]), path, 'expected a mapping (network config version 1 or 2)'); return undefined }
  let doc = v
  let keys: Keys = []
  let p = path
  if (Object.keys(v).length === 1 && isJsonMap(v.network)) { doc = v.network; keys = ['network']; p = childPath(path, 'network') }
  if (doc.version !== 1 && doc.version !== 2) {
    problem(ctx, locate([...keys, 'version']), childPath(p, 'version'), 'expected version: 1 or version: 2')
    return undefined
  }
  if (doc.version === 1 && !Array.isArray(doc.config)) {
    problem(ctx, locate([...keys, 'config']), childPath(p, 'config'), 'version 1 needs config: a list of interfaces, routes, nameservers')
    return undefined
  }
  checkTemplates(doc, p, (more) => locate([...keys, ...more]), ctx)
  return doc
}

function checkTemplates (value: JsonMap, path: string, locate: Locate, ctx: Ctx): void {
  for (const pr of checkValue(value, path)) {
    problem(ctx, locate(keysOf(pr.path, path)), '', `${pr.path}: ${pr.message}`)
  }
}

/** `a.b[2]."x.y"` relative to `prefix` → ['b', 2, 'x.y'] for locating a line. */
function keysOf (fullPath: string, prefix: string): (string | number)[] {
  const rest = fullPath.slice(prefix.length)
  const keys: (string | number)[] = []
  const re = /\[(\d+)\]|\.?("(?:[^"\\]|\\.)*"|[^.[]+)/g
  for (const m of rest.matchAll(re)) {
    if (m[1] !== undefined) keys.push(Number(m[1]))
    else if (m[2] !== undefined) keys.push(m[2].startsWith('"') ? JSON.parse(m[2]) as string : m[2])
  }
  return keys
}
