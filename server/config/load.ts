/**
 * Loads netboot.yaml: parse, apply NETBOOT_* environment overrides, fill defaults,
 * validate, check cross-field rules. Any problem is a CONFIG_INVALID error whose
 * details name the key (`dhcp.subnets[0].router`), the file line or the variable,
 * and what was expected.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { LineCounter, parse as parseYamlValue, parseDocument, isMap, isScalar, type Document } from 'yaml'
import { NetbootError, type ErrorDetail } from '../errors.js'
import { cidrContains, ipv4ToInt, parseCidr, parseIPv4 } from '../inventory/addresses.js'
import { ConfigSchema, ENV_PREFIX, ENV_RESERVED, type Config } from './schema.js'
import { parseIpv6Prefix } from '../ra/codec.js'

export const DEFAULT_CONFIG_PATH = '/etc/netboot/netboot.yaml'

export interface LoadedConfig {
  readonly config: Config
  /** Where it came from, for the start-up log line. */
  readonly source: string
  /** Derived: the database file, the URL nodes reach the HTTP server at. */
  readonly dbPath: string
  readonly publicUrl: string
  readonly adminUrl: string
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true })
ajv.addFormat('ipv4addr', (s: string) => parseIPv4(s) === s)
ajv.addFormat('cidr', (s: string) => parseCidr(s) !== undefined)
ajv.addFormat('ipv4range', (s: string) => parseRange(s) !== undefined)
ajv.addFormat('ipv6prefix', (s: string) => parseIpv6Prefix(s) !== undefined)
ajv.addFormat('http-url', (s: string) => /^https?:\/\/[^\s/]+(\/\S*)?$/.test(s))
const validate = ajv.compile<Config>(ConfigSchema)

/** Load from a file path (which must exist), or from defaults when path is undefined. */
export function loadConfig (path: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text = ''
  if (path !== undefined) {
    try {
      text = readFileSync(path, 'utf8')
    } catch (e) {
      throw new NetbootError('CONFIG_NOT_FOUND', `cannot read config ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
    }
  }
  return parseConfig(text, path ?? '(defaults)', env)
}

export function parseConfig (text: string, source: string, env: NodeJS.ProcessEnv = {}): LoadedConfig {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length > 0) {
    throw invalid(source, doc.errors.map((e) => ({ where: `${source}:${lines.linePos(e.pos[0]).line}`, message: `YAML: ${e.message.split('\n')[0] ?? ''}` })))
  }
  const raw: unknown = doc.toJS() ?? {}
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalid(source, [{ where: source, message: 'the top level must be a mapping of keys' }])
  }
  const data = raw as Record<string, unknown>
  const fromEnv = applyEnv(data, env)

  const where = (path: (string | number)[]): string => {
    const key = dotted(path)
    const envName = fromEnv.get(key)
    if (envName !== undefined) return `${envName} (environment)`
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined
    const off = node?.range?.[0] ?? keyOffset(doc, path)
    return off === undefined ? source : `${source}:${lines.linePos(off).line}`
  }

  if (!validate(data)) {
    const errs = validate.errors ?? []
    // A union reports one `const` error per branch and then the `anyOf`: keep the anyOf.
    const unions = new Set(errs.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
    throw invalid(source, errs.filter((e) => !(e.keyword === 'const' && unions.has(e.instancePath))).map((e) => schemaError(e, where)))
  }
  const config = data as Config
  const problems = crossCheck(config)
  if (problems.length > 0) throw invalid(source, problems.map(({ path, message }) => ({ where: where(path), message: `${dotted(path)}: ${message}` })))

  const host = config.server.address ?? '127.0.0.1'
  return {
    config,
    source,
    dbPath: config.database.path ?? join(config.data_dir, 'netboot.db'),
    publicUrl: (config.server.public_url ?? `http://${host}:${config.http.port}`).replace(/\/+$/, ''),
    adminUrl: (config.admin.url ?? `http://${config.admin.listen === '0.0.0.0' ? '127.0.0.1' : config.admin.listen}:${config.admin.port}`).replace(/\/+$/, ''),
  }
}

/** Writes NETBOOT_A__B=value into data.a.b; values are read as YAML scalars/flow collections. */
function applyEnv (data: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, string> {
  const applied = new Map<string, string>()
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || value === undefined) continue
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split('__')
    let target = data
    for (const seg of path.slice(0, -1)) {
      const next = target[seg]
      if (next === undefined) target[seg] = {}
      else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        throw invalid('environment', [{ where: name, message: `${path.join('.')}: '${seg}' is not a section` }])
      }
      target = target[seg] as Record<string, unknown>
    }
    let parsed: unknown
    try { parsed = parseYamlValue(value) } catch { parsed = value }
    target[path.at(-1)!] = parsed
    applied.set(path.join('.'), name)
  }
  return applied
}

function schemaError (e: ErrorObject, where: (p: (string | number)[]) => string): ErrorDetail {
  const path = e.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s.replaceAll('~1', '/').replaceAll('~0', '~')))
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty
      const full = [...path, key]
      return { where: where(full), message: `${dotted(full)}: unknown key` }
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty
      return { where: where(path), message: `${dotted([...path, key])}: required` }
    }
    case 'format':
      return { where: where(path), message: `${dotted(path)}: expected ${formatName((e.params as { format: string }).format)}` }
    case 'anyOf':
    case 'const': {
      const allowed = (e.schema as { const?: unknown }[] | undefined)
      const list = Array.isArray(allowed) ? allowed.map((s) => JSON.stringify(s.const)).join(', ') : ''
      return { where: where(path), message: `${dotted(path)}: expected one of ${list}` }
    }
    default:
      return { where: where(path), message: `${dotted(path)}: ${e.message ?? 'invalid'}` }
  }
}

function formatName (f: string): string {
  return ({ ipv4addr: 'an IPv4 address such as 172.16.0.254', cidr: 'a network in CIDR form such as 172.16.0.0/24', ipv4range: 'an address range FIRST-LAST such as 172.16.0.200-172.16.0.250', 'http-url': 'an http:// or https:// URL', ipv6prefix: 'an IPv6 /64 prefix such as fd00:96::/64' } as Record<string, string>)[f] ?? f
}

interface Problem { path: (string | number)[]; message: string }

/** Rules the schema cannot express. */
function crossCheck (c: Config): Problem[] {
  const out: Problem[] = []
  const names = new Set<string>()
  const nets: { i: number; first: number; last: number }[] = []
  c.dhcp.subnets.forEach((s, i) => {
    const net = parseCidr(s.network)!
    if (names.has(s.name)) out.push({ path: ['dhcp', 'subnets', i, 'name'], message: `duplicate subnet name '${s.name}'` })
    names.add(s.name)
    for (const o of nets) {
      if (net.first <= o.last && o.first <= net.last) out.push({ path: ['dhcp', 'subnets', i, 'network'], message: `overlaps dhcp.subnets[${o.i}]` })
    }
    nets.push({ i, first: net.first, last: net.last })
    const pools: { first: number; last: number }[] = []
    s.pool.forEach((r, j) => {
      const range = parseRange(r)!
      if (!cidrContains(net, range.firstIp) || !cidrContains(net, range.lastIp)) out.push({ path: ['dhcp', 'subnets', i, 'pool', j], message: `range is not inside ${s.network}` })
      if (range.first === net.first || range.last === net.last) out.push({ path: ['dhcp', 'subnets', i, 'pool', j], message: 'range includes the network or broadcast address' })
      for (const p of pools) if (range.first <= p.last && p.first <= range.last) out.push({ path: ['dhcp', 'subnets', i, 'pool', j], message: 'overlaps another pool range' })
      pools.push(range)
    })
    if (s.router !== undefined && !cidrContains(net, s.router)) out.push({ path: ['dhcp', 'subnets', i, 'router'], message: `router ${s.router} is not inside ${s.network}` })
  })
  if (c.dhcp.enabled && c.dhcp.subnets.length > 0 && c.server.address === undefined) {
    out.push({ path: ['server', 'address'], message: 'required when DHCP serves subnets (it is the next-server and boot URL host)' })
  }
  if (c.ra.min_interval !== undefined && c.ra.min_interval > 0.75 * c.ra.max_interval) {
    out.push({ path: ['ra', 'min_interval'], message: `must be at most 0.75 × ra.max_interval (${Math.floor(0.75 * c.ra.max_interval)}), RFC 4861 §6.2.1` })
  }
  if (c.http.port !== 0 && c.http.port === c.admin.port && c.http.listen === c.admin.listen) {
    out.push({ path: ['admin', 'port'], message: 'must differ from http.port' })
  }
  return out
}

export interface AddressRange { readonly first: number; readonly last: number; readonly firstIp: string; readonly lastIp: string }

/** `172.16.0.200-172.16.0.250` → numeric bounds; undefined when malformed or backwards. */
export function parseRange (s: string): AddressRange | undefined {
  const [a, b, extra] = s.split('-').map((x) => x.trim())
  if (a === undefined || b === undefined || extra !== undefined) return undefined
  const firstIp = parseIPv4(a)
  const lastIp = parseIPv4(b)
  if (firstIp === undefined || lastIp === undefined) return undefined
  const first = ipv4ToInt(firstIp)
  const last = ipv4ToInt(lastIp)
  return first <= last ? { first, last, firstIp, lastIp } : undefined
}

function dotted (path: (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`), '')
}

function keyOffset (doc: Document, path: (string | number)[]): number | undefined {
  const parent = path.length <= 1 ? doc.contents : doc.getIn(path.slice(0, -1), true)
  if (!isMap(parent)) return undefined
  const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1))
  return (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0]
}

function invalid (source: string, details: ErrorDetail[]): NetbootError {
  const first = details[0]
  const head = first === undefined ? '' : `: ${first.where ?? source}: ${first.message}`
  const more = details.length > 1 ? ` (and ${details.length - 1} more)` : ''
  return new NetbootError('CONFIG_INVALID', `invalid configuration ${source}${head}${more}`, details)
}
