/**
 * Values that may enter an iPXE script. iPXE has no quoting and no escape
 * character, so nothing is escaped: a value is either proven harmless at the
 * kind of position it is meant for, or refused. The rules follow how iPXE reads
 * a script line (src/core/exec.c, src/core/settings.c, src/core/getopt.c):
 *
 *  - a line is split on whitespace (isspace: space, \t, \n, \v, \f, \r), so a
 *    control character could end the line and start a new command: only
 *    printable ASCII (0x20–0x7e) is accepted, in every kind of value;
 *  - a line ending in `\` continues on the next one (src/image/script.c
 *    process_script), which would swallow the template's next command: a
 *    value ending in `\` is refused;
 *  - a token that is exactly `||`, `&&` or `;` ends the command and starts
 *    another (command_terminator), and a token starting with `#` turns the rest
 *    of the line into a comment, which would silently drop our own
 *    `|| goto retry_…`: such tokens are refused;
 *  - `${name}` in any token is replaced by the setting `name`, and the result
 *    is scanned again (expand_settings): `${` is refused, and so is a value
 *    ending in `$`, which the template text after it could complete
 *    (template.ts refuses a placeholder followed by `{`);
 *  - options are parsed only before the first non-option argument
 *    (getopt_long stops there), and every interpolated value follows a fixed
 *    word (`kernel --name vmlinuz <url> …`, `echo netboot: …`), so a value
 *    starting with `-` is never read as an option.
 *
 * A value that passed is wrapped in IpxeSafe; the template engine accepts
 * nothing else, so unchecked data cannot reach a script by accident.
 */
import { NetbootError } from '../errors.js'

export type IpxeValueKind = 'name' | 'label' | 'url' | 'mac-url' | 'int' | 'text' | 'cmdline'

declare const safeBrand: unique symbol

/**
 * A string that passed the check for its kind. Only this module issues one:
 * the type cannot be written as a literal (the brand symbol is not exported),
 * and isIpxeSafe checks at run time that this module issued the object.
 */
export interface IpxeSafe {
  readonly [safeBrand]: true
  readonly text: string
  readonly kind: IpxeValueKind
}

const issued = new WeakSet<object>()

function safe (text: string, kind: IpxeValueKind): IpxeSafe {
  const v = Object.freeze({ text, kind }) as IpxeSafe
  issued.add(v)
  return v
}

export function isIpxeSafe (v: unknown): v is IpxeSafe {
  return typeof v === 'object' && v !== null && issued.has(v)
}

/** Longest kernel command line on x86 and arm64 (COMMAND_LINE_SIZE, including the NUL is 2048; we keep 2047 bytes). */
export const MAX_CMDLINE_BYTES = 2047
const MAX_URL = 2048
const MAX_TEXT = 256
const MAX_NAME = 64
const MAX_LABEL = 255

const IPXE_TERMINATORS = new Set(['||', '&&', ';'])

/**
 * Why `s` cannot appear in an iPXE script line, or undefined if it can (the
 * rules common to every kind; see the module comment).
 */
export function ipxeProblem (s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return `character 0x${c.toString(16).padStart(2, '0')} at offset ${i} (only printable ASCII is allowed)`
  }
  if (s.includes('${')) return "'${' would be expanded by iPXE as a setting"
  if (s.endsWith('$')) return "a trailing '$' could combine with the script into a '${' expansion"
  if (s.endsWith('\\')) return "a trailing '\\' would join the script's next line to this one"
  for (const token of s.split(' ')) {
    if (IPXE_TERMINATORS.has(token)) return `'${token}' is an iPXE command separator`
    if (token.startsWith('#')) return `'${token}' would start an iPXE comment`
  }
  return undefined
}

function refuse (where: string, value: string, why: string): never {
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value
  throw new NetbootError('BOOT_VALUE_INVALID', `${where}: ${JSON.stringify(shown)} is not safe in an iPXE script: ${why}`, [{ where, message: why }])
}

function common (where: string, value: string, max: number): void {
  if (typeof value !== 'string') refuse(where, String(value), 'not a string')
  if (value.length === 0) refuse(where, value, 'empty')
  if (value.length > max) refuse(where, value, `longer than ${max} characters`)
  const p = ipxeProblem(value)
  if (p !== undefined) refuse(where, value, p)
}

/**
 * An iPXE image name (`kernel --name`, `initrd --name`) that is also the
 * `initrd=` argument the Linux EFI stub opens (PXE.md: UEFI iPXE needs it): a
 * plain file name.
 */
export function ipxeName (value: string, where: string): IpxeSafe {
  common(where, value, MAX_NAME)
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) refuse(where, value, 'an image name is letters, digits, ".", "_" and "-", starting with a letter or digit')
  return safe(value, 'name')
}

/** A single word shown to people (node name, image reference such as `compute@sha256:…`). */
export function ipxeLabel (value: string, where: string): IpxeSafe {
  common(where, value, MAX_LABEL)
  if (!/^[A-Za-z0-9][A-Za-z0-9._:@+/-]*$/.test(value)) refuse(where, value, 'a label is one word of letters, digits and ._:@+/-')
  return safe(value, 'label')
}

/** RFC 3986 §2: unreserved, reserved and pct-encoded characters; nothing else (no space, braces, quotes, backslash). */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?[\]@!$&'()*+,;=%]+$/

/** An absolute http(s) URL iPXE fetches. No fragment: it means nothing to a download. */
export function ipxeUrl (value: string, where: string): IpxeSafe {
  common(where, value, MAX_URL)
  if (!URI_CHARS.test(value)) refuse(where, value, 'a URL may contain only RFC 3986 characters; percent-encode the rest')
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) refuse(where, value, "'%' must start a percent-encoded octet")
  let u: URL
  try {
    u = new URL(value)
  } catch {
    return refuse(where, value, 'not a URL')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') refuse(where, value, 'only http and https URLs can be fetched')
  if (u.hostname === '') refuse(where, value, 'no host')
  if (u.username !== '' || u.password !== '') refuse(where, value, 'credentials in a URL would be shown on the console')
  if (value.includes('#')) refuse(where, value, 'a URL fragment means nothing to a download')
  if (!/^https?:\/\//i.test(value)) refuse(where, value, 'must start with http:// or https://')
  return safe(value, 'url')
}

/** What iPXE puts in place of `{mac}` in ipxeUrlWithMac: the MAC of the interface last opened (the one DHCP succeeded on). */
export const IPXE_MAC_EXPANSION = '${netX/mac}'

/**
 * A URL template with `{mac}` exactly once, e.g. `http://10.0.0.1:8080/boot/{mac}.ipxe`.
 * Checked by ipxeUrl with a sample MAC in place of `{mac}`; the result carries
 * IPXE_MAC_EXPANSION there: the only `${…}` a value may hold, and one netboot
 * itself writes.
 */
export function ipxeUrlWithMac (template: string, where: string): IpxeSafe {
  const parts = template.split('{mac}')
  if (parts.length !== 2) refuse(where, template, 'needs {mac} exactly once')
  ipxeUrl(parts.join('00:00:00:00:00:00'), where)
  return safe(parts.join(IPXE_MAC_EXPANSION), 'mac-url')
}

/** A whole number in [min, max], for sleep durations and retry counts. */
export function ipxeInt (value: number, where: string, min: number, max: number): IpxeSafe {
  if (!Number.isSafeInteger(value) || value < min || value > max) refuse(where, String(value), `must be a whole number from ${min} to ${max}`)
  return safe(String(value), 'int')
}

/** Free text for `echo`: one line of printable ASCII, under the common rules. */
export function ipxeText (value: string, where: string): IpxeSafe {
  common(where, value, MAX_TEXT)
  return safe(value, 'text')
}

/**
 * A kernel command line as composed by cmdline.ts: single spaces between
 * tokens, at most MAX_CMDLINE_BYTES.
 */
export function ipxeCmdline (value: string, where: string): IpxeSafe {
  if (value === '') return safe('', 'cmdline')
  common(where, value, MAX_CMDLINE_BYTES)
  if (/^ | $|  /.test(value)) refuse(where, value, 'tokens must be separated by single spaces')
  return safe(value, 'cmdline')
}
