/**
 * Server-side templates over inventory facts, in a subset of Jinja's expression
 * syntax (https://jinja.palletsprojects.com/en/3.1.x/templates/) so that what an
 * admin knows from cloud-init's own `## template: jinja` user-data carries over.
 *
 * Contract:
 * - netboot renders `{{ … }}` expressions whose first name is one of its namespaces,
 *   `node`, `server` or `group`: a dotted variable, then optional filters
 *   `default(LITERAL[, true])` (alias `d`), `upper`, `lower`. Jinja's whitespace
 *   control (`{{-`, `-}}`) is honoured. Nothing else: no calls, no subscripts, no
 *   arithmetic, no statements, no loops; rendering runs no code.
 * - Everything else is left byte for byte for the node: `{{ v1.local_hostname }}`,
 *   `{{ ds.meta_data.x }}`, `{% if … %}`, `{# … #}`. cloud-init renders those on the
 *   node when the user-data carries `## template: jinja`. netboot's expressions are
 *   recognised wherever they appear, also inside someone else's `{{ … }}` or after an
 *   unclosed `{#` (shell's `${#var}`); only `{% raw %}` hides them.
 * - `{% raw %}…{% endraw %}` is the escape: its content is never rendered here. The
 *   raw markers are kept when the document goes to the node with a Jinja header (the
 *   node's Jinja removes them) and removed otherwise (see `unwrapRaw`), so the node
 *   ends up with the same text Jinja would have produced.
 * - Errors (an unknown variable, a variable the node does not have and no default,
 *   a malformed expression, a `{% %}` statement that uses netboot's namespaces, a
 *   template in a mapping key) name the payload key path.
 */
import type { Node } from '../inventory/model.js'
import { childPath, isJsonMap, put, type Json, type JsonMap } from './data.js'

export type NodeFacts = Pick<Node, 'name' | 'xname' | 'nid' | 'groups' | 'interfaces' | 'bmcMac' | 'bmcIp'>

export interface ServerFacts {
  /** Base URL of the node-facing HTTP server as nodes see it (`server.public_url`). */
  readonly url: string
  /** The server's address on the provisioning network (`server.address`). */
  readonly ip?: string
}

export interface TemplateFacts {
  readonly node: NodeFacts
  readonly server: ServerFacts
  /** Set while rendering a group's payload; absent for a node's own. */
  readonly group?: { readonly name: string }
}

export interface TemplateProblem {
  /** Key path in the payload, e.g. `userdata.write_files[2].content`. */
  readonly path: string
  readonly message: string
}

interface Variable {
  readonly name: string
  readonly description: string
  readonly get: (f: TemplateFacts) => string | undefined
}

const VARIABLES: readonly Variable[] = [
  { name: 'node.name', description: 'inventory name (also the meta-data local-hostname)', get: (f) => f.node.name },
  { name: 'node.xname', description: 'xname, e.g. x1000c1s7b1n0', get: (f) => f.node.xname },
  { name: 'node.nid', description: 'node id, decimal', get: (f) => f.node.nid === undefined ? undefined : String(f.node.nid) },
  { name: 'node.groups', description: "the node's groups in order, comma-joined (empty if none)", get: (f) => f.node.groups.join(',') },
  { name: 'node.ip', description: 'IPv4 address of the first interface that has one', get: (f) => f.node.interfaces.find((i) => i.ip !== undefined)?.ip },
  { name: 'node.mac', description: "MAC address of the node's first interface", get: (f) => f.node.interfaces[0]?.mac },
  { name: 'node.bmc_ip', description: "the BMC's IPv4 address", get: (f) => f.node.bmcIp },
  { name: 'node.bmc_mac', description: "the BMC's MAC address", get: (f) => f.node.bmcMac },
  { name: 'server.url', description: "base URL of netboot's node HTTP server", get: (f) => f.server.url },
  { name: 'server.ip', description: "netboot's address on the provisioning network", get: (f) => f.server.ip },
  { name: 'group.name', description: "the group whose payload this is (a node's own payload has none)", get: (f) => f.group?.name },
]

/** The documented variables, for docs and `--help`. */
export const TEMPLATE_VARIABLES: readonly { readonly name: string; readonly description: string }[] =
  VARIABLES.map(({ name, description }) => ({ name, description }))

const BY_NAME = new Map(VARIABLES.map((v) => [v.name, v]))
const NAMESPACES = new Set(['node', 'server', 'group'])
const FILTERS = new Set(['default', 'd', 'upper', 'lower'])

/** Result of rendering one string: the text, and how many expressions or statements were left for the node. */
export type StringRender =
  | { readonly ok: true; readonly value: string; readonly nodeSide: number }
  | { readonly ok: false; readonly message: string }

class TemplateError extends Error {}

/**
 * Renders netboot's expressions in `text`. With `facts` undefined it only checks
 * syntax and variable names (what an upload can check before any node exists) and
 * returns the text unchanged.
 */
export function renderString (text: string, facts: TemplateFacts | undefined): StringRender {
  try {
    return { ok: true, ...scan(text, facts) }
  } catch (e) {
    if (e instanceof TemplateError) return { ok: false, message: e.message }
    throw e
  }
}

export type ValueRender =
  | { readonly ok: true; readonly value: Json; readonly nodeSide: number }
  | { readonly ok: false; readonly problems: TemplateProblem[] }

/** Renders every string value below `value` (never mapping keys); `path` prefixes problem paths. */
export function renderValue (value: Json, facts: TemplateFacts | undefined, path: string): ValueRender {
  const problems: TemplateProblem[] = []
  let nodeSide = 0
  const walk = (v: Json, p: string): Json => {
    if (typeof v === 'string') {
      const r = renderString(v, facts)
      if (!r.ok) { problems.push({ path: p, message: r.message }); return v }
      nodeSide += r.nodeSide
      return r.value
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, childPath(p, i)))
    if (isJsonMap(v)) {
      const out: JsonMap = {}
      for (const [k, x] of Object.entries(v)) {
        const kp = childPath(p, k)
        if (hasOwnTag(k)) problems.push({ path: kp, message: 'templates are rendered in values only, not in mapping keys' })
        put(out, k, walk(x, kp))
      }
      return out
    }
    return v
  }
  const out = walk(value, path)
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: out, nodeSide }
}

/** Syntax and variable-name check of every string below `value`, without facts. */
export function checkValue (value: Json, path: string): TemplateProblem[] {
  const r = renderValue(value, undefined, path)
  return r.ok ? [] : r.problems
}

const RAW_OPEN = /\{%(-|\+)?\s*raw\s*(-|\+)?%\}/y
const RAW_CLOSE = /\{%(-|\+)?\s*endraw\s*(-|\+)?%\}/g

/** A `{% raw %}` block starting at `at`: where its content starts and ends and where the block ends. */
function rawBlockAt (s: string, at: number): { body: number; bodyEnd: number; end: number } | 'unclosed' | undefined {
  RAW_OPEN.lastIndex = at
  const open = RAW_OPEN.exec(s)
  if (open === null) return undefined
  const body = at + open[0].length
  RAW_CLOSE.lastIndex = body
  const close = RAW_CLOSE.exec(s)
  if (close === null) return 'unclosed'
  return { body, bodyEnd: close.index, end: close.index + close[0].length }
}

/**
 * Removes `{% raw %}`/`{% endraw %}` markers (keeping their content) from every
 * string below `value`: what Jinja would output for the raw blocks, for documents
 * that the node will not render.
 */
export function unwrapRaw (value: Json): Json {
  if (typeof value === 'string') {
    if (!value.includes('{%')) return value
    let out = ''
    let i = 0
    while (i < value.length) {
      const open = value.indexOf('{%', i)
      if (open < 0) break
      const raw = rawBlockAt(value, open)
      if (raw === 'unclosed') break
      if (raw === undefined) { out += value.slice(i, open + 2); i = open + 2; continue }
      out += value.slice(i, open) + value.slice(raw.body, raw.bodyEnd)
      i = raw.end
    }
    return out + value.slice(i)
  }
  if (Array.isArray(value)) return value.map(unwrapRaw)
  if (isJsonMap(value)) {
    const out: JsonMap = {}
    for (const [k, x] of Object.entries(value)) put(out, k, unwrapRaw(x))
    return out
  }
  return value
}

function hasOwnTag (s: string): boolean {
  let i = s.indexOf('{{')
  while (i >= 0) {
    if (ownExpressionAt(s, i + 2)) return true
    i = s.indexOf('{{', i + 2)
  }
  return false
}

/** Does the expression whose body starts at `i` (just after `{{`) belong to netboot? */
function ownExpressionAt (s: string, i: number): boolean {
  FIRST_NAME.lastIndex = i
  const m = FIRST_NAME.exec(s)
  return m !== null && NAMESPACES.has(m[1] as string)
}
const FIRST_NAME = /[-+]?\s*([A-Za-z_][A-Za-z0-9_]*)/y

function scan (text: string, facts: TemplateFacts | undefined): { value: string; nodeSide: number } {
  const out: string[] = []
  let nodeSide = 0
  let i = 0
  let trimNext = false
  const emit = (s: string): void => {
    const piece = trimNext ? s.trimStart() : s
    if (piece !== '') { out.push(piece); trimNext = false }
  }
  const trimOutput = (): void => {
    while (out.length > 0) {
      const last = (out.pop() as string).trimEnd()
      if (last !== '') { out.push(last); return }
    }
  }
  while (i < text.length) {
    const open = text.indexOf('{', i)
    if (open < 0 || open + 1 >= text.length) { emit(text.slice(i)); break }
    const kind = text[open + 1]
    if (kind !== '{' && kind !== '%' && kind !== '#') { emit(text.slice(i, open + 1)); i = open + 1; continue }
    emit(text.slice(i, open))
    if (kind === '#') {
      const end = text.indexOf('#}', open + 2)
      if (end < 0) { emit('{#'); i = open + 2; continue }
      emit(text.slice(open, end + 2)); nodeSide++; i = end + 2; continue
    }
    if (kind === '%') {
      const raw = rawBlockAt(text, open)
      if (raw === 'unclosed') throw new TemplateError('{% raw %} without {% endraw %}')
      if (raw !== undefined) { emit(text.slice(open, raw.end)); i = raw.end; continue }
      const end = text.indexOf('%}', open + 2)
      if (end < 0) { emit('{%'); i = open + 2; continue }
      const body = text.slice(open + 2, end)
      const ns = /(^|[^\w.'"])(node|server|group)\s*\./.exec(body)
      if (ns !== null) {
        throw new TemplateError(`'{%${clip(body)}%}': netboot renders only {{ }} expressions; a {% %} statement is left for the node, where ${ns[2]}.* is undefined`)
      }
      emit(text.slice(open, end + 2)); nodeSide++; i = end + 2; continue
    }
    // kind === '{': someone else's expression is passed on a piece at a time, so that
    // netboot's own expressions are found wherever they are.
    if (!ownExpressionAt(text, open + 2)) { emit('{{'); nodeSide++; i = open + 2; continue }
    const end = findClose(text, open + 2, '}}')
    const tag = end < 0 ? clip(text.slice(open)) : text.slice(open, end + 2)
    if (end < 0) throw new TemplateError(`'${tag}': expression without closing }}`)
    let body = text.slice(open + 2, end)
    if (body.startsWith('-')) { if (facts !== undefined) trimOutput(); body = body.slice(1) } else if (body.startsWith('+')) body = body.slice(1)
    let trimAfter = false
    if (body.endsWith('-')) { trimAfter = true; body = body.slice(0, -1) } else if (body.endsWith('+')) body = body.slice(0, -1)
    const value = evaluate(body, tag, facts)
    emit(facts === undefined ? tag : value)
    trimNext = trimAfter && facts !== undefined
    i = end + 2
  }
  return { value: facts === undefined ? text : out.join(''), nodeSide }
}

function clip (s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s
}

/** Index of `close` at or after `from`, skipping quoted strings; -1 if absent. */
function findClose (s: string, from: number, close: string): number {
  let quote: string | undefined
  for (let i = from; i < s.length; i++) {
    const c = s[i]
    if (quote !== undefined) {
      if (c === '\\') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (s.startsWith(close, i)) return i
  }
  return -1
}

type Token =
  | { readonly t: 'name'; readonly v: string }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'num'; readonly v: string }
  | { readonly t: 'punct'; readonly v: string }

function tokenize (body: string, tag: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < body.length) {
    const c = body[i] as string
    if (/\s/.test(c)) { i++; continue }
    const rest = body.slice(i)
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)
    if (name !== null) { tokens.push({ t: 'name', v: name[0] }); i += name[0].length; continue }
    const num = /^-?\d+(\.\d+)?/.exec(rest)
    if (num !== null) { tokens.push({ t: 'num', v: num[0] }); i += num[0].length; continue }
    if (c === '"' || c === "'") {
      let v = ''
      let j = i + 1
      for (; j < body.length && body[j] !== c; j++) {
        if (body[j] === '\\' && j + 1 < body.length) {
          const n = body[++j] as string
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n
        } else v += body[j]
      }
      if (j >= body.length) throw new TemplateError(`'${tag}': unterminated string`)
      tokens.push({ t: 'str', v }); i = j + 1; continue
    }
    if ('.|(),'.includes(c)) { tokens.push({ t: 'punct', v: c }); i++; continue }
    throw new TemplateError(`'${tag}': unexpected '${c}' (netboot renders variables and the filters default, upper, lower only)`)
  }
  return tokens
}

function evaluate (body: string, tag: string, facts: TemplateFacts | undefined): string {
  const tokens = tokenize(body, tag)
  let k = 0
  const peek = (): Token | undefined => tokens[k]
  const expectName = (what: string): string => {
    const tok = tokens[k++]
    if (tok?.t !== 'name') throw new TemplateError(`'${tag}': expected ${what}`)
    return tok.v
  }
  const parts = [expectName('a variable')]
  while (peek()?.v === '.' && peek()?.t === 'punct') { k++; parts.push(expectName("a name after '.'")) }
  const name = parts.join('.')
  const variable = BY_NAME.get(name)
  if (variable === undefined) {
    const ns = parts[0] as string
    const known = VARIABLES.filter((v) => v.name.startsWith(`${ns}.`)).map((v) => v.name).join(', ')
    throw new TemplateError(`'${tag}': unknown variable ${name} (known: ${known})`)
  }
  let value = facts === undefined ? '' : variable.get(facts)
  while (k < tokens.length) {
    const bar = tokens[k++] as Token
    if (bar.t !== 'punct' || bar.v !== '|') throw new TemplateError(`'${tag}': unexpected '${bar.v}' after ${name}`)
    const filter = expectName('a filter name')
    if (!FILTERS.has(filter)) throw new TemplateError(`'${tag}': unknown filter ${filter} (netboot has default, upper, lower)`)
    const args: Token[] = []
    if (peek()?.t === 'punct' && peek()?.v === '(') {
      k++
      while (!(peek()?.t === 'punct' && peek()?.v === ')')) {
        const a = tokens[k++]
        if (a === undefined) throw new TemplateError(`'${tag}': missing ')'`)
        if (a.t === 'punct') throw new TemplateError(`'${tag}': expected a literal argument to ${filter}`)
        args.push(a)
        if (peek()?.t === 'punct' && peek()?.v === ',') k++
      }
      k++
    }
    if (filter === 'default' || filter === 'd') {
      const [fallback, boolean] = args
      if (fallback === undefined || args.length > 2 || fallback.t === 'name' || (boolean !== undefined && (boolean.t !== 'name' || !['true', 'false', 'True', 'False'].includes(boolean.v)))) {
        throw new TemplateError(`'${tag}': default takes a string or number and optionally true, e.g. default("none")`)
      }
      const alsoEmpty = boolean !== undefined && boolean.v.toLowerCase() === 'true'
      if (value === undefined || (alsoEmpty && value === '')) value = fallback.v
    } else {
      if (args.length > 0) throw new TemplateError(`'${tag}': ${filter} takes no arguments`)
      if (value !== undefined) value = filter === 'upper' ? value.toUpperCase() : value.toLowerCase()
    }
  }
  if (value === undefined) {
    const whose = name.startsWith('group.') ? 'outside a group payload' : `for ${facts?.node.name ?? 'this node'}`
    throw new TemplateError(`'${tag}': ${name} is not set ${whose}; add | default("…")`)
  }
  return value
}
