/**
 * Kernel command-line composition: image defaults, then the admin layers
 * (default, groups, node) in precedence order, then netboot's own parameters.
 *
 * Tokens are split as the kernel splits them (linux lib/cmdline.c next_arg):
 * on whitespace outside double quotes; a token's key is the text before its
 * first `=` (a leading quote dropped), or the whole token for a bare flag.
 * A later layer acts on what the earlier layers left:
 *
 *   key=value   replaces every earlier token with that key, at the position of
 *               the first one (bare flag or key=value alike), or is appended
 *   flag        the same: a repeated flag is kept once
 *   -key        removes every earlier token with that key
 *   -key=value  removes exactly that earlier token
 *
 * except for REPEATABLE_KEYS, which the kernel or dracut read once per
 * occurrence: a new `console=…` is appended unless the same token is already
 * there (Linux: every console= gets output, the last is /dev/console), and a
 * layer that wants only its own writes `-console console=tty0`.
 * Keys are compared exactly: the kernel treats `-` and `_` in parameter names
 * alike, and when both spellings are present it reads them in order, so the
 * later layer (appended later) still wins.
 *
 * Refused outright (BOOT_PARAMS_INVALID): non-printable or non-ASCII bytes, an
 * unbalanced `"`, a run of spaces inside quotes (iPXE would collapse it),
 * anything iPXE would read as script syntax (ipxe-value.ts ipxeProblem), a bare
 * `--` (what follows it goes to init, not the kernel, and netboot's own
 * parameters come after it) and a lone `-`.
 * Dropped and reported, never applied: `initrd` (netboot names the initrds; one
 * more would make the EFI stub load another file) and every `netboot.*` key
 * (the agent's parameters, which admins cannot override). They are dropped rather
 * than refused so that a rule added later cannot stop stored parameters from
 * booting; checkParams refuses them when parameters are written.
 */
import { NetbootError, type ErrorDetail } from '../errors.js'
import { ipxeLabel, ipxeProblem, ipxeUrl, MAX_CMDLINE_BYTES } from './ipxe-value.js'

/** Keys that legitimately occur more than once (kernel: console; dracut.cmdline(7): the network and driver keys). */
export const REPEATABLE_KEYS: ReadonlySet<string> = new Set([
  'console',
  'ip', 'ifname', 'nameserver', 'rd.route', 'bond', 'bridge', 'vlan',
  'rd.driver.pre', 'rd.driver.post', 'rd.driver.blacklist', 'modprobe.blacklist',
])

/** Keys admins cannot set: `initrd` and the `netboot.` prefix. */
export function isReservedKey (key: string): boolean {
  return key === 'initrd' || key.startsWith('netboot.')
}

export interface ParamLayer {
  /** Where the parameters come from, e.g. `image:compute`, `default`, `group:gpu`, `node:n01`; used in messages. */
  readonly scope: string
  readonly params: string
}

/** netboot's own parameters, read by the agent in the initramfs. */
export interface NetbootParams {
  /** Base URL of the node HTTP server: `netboot.server=`. */
  readonly server: string
  /** `netboot.node=`: absent on a discovery boot. */
  readonly node?: string
  /** `netboot.image=NAME@sha256:HEX`: the image the agent must verify. */
  readonly image?: string
  /** `netboot.mode=`. */
  readonly mode?: 'boot' | 'discover'
}

export interface DroppedToken {
  readonly scope: string
  readonly token: string
  readonly reason: string
}

export interface ComposedCmdline {
  /** Tokens joined by single spaces; netboot's own last. */
  readonly cmdline: string
  readonly tokens: readonly string[]
  /** Reserved tokens found in a layer and not applied; worth a warning in the log. */
  readonly dropped: readonly DroppedToken[]
}

export type ParamToken =
  | { readonly op: 'set'; readonly key: string; readonly token: string }
  | { readonly op: 'remove'; readonly key: string; readonly token: string; readonly exact?: string }

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v'

function keyOf (token: string): string {
  const t = token.startsWith('"') ? token.slice(1) : token
  const eq = t.indexOf('=')
  return (eq < 0 ? t : t.slice(0, eq)).replace(/"$/, '')
}

/**
 * Splits and checks one layer's parameters. Returns the tokens and every
 * problem found (an empty `problems` means the layer is usable).
 */
export function parseParams (params: string, scope: string): { tokens: ParamToken[]; problems: ErrorDetail[] } {
  const tokens: ParamToken[] = []
  const problems: ErrorDetail[] = []
  const problem = (token: string, message: string): void => { problems.push({ where: scope, message: `${JSON.stringify(token)}: ${message}` }) }
  const s = params
  let i = 0
  while (i < s.length) {
    while (i < s.length && isSpace(s[i]!)) i++
    if (i >= s.length) break
    const start = i
    let inQuote = false
    for (; i < s.length; i++) {
      const c = s[i]!
      if (!inQuote && isSpace(c)) break
      if (c === '"') inQuote = !inQuote
    }
    const token = s.slice(start, i)
    if (inQuote) {
      problem(token, 'unbalanced double quote')
      continue
    }
    const bad = [...token].find((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) > 0x7e))
    if (bad !== undefined) {
      problem(token, `character 0x${bad.charCodeAt(0).toString(16).padStart(2, '0')} (only printable ASCII is allowed; inside quotes, single spaces)`)
      continue
    }
    if (token.includes('  ')) {
      problem(token, 'a run of spaces inside quotes (iPXE collapses it)')
      continue
    }
    const ipxe = ipxeProblem(token)
    if (ipxe !== undefined) {
      problem(token, ipxe)
      continue
    }
    if (token === '--') {
      problem(token, "'--' hands the rest of the line to init; netboot's parameters must stay kernel parameters")
      continue
    }
    if (token.startsWith('-')) {
      const target = token.slice(1)
      const key = keyOf(target)
      if (key === '' || target.startsWith('-')) {
        problem(token, 'a removal is -key or -key=value')
        continue
      }
      tokens.push(target.includes('=') ? { op: 'remove', key, token, exact: target } : { op: 'remove', key, token })
      continue
    }
    const key = keyOf(token)
    if (key === '') {
      problem(token, 'no parameter name before =')
      continue
    }
    tokens.push({ op: 'set', key, token })
  }
  return { tokens, problems }
}

/**
 * Checks parameters an admin is about to store: every problem parseParams finds,
 * plus reserved keys (which composeCmdline would drop). Empty means accepted.
 */
export function checkParams (params: string, scope: string): ErrorDetail[] {
  const { tokens, problems } = parseParams(params, scope)
  for (const t of tokens) {
    if (isReservedKey(t.key)) problems.push({ where: scope, message: `${JSON.stringify(t.token)}: ${reservedReason(t.key)}` })
  }
  return problems
}

function reservedReason (key: string): string {
  return key === 'initrd' ? 'netboot sets initrd= itself' : 'netboot.* parameters are set by netboot'
}

/**
 * The kernel command line for a boot: `layers` lowest precedence first (image
 * defaults, default, groups, node — resolve.ts gives the admin layers in that
 * order), then `netboot`. Throws BOOT_PARAMS_INVALID listing every problem of
 * every layer, or when the result exceeds MAX_CMDLINE_BYTES.
 */
export function composeCmdline (layers: readonly ParamLayer[], netboot: NetbootParams): ComposedCmdline {
  const out: { key: string; token: string }[] = []
  const dropped: DroppedToken[] = []
  const problems: ErrorDetail[] = []
  for (const layer of layers) {
    const parsed = parseParams(layer.params, layer.scope)
    problems.push(...parsed.problems)
    for (const t of parsed.tokens) {
      if (isReservedKey(t.key)) {
        dropped.push({ scope: layer.scope, token: t.token, reason: reservedReason(t.key) })
        continue
      }
      apply(out, t)
    }
  }
  if (problems.length > 0) {
    throw new NetbootError('BOOT_PARAMS_INVALID', `kernel parameters refused: ${problems.map((p) => `${p.where ?? ''}: ${p.message}`).join('; ')}`, problems)
  }
  const tokens = [...out.map((o) => o.token), ...netbootTokens(netboot)]
  const cmdline = tokens.join(' ')
  if (cmdline.length > MAX_CMDLINE_BYTES) {
    throw new NetbootError('BOOT_PARAMS_INVALID', `kernel command line is ${cmdline.length} bytes; the kernel keeps at most ${MAX_CMDLINE_BYTES}`, [{ where: 'cmdline', message: 'too long' }])
  }
  return { cmdline, tokens, dropped }
}

function apply (out: { key: string; token: string }[], t: ParamToken): void {
  if (t.op === 'remove') {
    for (let i = out.length - 1; i >= 0; i--) {
      const o = out[i]!
      if (t.exact === undefined ? o.key === t.key : o.token === t.exact) out.splice(i, 1)
    }
    return
  }
  if (REPEATABLE_KEYS.has(t.key)) {
    if (!out.some((o) => o.token === t.token)) out.push({ key: t.key, token: t.token })
    return
  }
  const first = out.findIndex((o) => o.key === t.key)
  if (first < 0) {
    out.push({ key: t.key, token: t.token })
    return
  }
  out[first] = { key: t.key, token: t.token }
  for (let i = out.length - 1; i > first; i--) if (out[i]!.key === t.key) out.splice(i, 1)
}

function netbootTokens (p: NetbootParams): string[] {
  const tokens = [`netboot.server=${ipxeUrl(p.server, 'netboot.server').text}`]
  if (p.node !== undefined) tokens.push(`netboot.node=${ipxeLabel(p.node, 'netboot.node').text}`)
  if (p.image !== undefined) tokens.push(`netboot.image=${ipxeLabel(p.image, 'netboot.image').text}`)
  if (p.mode !== undefined) tokens.push(`netboot.mode=${p.mode === 'discover' ? 'discover' : 'boot'}`)
  return tokens
}
