/**
 * A small interpreter for the part of the iPXE script language netboot's
 * templates use, written from iPXE's source (src/core/exec.c: split_command,
 * command_terminator, system; src/core/settings.c: expand_settings;
 * src/image/script.c: labels, goto, termination on failure;
 * src/hci/commands/nvo_cmd.c: set, inc). No iPXE build runs offline here, so
 * the tests execute rendered scripts with this instead: retry bounds, failure
 * paths and the exact kernel command line are checked by running them.
 *
 * Downloads, DHCP, boot and reboot are stubs whose outcome the test chooses.
 * Unknown commands fail as in iPXE ("command not found"), so a typo in a
 * template ends the script with an error the tests see.
 */

export interface SimEvent {
  readonly cmd: string
  readonly args: readonly string[]
}

export type SimEnd =
  | { readonly kind: 'boot'; readonly kernel: LoadedImage; readonly initrds: readonly LoadedImage[] }
  | { readonly kind: 'reboot' }
  | { readonly kind: 'script-error'; readonly line: number; readonly text: string; readonly rc: number }
  | { readonly kind: 'end-of-script' }
  | { readonly kind: 'step-limit' }

export interface LoadedImage {
  readonly name: string
  readonly url: string
  readonly cmdline: string
}

export interface SimOptions {
  /** Outcome of each download by URL, in order; true = success. Missing or exhausted entries succeed. */
  readonly downloads?: Readonly<Record<string, readonly boolean[]>>
  /** Outcome of successive `dhcp` commands; missing entries succeed. */
  readonly dhcp?: readonly boolean[]
  /** Whether `boot` returns (fails). Default false: boot ends the run. */
  readonly bootFails?: boolean
  /** How many `reboot` commands fail before one works. Default 0. */
  readonly rebootFailures?: number
  /** Settings visible to ${…}; `netX/mac` defaults to 52:54:00:12:34:56. */
  readonly settings?: Readonly<Record<string, string>>
  /** Commands executed before giving up; default 10 000. */
  readonly maxSteps?: number
}

export interface SimResult {
  readonly end: SimEnd
  readonly events: readonly SimEvent[]
  /** Every sleep, in seconds, in order. */
  readonly sleeps: readonly number[]
  readonly echoes: readonly string[]
  /** Downloads attempted, by URL. */
  readonly fetches: readonly string[]
}

const ENOEXEC = 8
const EFAIL = 1

class Stop extends Error {
  constructor (readonly end: SimEnd) { super(end.kind) }
}

const isSpace = (c: string | undefined): boolean => c !== undefined && ' \t\n\v\f\r'.includes(c)

/** split_command: whitespace-delimited tokens. */
export function splitCommand (line: string): string[] {
  const out: string[] = []
  let i = 0
  for (;;) {
    while (isSpace(line[i])) i++
    if (i >= line.length) break
    const start = i
    while (i < line.length && !isSpace(line[i])) i++
    out.push(line.slice(start, i))
  }
  return out
}

/** expand_settings: innermost-first ${name} replacement, repeated until none is left. */
export function expandSettings (s: string, get: (name: string) => string): string {
  let str = s
  for (let guard = 0; guard < 1000; guard++) {
    let start = -1
    let end = -1
    for (let i = 0; i < str.length; i++) {
      if (str[i] === '$' && str[i + 1] === '{') start = i
      if (start >= 0 && str[i] === '}') {
        end = i
        break
      }
    }
    if (end < 0) return str
    str = str.slice(0, start) + get(str.slice(start + 2, end)) + str.slice(end + 1)
  }
  throw new Error('expansion does not terminate')
}

/** process_script's line reading: split at \n, trailing \r dropped, `\` continues a line; label split off. */
export function scriptLines (script: string): { label?: string; command: string }[] {
  const out: { label?: string; command: string }[] = []
  let pending = ''
  for (const raw of script.split('\n')) {
    const line = pending + (raw.endsWith('\r') ? raw.slice(0, -1) : raw)
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1)
      continue
    }
    pending = ''
    const trimmed = line.replace(/^[ \t\n\v\f\r]+/, '')
    if (trimmed.startsWith(':')) {
      const m = /^:(\S*)\s?(.*)$/s.exec(trimmed)!
      out.push({ label: m[1]!, command: m[2]! })
    } else {
      out.push({ command: line })
    }
  }
  return out
}

export function runScript (script: string, o: SimOptions = {}): SimResult {
  if (!/^#!ipxe\s/.test(script)) throw new Error('not an iPXE script: no #!ipxe signature')
  const lines = scriptLines(script)
  const settings = new Map<string, { type: 'string' | 'int32'; value: string }>()
  for (const [k, v] of Object.entries({ 'netX/mac': '52:54:00:12:34:56', ...o.settings })) settings.set(k, { type: 'string', value: v })
  const get = (name: string): string => settings.get(name.replace(/:[a-z0-9]+$/, ''))?.value ?? ''
  const downloads = new Map(Object.entries(o.downloads ?? {}).map(([k, v]) => [k, [...v]]))
  const dhcp = [...(o.dhcp ?? [])]
  let rebootFailures = o.rebootFailures ?? 0
  const events: SimEvent[] = []
  const sleeps: number[] = []
  const echoes: string[] = []
  const fetches: string[] = []
  const images: LoadedImage[] = []
  let kernel: LoadedImage | undefined
  let pc = 0
  let steps = 0
  const maxSteps = o.maxSteps ?? 10_000
  let jumped = false

  const fetch = (args: readonly string[]): { ok: boolean; image?: LoadedImage } => {
    let i = 0
    let name: string | undefined
    while (i < args.length && args[i]!.startsWith('-')) {
      if (args[i] === '--name' || args[i] === '-n') {
        name = args[i + 1]
        i += 2
      } else if (args[i] === '--') {
        i++
        break
      } else {
        return { ok: false }
      }
    }
    const url = args[i]
    if (url === undefined) return { ok: false }
    fetches.push(url)
    const outcome = downloads.get(url)?.shift() ?? true
    if (!outcome) return { ok: false }
    const image = { name: name ?? url.slice(url.lastIndexOf('/') + 1), url, cmdline: args.slice(i + 1).join(' ') }
    return { ok: true, image }
  }

  const exec = (argv: string[]): number => {
    const [cmd, ...args] = argv
    if (cmd === undefined) return 0
    events.push({ cmd, args })
    if (++steps > maxSteps) throw new Stop({ kind: 'step-limit' })
    switch (cmd) {
      case 'echo':
        echoes.push(args.join(' '))
        return 0
      case 'set': {
        const [nameType, ...value] = args
        if (nameType === undefined) return EFAIL
        const [name, type] = nameType.split(':') as [string, string | undefined]
        if (type !== undefined && type !== 'int32' && type !== 'string') return EFAIL
        if (type === 'int32' && !/^-?\d+$/.test(value.join(' '))) return EFAIL
        settings.set(name, { type: type === 'int32' ? 'int32' : 'string', value: value.join(' ') })
        return 0
      }
      case 'inc': {
        const name = args[0]
        if (name === undefined) return EFAIL
        const cur = settings.get(name)
        if (cur !== undefined && cur.type !== 'int32') return EFAIL
        settings.set(name, { type: 'int32', value: String(Number(cur?.value ?? '0') + Number(args[1] ?? '1')) })
        return 0
      }
      case 'iseq':
        if (args.length !== 2) return EFAIL
        return args[0] === args[1] ? 0 : 34
      case 'isset':
        return args.length === 1 && args[0] !== '' ? 0 : 2
      case 'sleep': {
        if (args.length !== 1 || !/^\d+$/.test(args[0]!)) return EFAIL
        sleeps.push(Number(args[0]))
        return 0
      }
      case 'goto': {
        const label = args[0]
        const target = lines.findIndex((l) => l.label !== undefined && l.label === label)
        if (label === undefined || target < 0) return EFAIL
        pc = target
        jumped = true
        return 0
      }
      case 'kernel': {
        const r = fetch(args)
        if (!r.ok) return EFAIL
        images.push(r.image!)
        kernel = r.image
        return 0
      }
      case 'initrd': {
        const r = fetch(args)
        if (!r.ok) return EFAIL
        images.push(r.image!)
        return 0
      }
      case 'chain': {
        const r = fetch(args)
        if (!r.ok) return EFAIL
        throw new Stop({ kind: 'boot', kernel: r.image!, initrds: [] })
      }
      case 'dhcp':
        return (dhcp.shift() ?? true) ? 0 : EFAIL
      case 'boot':
        if (kernel === undefined || o.bootFails === true) return EFAIL
        throw new Stop({ kind: 'boot', kernel, initrds: images.filter((i) => i !== kernel) })
      case 'reboot':
        if (rebootFailures > 0) {
          rebootFailures--
          return EFAIL
        }
        throw new Stop({ kind: 'reboot' })
      default:
        return ENOEXEC
    }
  }

  /** system(): one line, with ||, && and ; between commands; goto ends the line. */
  const system = (line: string): number => {
    const tokens = splitCommand(line)
    let rc = 0
    let process = true
    let i = 0
    for (;;) {
      let j = i
      let next: ((rc: number) => boolean) | undefined
      for (; j < tokens.length; j++) {
        const t = tokens[j]!
        if (t.startsWith('#')) { next = undefined; break }
        if (t === '||') { next = (r) => r !== 0; break }
        if (t === '&&') { next = (r) => r === 0; break }
        if (t === ';') { next = () => true; break }
      }
      const stopAtComment = j < tokens.length && tokens[j]!.startsWith('#')
      if (process) {
        rc = exec(tokens.slice(i, j).map((t) => expandSettings(t, get)))
        if (jumped) break
      }
      if (stopAtComment || next === undefined || j >= tokens.length) break
      process = next(rc)
      i = j + 1
    }
    return rc
  }

  try {
    while (pc < lines.length) {
      const lineNo = pc
      const text = lines[pc]!.command
      pc++
      jumped = false
      const rc = system(text)
      if (rc !== 0) throw new Stop({ kind: 'script-error', line: lineNo + 1, text, rc })
    }
    return { end: { kind: 'end-of-script' }, events, sleeps, echoes, fetches }
  } catch (e) {
    if (e instanceof Stop) return { end: e.end, events, sleeps, echoes, fetches }
    throw e
  }
}
