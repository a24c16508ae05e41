/**
 * The kernel command line as the agent reads it (/proc/cmdline). Pure: no I/O.
 *
 * The boot script (server/boot/cmdline.ts composeCmdline) puts netboot's own
 * parameters last:
 *
 *   netboot.server=URL          the node HTTP server as nodes see it (server.public_url)
 *   netboot.node=NAME           the node's name (absent on a discovery boot): a hint only,
 *                               the server identifies the node by its MACs and TPM
 *   netboot.image=NAME@sha256:HEX   the image this boot's kernel and initrd belong to
 *   netboot.mode=boot|discover
 *
 * None of them is trusted for what matters: the rootfs URL and digest come from the
 * attested answer. `netboot.image`'s digest only tells the agent whether the server
 * still plans the image this kernel came with (if not, the node reboots).
 *
 * Parsed strictly: an unknown `netboot.*` key, a repeated one, a missing one or a
 * malformed value is an error naming each problem, never a guess. Also read:
 *   rd.shell[=0|1|no|yes|off|on]  dracut.cmdline(7), getargbool semantics; the last one wins
 *   console=…                     every one, in order (Linux: the last is /dev/console)
 *
 * Splitting follows the kernel (lib/cmdline.c next_arg): tokens are separated by
 * whitespace outside double quotes; a token's key is the text before its first `=`;
 * a value's enclosing quotes are removed; `--` ends the kernel's parameters (what
 * follows is init's).
 */
import { AgentError } from './errors.js'

export type BootMode = 'boot' | 'discover'

export interface ImageRef {
  readonly name: string
  /** 64 lower-case hex digits. */
  readonly sha256: string
}

export interface AgentCmdline {
  /** Base URL, no trailing slash, no query or fragment. */
  readonly server: string
  readonly mode: BootMode
  /** Required in boot mode, absent in discover mode. */
  readonly node?: string
  /** Required in boot mode. */
  readonly image?: ImageRef
  /** rd.shell as given; undefined when absent (netboot's default is no shell). */
  readonly shell?: boolean
  /** console= values in order. */
  readonly consoles: readonly string[]
}

export const NETBOOT_KEYS = ['netboot.server', 'netboot.node', 'netboot.image', 'netboot.mode'] as const

const NODE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
const IMAGE = /^([A-Za-z0-9][A-Za-z0-9._+-]{0,62})@sha256:([0-9a-f]{64})$/

export interface Param {
  readonly key: string
  /** undefined for a bare flag. */
  readonly value?: string
}

/** Splits a command line as the kernel does; stops at `--`. */
export function splitCmdline (line: string): Param[] {
  const out: Param[] = []
  const s = line.replace(/\0/g, ' ')
  let i = 0
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++
    if (i >= s.length) break
    const start = i
    let inQuote = false
    for (; i < s.length; i++) {
      const c = s[i]!
      if (!inQuote && /\s/.test(c)) break
      if (c === '"') inQuote = !inQuote
    }
    let token = s.slice(start, i)
    if (token === '--') break
    if (token.startsWith('"')) token = token.slice(1).replace(/"$/, '')
    const eq = token.indexOf('=')
    if (eq < 0) {
      out.push({ key: token })
      continue
    }
    let value = token.slice(eq + 1)
    if (value.startsWith('"')) value = value.slice(1).replace(/"$/, '')
    out.push({ key: token.slice(0, eq), value })
  }
  return out
}

/** dracut's getargbool: a bare key is true; 0/no/off false; 1/yes/on true. */
function parseBool (p: Param): boolean | string {
  if (p.value === undefined) return true
  const v = p.value.toLowerCase()
  if (v === '0' || v === 'no' || v === 'off') return false
  if (v === '1' || v === 'yes' || v === 'on') return true
  return `${p.key}=${p.value}: not a boolean (0, 1, no, yes, off, on)`
}

/** The netboot server URL: http or https, no credentials, query or fragment; trailing slashes dropped. */
export function parseServerUrl (v: string): string | { problem: string } {
  let u: URL
  try {
    u = new URL(v)
  } catch {
    return { problem: 'not a URL' }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { problem: `scheme ${u.protocol.replace(/:$/, '')} (only http and https)` }
  if (u.username !== '' || u.password !== '') return { problem: 'credentials in the URL' }
  if (u.search !== '' || u.hash !== '' || v.includes('?') || v.includes('#')) return { problem: 'a query or fragment' }
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '')
}

export function parseImageRef (v: string): ImageRef | undefined {
  const m = IMAGE.exec(v)
  return m === null ? undefined : { name: m[1]!, sha256: m[2]! }
}

/**
 * Parses a command line (the contents of /proc/cmdline). Throws AGENT_CMDLINE_INVALID
 * (failure class usage) listing every problem.
 */
export function parseCmdline (line: string): AgentCmdline {
  const params = splitCmdline(line)
  const problems: string[] = []
  const seen = new Map<string, string | undefined>()
  let shell: boolean | undefined
  const consoles: string[] = []

  for (const p of params) {
    if (p.key === 'rd.shell') {
      const b = parseBool(p)
      if (typeof b === 'string') problems.push(b)
      else shell = b
      continue
    }
    if (p.key === 'console' && p.value !== undefined) {
      consoles.push(p.value)
      continue
    }
    if (!p.key.startsWith('netboot.')) continue
    if (!(NETBOOT_KEYS as readonly string[]).includes(p.key)) {
      problems.push(`${p.key}: unknown parameter (netboot reads ${NETBOOT_KEYS.join(', ')})`)
      continue
    }
    if (seen.has(p.key)) {
      problems.push(`${p.key}: given more than once`)
      continue
    }
    if (p.value === undefined || p.value === '') {
      problems.push(`${p.key}: needs a value`)
      seen.set(p.key, undefined)
      continue
    }
    seen.set(p.key, p.value)
  }

  let server: string | undefined
  const rawServer = seen.get('netboot.server')
  if (!seen.has('netboot.server')) problems.push('netboot.server: missing (the boot script sets it)')
  else if (rawServer !== undefined) {
    const s = parseServerUrl(rawServer)
    if (typeof s === 'string') server = s
    else problems.push(`netboot.server=${rawServer}: ${s.problem}`)
  }

  let mode: BootMode | undefined
  const rawMode = seen.get('netboot.mode')
  if (!seen.has('netboot.mode')) problems.push('netboot.mode: missing (boot or discover)')
  else if (rawMode !== undefined) {
    if (rawMode === 'boot' || rawMode === 'discover') mode = rawMode
    else problems.push(`netboot.mode=${rawMode}: not boot or discover`)
  }

  const rawNode = seen.get('netboot.node')
  if (rawNode !== undefined && !NODE.test(rawNode)) problems.push(`netboot.node=${rawNode}: not a host name label (letters, digits, '-', at most 63)`)
  const rawImage = seen.get('netboot.image')
  const image = rawImage !== undefined ? parseImageRef(rawImage) : undefined
  if (rawImage !== undefined && image === undefined) problems.push(`netboot.image=${rawImage}: not NAME@sha256:<64 lower-case hex digits>`)

  if (mode === 'boot') {
    if (!seen.has('netboot.node')) problems.push('netboot.node: missing (required when netboot.mode=boot)')
    if (!seen.has('netboot.image')) problems.push('netboot.image: missing (required when netboot.mode=boot)')
  }
  if (mode === 'discover' && seen.has('netboot.node')) problems.push('netboot.node: not used when netboot.mode=discover (the node is not known yet)')

  if (problems.length > 0 || server === undefined || mode === undefined) {
    throw new AgentError('AGENT_CMDLINE_INVALID', 'usage', `kernel command line: ${problems.join('; ')}`)
  }
  return {
    server,
    mode,
    ...(rawNode !== undefined && NODE.test(rawNode) ? { node: rawNode.toLowerCase() } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(shell !== undefined ? { shell } : {}),
    consoles,
  }
}
