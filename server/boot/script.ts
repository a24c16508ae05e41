/**
 * iPXE scripts from typed data: the templates in ipxe/*.ipxe.tpl, filled with
 * values checked by ipxe-value.ts. Loading reads the four files once and
 * renders each with sample data, so a broken template stops start-up; rendering
 * is pure.
 *
 * Every rendered script is also compared with the same template rendered from
 * neutral values: the two must have the same lines, the same commands, the same
 * `||` / `&&` / `;` separators, comments and `${…}` expansions. Whatever a value
 * holds, it cannot add or remove a command: if the value rules ever missed a
 * case, rendering fails instead of serving the script.
 */
import { readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { NetbootError, isNetbootError } from '../errors.js'
import {
  ipxeCmdline, ipxeInt, ipxeLabel, ipxeName, ipxeText, ipxeUrl, ipxeUrlWithMac, isIpxeSafe,
  MAX_CMDLINE_BYTES,
} from './ipxe-value.js'
import { parseTemplate, renderTemplate, type Template, type TemplateContext } from './template.js'

export const TEMPLATE_NAMES = ['boot', 'discover', 'reboot', 'autoexec'] as const
export type TemplateName = (typeof TEMPLATE_NAMES)[number]

/** How hard iPXE tries each download before it gives up and reboots. */
export interface RetryPolicy {
  /** Downloads per file (kernel, each initrd, the chained script): 1–100. */
  readonly attempts: number
  /** Seconds between attempts, before jitter: 0–3600. */
  readonly delaySeconds: number
  /**
   * Up to this many seconds added to delaySeconds, fixed per machine (a hash of
   * its node name or MAC), so that a rack that failed together does not retry
   * in step: 0–600.
   */
  readonly jitterSeconds: number
  /** Seconds the failure message stays on the console before the reboot: 0–3600. */
  readonly rebootDelaySeconds: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, delaySeconds: 5, jitterSeconds: 5, rebootDelaySeconds: 10 }

/** A file iPXE downloads and registers under `name`. */
export interface BootFile {
  readonly url: string
  /** iPXE image name; for an initrd also the `initrd=` argument. */
  readonly name: string
}

export interface KernelBoot {
  /** Kernel URL. */
  readonly kernel: string
  /** Initrds in load order (0–8); the kernel concatenates them. */
  readonly initrds: readonly BootFile[]
  /** Composed kernel command line (cmdline.ts composeCmdline), without `initrd=`. */
  readonly cmdline: string
  /**
   * URL of the image's unified kernel image, if it has one: iPXE on UEFI boots it
   * with `cmdline` (no initrd= arguments: the initrd is inside), iPXE on BIOS boots
   * kernel + initrds (docs/uki.md).
   */
  readonly uki?: string
}

export interface BootScriptInput extends KernelBoot {
  /** Node name, shown on the console. */
  readonly node: string
  /** Image reference shown on the console, e.g. `compute@sha256:…` (shortened is fine). */
  readonly image: string
  readonly retry?: RetryPolicy
}

export interface DiscoverScriptInput extends KernelBoot {
  /** The MAC that asked, canonical (`ec:e7:a7:05:a1:fc`). */
  readonly mac: string
  readonly image: string
  readonly retry?: RetryPolicy
}

export interface RebootScriptInput {
  /** One line for the console, e.g. `ec:e7:a7:05:a1:fc is not enrolled`. */
  readonly reason: string
  /** Seconds before rebooting (and between reboot attempts); default 30. */
  readonly delaySeconds?: number
}

export interface AutoexecScriptInput {
  /**
   * The HTTP boot-script URL with `{mac}` where the MAC goes, once, e.g.
   * `http://172.16.0.254:8080/boot/{mac}.ipxe`. iPXE fills in the MAC of the
   * interface that got the lease (`${netX/mac}`, colon-separated lower case).
   */
  readonly scriptUrl: string
  readonly retry?: RetryPolicy
}

const KERNEL_IMAGE_NAME = 'vmlinuz'
/** iPXE image name of the UKI; iPXE puts it first in the command line it passes (efi_image_cmdline). */
export const UKI_IMAGE_NAME = 'uki.efi'
const MAX_INITRDS = 8
const DEFAULT_REBOOT_DELAY = 30
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/

export class IpxeScripts {
  private constructor (private readonly templates: Readonly<Record<TemplateName, Template>>) {
    try {
      this.boot(SAMPLE.boot)
      this.discover(SAMPLE.discover)
      this.reboot(SAMPLE.reboot)
      this.autoexec(SAMPLE.autoexec)
    } catch (e) {
      if (!isNetbootError(e) || e.code === 'BOOT_TEMPLATE_INVALID') throw e
      throw new NetbootError('BOOT_TEMPLATE_INVALID', `a template does not render from sample data: ${e.message}`, e.details)
    }
  }

  /** Parses the four templates from memory; throws BOOT_TEMPLATE_INVALID. */
  static fromSources (sources: Readonly<Record<TemplateName, string>>): IpxeScripts {
    const t = {} as Record<TemplateName, Template>
    for (const name of TEMPLATE_NAMES) t[name] = parseTemplate(`${name}.ipxe.tpl`, sources[name])
    return new IpxeScripts(t)
  }

  /** Reads `<dir>/<name>.ipxe.tpl` for each template; dir defaults to the project's ipxe/. */
  static async load (dir: string = defaultTemplateDir()): Promise<IpxeScripts> {
    const sources = {} as Record<TemplateName, string>
    for (const name of TEMPLATE_NAMES) {
      const file = `${dir.replace(/\/+$/, '')}/${name}.ipxe.tpl`
      try {
        sources[name] = await readFile(file, 'utf8')
      } catch (err) {
        throw new NetbootError('BOOT_TEMPLATE_INVALID', `cannot read ${file}: ${(err as Error).message}`, [{ where: file, message: 'unreadable' }])
      }
    }
    return IpxeScripts.fromSources(sources)
  }

  boot (input: BootScriptInput): string {
    const retry = retryFields(input.retry ?? DEFAULT_RETRY_POLICY, input.node)
    return this.render('boot', {
      node: ipxeLabel(input.node, 'node'),
      image: ipxeLabel(input.image, 'image'),
      ...kernelFields(input),
      ...retry,
    })
  }

  discover (input: DiscoverScriptInput): string {
    if (!MAC.test(input.mac)) throw new NetbootError('BOOT_VALUE_INVALID', `mac: ${JSON.stringify(input.mac)} is not a canonical MAC`, [{ where: 'mac', message: 'not a canonical MAC' }])
    return this.render('discover', {
      mac: ipxeLabel(input.mac, 'mac'),
      image: ipxeLabel(input.image, 'image'),
      ...kernelFields(input),
      ...retryFields(input.retry ?? DEFAULT_RETRY_POLICY, input.mac),
    })
  }

  reboot (input: RebootScriptInput): string {
    return this.render('reboot', {
      reason: ipxeText(input.reason, 'reason'),
      delay: ipxeInt(input.delaySeconds ?? DEFAULT_REBOOT_DELAY, 'delaySeconds', 0, 3600),
    })
  }

  autoexec (input: AutoexecScriptInput): string {
    const retry = retryFields(input.retry ?? DEFAULT_RETRY_POLICY, input.scriptUrl)
    return this.render('autoexec', { scriptUrl: ipxeUrlWithMac(input.scriptUrl, 'scriptUrl'), ...retry })
  }

  private render (name: TemplateName, ctx: TemplateContext): string {
    const tpl = this.templates[name]
    const out = renderTemplate(tpl, ctx)
    const reference = renderTemplate(tpl, neutral(ctx))
    const diff = shapeDifference(out, reference)
    if (diff !== undefined) throw new NetbootError('BOOT_VALUE_INVALID', `${name} script: a value changed the script's commands (${diff})`, [{ where: name, message: diff }])
    return out
  }
}

function kernelFields (input: KernelBoot): TemplateContext {
  if (input.initrds.length > MAX_INITRDS) throw new NetbootError('BOOT_VALUE_INVALID', `at most ${MAX_INITRDS} initrds`, [{ where: 'initrds', message: 'too many' }])
  const names = new Set<string>([KERNEL_IMAGE_NAME])
  const initrds = input.initrds.map((f, i): TemplateContext => {
    const name = ipxeName(f.name, `initrds[${i}].name`)
    if (names.has(f.name)) throw new NetbootError('BOOT_VALUE_INVALID', `initrds[${i}].name: ${f.name} is already used by another image`, [{ where: `initrds[${i}].name`, message: 'duplicate image name' }])
    names.add(f.name)
    return { index: ipxeInt(i, 'index', 0, MAX_INITRDS), name, url: ipxeUrl(f.url, `initrds[${i}].url`) }
  })
  const args = [...input.initrds.map((f) => `initrd=${f.name}`), ...(input.cmdline === '' ? [] : [input.cmdline])].join(' ')
  if (args.length > MAX_CMDLINE_BYTES) throw new NetbootError('BOOT_VALUE_INVALID', `kernel command line is ${args.length} bytes; the kernel keeps at most ${MAX_CMDLINE_BYTES}`, [{ where: 'cmdline', message: 'too long' }])
  ipxeCmdline(input.cmdline, 'cmdline')
  const uki: TemplateContext[] = input.uki === undefined
    ? []
    : [{ ukiName: ipxeName(UKI_IMAGE_NAME, 'uki'), ukiUrl: ipxeUrl(input.uki, 'uki'), ukiArgs: ipxeCmdline(input.cmdline, 'cmdline') }]
  return { kernelUrl: ipxeUrl(input.kernel, 'kernel'), kernelArgs: ipxeCmdline(args, 'cmdline'), initrds, uki }
}

function retryFields (p: RetryPolicy, seed: string): TemplateContext {
  const jitterMax = Number.isSafeInteger(p.jitterSeconds) ? p.jitterSeconds : -1
  ipxeInt(jitterMax, 'retry.jitterSeconds', 0, 600)
  const delay = p.delaySeconds + (jitterMax === 0 ? 0 : fnv1a(seed) % (jitterMax + 1))
  ipxeInt(p.delaySeconds, 'retry.delaySeconds', 0, 3600)
  return {
    attempts: ipxeInt(p.attempts, 'retry.attempts', 1, 100),
    retryDelay: ipxeInt(delay, 'retry.delaySeconds', 0, 4200),
    rebootDelay: ipxeInt(p.rebootDelaySeconds, 'retry.rebootDelaySeconds', 0, 3600),
  }
}

/** 32-bit FNV-1a: a stable per-machine spread for retry delays, not a security hash. */
function fnv1a (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** Neutral stand-ins: every checked value becomes a short plain word of its kind. */
function neutral (ctx: TemplateContext): TemplateContext {
  const out: Record<string, TemplateContext[string]> = {}
  for (const [k, v] of Object.entries(ctx)) {
    out[k] = Array.isArray(v) ? (v as readonly TemplateContext[]).map(neutral) : isIpxeSafe(v) ? NEUTRAL[v.kind] : v
  }
  return out
}

/**
 * The lines of a script as iPXE reads them (src/image/script.c process_script):
 * split at \n, a trailing \r dropped, a line ending in `\` joined to the next.
 */
export function logicalLines (script: string): string[] {
  const out: string[] = []
  let pending = ''
  for (const raw of script.split('\n')) {
    const line = pending + (raw.endsWith('\r') ? raw.slice(0, -1) : raw)
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1)
      continue
    }
    pending = ''
    out.push(line)
  }
  if (pending !== '') out.push(pending)
  return out
}

/**
 * Where two scripts differ in what iPXE acts on: logical line count, and per
 * line the label, command words, separators, comment starts and number of `${`
 * expansions.
 */
export function shapeDifference (a: string, b: string): string | undefined {
  const la = logicalLines(a)
  const lb = logicalLines(b)
  if (la.length !== lb.length) return `${la.length} lines instead of ${lb.length}`
  for (let i = 0; i < la.length; i++) {
    const sa = lineShape(la[i]!)
    const sb = lineShape(lb[i]!)
    if (sa !== sb) return `line ${i + 1}: ${sa} instead of ${sb}`
  }
  return undefined
}

function lineShape (line: string): string {
  const tokens = line.split(/[\t\n\v\f\r ]+/).filter((t) => t !== '')
  const shape: string[] = []
  if (tokens[0]?.startsWith(':') === true) {
    shape.push(':label')
    tokens.shift()
  }
  let command: { word: string; args: number; expansions: number } | undefined
  const flush = (): void => {
    if (command === undefined) return
    shape.push(`${command.word}${command.args > 0 ? ' …' : ''}${command.expansions > 0 ? ` \${}x${command.expansions}` : ''}`)
    command = undefined
  }
  for (const t of tokens) {
    if (t.startsWith('#')) break
    if (t === '||' || t === '&&' || t === ';') {
      flush()
      shape.push(t)
      continue
    }
    const expansions = t.split('${').length - 1
    if (command === undefined) command = { word: t, args: 0, expansions }
    else {
      command.args++
      command.expansions += expansions
    }
  }
  flush()
  if (tokens.some((t) => t.startsWith('#'))) shape.push('#')
  return shape.join(' ')
}

function defaultTemplateDir (): string {
  for (const rel of ['../../ipxe/', '../../../ipxe/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(`${dir}boot.ipxe.tpl`)) return dir
  }
  return fileURLToPath(new URL('../../ipxe/', import.meta.url))
}

const NEUTRAL = {
  name: ipxeName('n', 'neutral'),
  label: ipxeLabel('n', 'neutral'),
  url: ipxeUrl('http://n/', 'neutral'),
  'mac-url': ipxeUrlWithMac('http://n/{mac}', 'neutral'),
  int: ipxeInt(0, 'neutral', 0, 0),
  text: ipxeText('n', 'neutral'),
  cmdline: ipxeCmdline('n', 'neutral'),
} as const

const SAMPLE = {
  boot: { node: 'n', image: 'i', kernel: 'http://s/k', initrds: [{ url: 'http://s/i', name: 'initrd.img' }], cmdline: 'ro', uki: 'http://s/u' },
  discover: { mac: '00:00:00:00:00:00', image: 'i', kernel: 'http://s/k', initrds: [{ url: 'http://s/i', name: 'initrd.img' }], cmdline: 'ro', uki: 'http://s/u' },
  reboot: { reason: 'r' },
  autoexec: { scriptUrl: 'http://s/boot/{mac}.ipxe' },
} as const
