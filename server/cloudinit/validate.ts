/**
 * Validation by the real cloud-init, not a copy of its schema: what the node's
 * cloud-init would refuse is refused here with cloud-init's own words.
 *
 * - cloud-config: `cloud-init schema -c FILE` on a `#cloud-config` file. Exit 0 is
 *   valid (its "schema deprecations" become warnings); otherwise the
 *   "Cloud config schema errors: PATH: MESSAGE, PATH: MESSAGE" line is split into one
 *   message per problem. cloud-init 22.4 accepts unknown top-level keys.
 * - network-config: `cloud-init schema -t network-config -c FILE` where the installed
 *   cloud-init has it (23.1 and later). Debian 12's 22.4 has no network-config schema,
 *   so there the configuration goes through cloud-init's own parser and renderer,
 *   `cloud-init devel net-convert -k yaml -O netplan -D debian`, into a scratch
 *   directory: that catches what the node's cloud-init would fail on (an unknown v1
 *   entry type, a missing or wrong version), not every schema rule.
 *
 * One cloud-init process runs at a time, each under a timeout, on a private temporary
 * directory removed afterwards. Nothing is logged; messages carry cloud-init's
 * message text only (with the scratch file's path replaced), never the document.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetbootError } from '../errors.js'
import { isJsonMap, type JsonMap } from './data.js'
import { CLOUD_CONFIG_HEADER } from './render.js'
import { toYaml } from './yaml.js'

export type Validation =
  | { readonly ok: true; readonly warnings: string[] }
  | { readonly ok: false; readonly messages: string[] }

export interface ValidateOptions {
  /** The cloud-init executable. Default `cloud-init` on PATH. */
  readonly command?: string
  /** Per cloud-init run. Default 30 s. */
  readonly timeoutMs?: number
}

const DEFAULT_TIMEOUT_MS = 30_000
const MAX_MESSAGE = 1000

interface Run { readonly code: number; readonly stdout: string; readonly stderr: string }

let queue: Promise<unknown> = Promise.resolve()

/** Runs `f` after every earlier call has settled: one cloud-init at a time. */
function serial<T> (f: () => Promise<T>): Promise<T> {
  const p = queue.then(f, f)
  queue = p.catch(() => undefined)
  return p
}

function run (command: string, args: readonly string[], timeoutMs: number, home: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, args, {
      timeout: timeoutMs,
      maxBuffer: 4 * 1024 * 1024,
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: home },
    }, (err, stdout, stderr) => {
      if (err === null) { resolve({ code: 0, stdout, stderr }); return }
      const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string }
      if (e.code === 'ENOENT') { reject(new NetbootError('INTERNAL', `${command} is not installed (Debian: apt-get install cloud-init)`)); return }
      if (e.killed === true || e.signal !== undefined && e.signal !== null) {
        reject(new NetbootError('INTERNAL', `${command} ${args[0] ?? ''} did not finish within ${timeoutMs} ms`)); return
      }
      resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr })
    })
  })
}

async function withScratch<T> (f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'netboot-cloudinit-'))
  try {
    return await f(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Whether the cloud-init executable runs. */
export async function cloudInitAvailable (options: ValidateOptions = {}): Promise<boolean> {
  return (await cloudInitVersion(options)) !== undefined
}

/** `cloud-init --version`, e.g. `22.4.2`; undefined when it does not run. */
export async function cloudInitVersion (options: ValidateOptions = {}): Promise<string | undefined> {
  const command = options.command ?? 'cloud-init'
  try {
    const r = await serial(() => run(command, ['--version'], options.timeoutMs ?? DEFAULT_TIMEOUT_MS, tmpdir()))
    if (r.code !== 0) return undefined
    return /(\d+\.\d+(\.\d+)?)/.exec(r.stdout + r.stderr)?.[1]
  } catch {
    return undefined
  }
}

const networkSchemaSupport = new Map<string, Promise<boolean>>()

/** Whether `cloud-init schema` takes `-t network-config` (cloud-init 23.1+). */
function hasNetworkSchema (command: string, timeoutMs: number): Promise<boolean> {
  let p = networkSchemaSupport.get(command)
  if (p === undefined) {
    p = run(command, ['schema', '--help'], timeoutMs, tmpdir()).then((r) => /network-config/.test(r.stdout))
    p.catch(() => networkSchemaSupport.delete(command))
    networkSchemaSupport.set(command, p)
  }
  return p
}

export async function validateCloudConfig (doc: object, kind: 'cloud-config' | 'network-config', options: ValidateOptions = {}): Promise<Validation> {
  if (!isJsonMap(doc as JsonMap)) return { ok: false, messages: [`${kind} must be a mapping`] }
  const command = options.command ?? 'cloud-init'
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  return serial(() => withScratch(async (dir) => {
    const file = join(dir, kind)
    if (kind === 'cloud-config') {
      await writeFile(file, CLOUD_CONFIG_HEADER + toYaml(doc as JsonMap), { mode: 0o600 })
      return schemaResult(await run(command, ['schema', '-c', file], timeoutMs, dir), file, doc as JsonMap)
    }
    const net = doc as JsonMap
    const inner = isJsonMap(net.network) ? net.network : net
    if (inner.version !== 1 && inner.version !== 2) return { ok: false, messages: ['version: expected 1 or 2'] }
    if (await hasNetworkSchema(command, timeoutMs)) {
      await writeFile(file, toYaml({ network: inner }), { mode: 0o600 })
      return schemaResult(await run(command, ['schema', '-t', 'network-config', '-c', file], timeoutMs, dir), file, inner)
    }
    await writeFile(file, toYaml(inner), { mode: 0o600 })
    const r = await run(command, ['devel', 'net-convert', '-p', file, '-k', 'yaml', '-d', join(dir, 'out'), '-D', 'debian', '-O', 'netplan'], timeoutMs, dir)
    if (r.code === 0) return { ok: true, warnings: [] }
    return { ok: false, messages: [clip(scrub(exceptionLine(r.stderr), file))] }
  }))
}

function schemaResult (r: Run, file: string, doc: JsonMap): Validation {
  const keys = Object.keys(doc)
  const warnings = listed(r.stdout, 'Cloud config schema deprecations: ', keys, file)
  if (r.code === 0) return { ok: true, warnings }
  const errors = listed(r.stderr, 'Cloud config schema errors: ', keys, file)
  if (errors.length > 0) return { ok: false, messages: errors }
  const text = r.stderr.replace(/^Error:\s*/, '').trim()
  return { ok: false, messages: [clip(scrub(text.includes('Traceback') ? exceptionLine(text) : (text.split('\n')[0] ?? ''), file) || `cloud-init schema exited with status ${r.code}`)] }
}

/**
 * The problems after `prefix` on its line, one per `PATH: MESSAGE`. cloud-init joins
 * them with ", ", which messages contain too, so a split is made only where a path
 * into the document (one of its top-level keys, or cloud-init's `format-lN.cN`) follows.
 */
function listed (output: string, prefix: string, topKeys: readonly string[], file: string): string[] {
  const line = output.split('\n').find((l) => l.startsWith(prefix))
  if (line === undefined) return []
  const body = line.slice(prefix.length).trim()
  if (body === '') return []
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const heads = [...topKeys.map(esc), 'format-l\\d+\\.c\\d+'].join('|')
  const split = new RegExp(`, (?=(?:${heads})(?:\\.[^\\s:,]+)*: )`)
  return body.split(split).map((m) => clip(scrub(m.trim(), file))).filter((m) => m !== '')
}

/** The last "SomeError: message" line of a Python traceback, without the exception name. */
function exceptionLine (stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trimEnd())
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^([A-Za-z_][\w.]*(Error|Exception)): (.*)$/.exec(lines[i] as string)
    if (m !== null) return m[3] as string
  }
  return lines.filter((l) => l !== '').at(-1) ?? 'cloud-init failed'
}

function scrub (message: string, file: string): string {
  return message.replaceAll(file, 'the document')
}

function clip (message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message
}
