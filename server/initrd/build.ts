/**
 * The netboot initrd: Debian's dracut (059, package dracut-core + dracut-network)
 * with netboot's own module (dracut/90netboot), which installs node, the agent
 * bundle (dist/agent/netboot-agent.mjs, `npm run bundle:agent`), the TPM addon
 * (agent/tpm/build/Release/netboot_tpm.node, `npm run build:agent`), the tpm2-tss
 * libraries and TCTIs, the TPM/squashfs/overlay/loop/NIC kernel modules, and two
 * hooks: a cmdline hook claiming the root when netboot.server= is given, and a
 * pre-mount hook running the agent (dracut/README.md).
 *
 * Stable API (the image builder, server/images/build.ts, calls it):
 *
 *   buildInitrd({ kver, kmoddir?, output, kernel?, extraDrivers?, compress?, log? })
 *     → { path, size, sha256, kver, compress, ms }
 *
 *   kver     the kernel version (the modules' directory name, e.g. 6.1.0-28-amd64)
 *   kmoddir  the modules of that kernel (default /lib/modules/<kver>): a directory
 *            with modules.dep, e.g. a root's lib/modules/<kver>, or the e2e cache's
 *            <cache>/modules/lib/modules/<kver> made by scripts/e2e-assets.sh
 *   output   the file to write (through <output>.tmp-*, renamed; mode 0644)
 *   kernel   optional: the kernel image the initrd is for; its version string (x86
 *            boot header) must begin with kver, checked before the build
 *   log      progress, one line each (dracut's own lines included)
 *
 * How dracut is run: `dracut --no-hostonly -m 'base network-legacy netboot'` (shell
 * init, no systemd: simpler and faster), with netboot's module added without touching
 * the host's /usr/lib/dracut: a temporary `dracutbasedir` whose entries are symbolic
 * links to the host's (dracut-init.sh, dracut-install, …) and whose modules.d has the
 * host's modules plus dracut/90netboot. The host's /etc/dracut.conf{,.d} are ignored
 * (`--conf <ours> --confdir <empty>`); our conf file carries the module's settings
 * (netboot_agent_bundle, netboot_tpm_addon, netboot_ca_bundle, netboot_node).
 *
 * Errors: IMAGE_BUILD_INPUT (a missing input, named), IMAGE_BUILD_FAILED (dracut
 * failed: the message carries its error lines, the details its last lines).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, statSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, open, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { basename, delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NetbootError } from '../errors.js'

export type InitrdCompression = 'zstd' | 'gzip'

export interface BuildInitrdOptions {
  /** Kernel version: the name of its modules directory. */
  readonly kver: string
  /** The kernel's modules (with modules.dep); default /lib/modules/<kver>. */
  readonly kmoddir?: string
  /** The initrd to write. */
  readonly output: string
  /** The kernel image the initrd is for: its embedded version must start with kver. */
  readonly kernel?: string
  /** More kernel modules to include (dracut --add-drivers). */
  readonly extraDrivers?: readonly string[]
  /** Default zstd, level 3 (Linux ≥ 5.9 unpacks it; Debian's kernels have CONFIG_RD_ZSTD); gzip: dracut's pigz/gzip -9. */
  readonly compress?: InitrdCompression
  /** Progress lines. */
  readonly log?: (line: string) => void
  /** Defaults: the project's dist/agent/netboot-agent.mjs, agent/tpm/build/Release/netboot_tpm.node. */
  readonly agentBundle?: string
  readonly tpmAddon?: string
  /** PEM bundle the agent trusts besides Node's roots; default /etc/ssl/certs/ca-certificates.crt. */
  readonly caBundle?: string
  /** The node binary put into the initrd; default the one on PATH. */
  readonly node?: string
  /** The dracut program; default `dracut` on PATH (or /usr/bin/dracut). */
  readonly dracut?: string
  /** dracut is killed after this long (default 15 min). */
  readonly timeoutMs?: number
}

export interface BuiltInitrd {
  readonly path: string
  readonly size: number
  readonly sha256: string
  readonly kver: string
  readonly compress: InitrdCompression
  /** Wall time of the dracut run. */
  readonly ms: number
}

/** The dracut modules asked for; `netboot` depends on network-legacy and network. */
export const DRACUT_MODULES = ['base', 'network-legacy', 'netboot'] as const

/** Where the project's dracut module lives, relative to the project root. */
export const MODULE_DIR = join('dracut', '90netboot')

const input = (message: string, where: string): NetbootError => new NetbootError('IMAGE_BUILD_INPUT', message, [{ where, message }])

// ---- pure parts ------------------------------------------------------------------

/** Kernel versions are path components and dracut arguments: keep them plain. */
export const KVER = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/

/**
 * The version string of an x86 bzImage, from its real-mode header (Linux x86 boot
 * protocol ≥ 2.00, Documentation/arch/x86/boot.rst): boot_flag 0xAA55 at 0x1FE,
 * "HdrS" at 0x202, and `kernel_version` at 0x20E, a pointer to a NUL-terminated
 * string at (kernel_version + 0x200). undefined when `head` is no such image or the
 * pointer is 0 or points outside `head`.
 */
export function bzImageVersion (head: Uint8Array): string | undefined {
  if (head.length < 0x210) return undefined
  if (head[0x1fe] !== 0x55 || head[0x1ff] !== 0xaa) return undefined
  if (head[0x202] !== 0x48 || head[0x203] !== 0x64 || head[0x204] !== 0x72 || head[0x205] !== 0x53) return undefined
  const ptr = head[0x20e]! | (head[0x20f]! << 8)
  if (ptr === 0) return undefined
  const start = ptr + 0x200
  if (start >= head.length) return undefined
  let end = start
  while (end < head.length && end - start < 256 && head[end] !== 0) end++
  if (end >= head.length || head[end] !== 0) return undefined
  return Buffer.from(head.subarray(start, end)).toString('latin1')
}

/** The zstd command dracut pipes the cpio through (a string starting with `zstd` passes its zstd checks). */
export const ZSTD = 'zstd -q -T0 -3'

/** dracut's command line: pure, so a test can read it. */
export function dracutArgs (o: { kver: string; kmoddir: string; conf: string; confdir: string; tmpdir: string; compress: InitrdCompression; extraDrivers: readonly string[]; output: string }): string[] {
  return [
    '--force', '--no-hostonly', '--no-hostonly-cmdline', '--no-early-microcode', '--reproducible',
    '--kver', o.kver, '--kmoddir', o.kmoddir,
    '--conf', o.conf, '--confdir', o.confdir, '--tmpdir', o.tmpdir,
    '-m', DRACUT_MODULES.join(' '),
    ...(o.extraDrivers.length > 0 ? ['--add-drivers', o.extraDrivers.join(' ')] : []),
    // zstd level 3 (dracut's --zstd means -15): ~10x faster for node's 99 MB, ~13% larger.
    ...(o.compress === 'zstd' ? ['--compress', ZSTD] : ['--gzip']),
    o.output, o.kver,
  ]
}

/** The dracut.conf(5) settings netboot's module reads (bash assignments, values quoted). */
export function moduleConf (s: { agentBundle: string; tpmAddon: string; caBundle?: string; node: string }): string {
  const q = (v: string): string => `'${v.replace(/'/g, "'\\''")}'`
  return [
    '# written by netboot initrd build (server/initrd/build.ts) for this run only',
    `netboot_agent_bundle=${q(s.agentBundle)}`,
    `netboot_tpm_addon=${q(s.tpmAddon)}`,
    ...(s.caBundle !== undefined ? [`netboot_ca_bundle=${q(s.caBundle)}`] : []),
    `netboot_node=${q(s.node)}`,
    '',
  ].join('\n')
}

/** dracut lines worth surfacing as an error: its own error/warning forms. */
export function isDracutError (line: string): boolean {
  return /\b(ERROR|FATAL|FAILED|[Ff]ailed|cannot|can't|not found|No such file)\b/.test(line)
}

// ---- I/O -------------------------------------------------------------------------

/** The project root: the directory holding dracut/90netboot (from src or dist). */
export function projectRoot (): string {
  const here = dirname(fileURLToPath(import.meta.url))
  for (const up of [join(here, '..', '..'), join(here, '..', '..', '..')]) {
    if (existsSync(join(up, MODULE_DIR, 'module-setup.sh'))) return resolve(up)
  }
  throw new NetbootError('IMAGE_BUILD_INPUT', `netboot's dracut module (${MODULE_DIR}) is not found above ${here}`)
}

function onPath (cmd: string, extra: readonly string[] = []): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined
  for (const d of [...(process.env.PATH ?? '').split(delimiter), ...extra]) {
    if (d !== '' && existsSync(join(d, cmd))) return join(d, cmd)
  }
  return undefined
}

async function readHead (path: string, n: number): Promise<Buffer> {
  const f = await open(path, 'r')
  try {
    const b = Buffer.alloc(n)
    const { bytesRead } = await f.read(b, 0, n, 0)
    return b.subarray(0, bytesRead)
  } finally {
    await f.close()
  }
}

async function sha256File (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** A dracutbasedir that is the host's plus netboot's module, made of symbolic links. */
async function overlayBasedir (hostBase: string, moduleDir: string, into: string): Promise<void> {
  await mkdir(join(into, 'modules.d'), { recursive: true })
  for (const e of await readdir(hostBase)) {
    if (e === 'modules.d') continue
    // --reproducible: dracut gives every file newer than $dracutbasedir/dracut-functions.sh
    // that file's mtime (`find -newer`, which reads a symbolic link's own time): a copy
    // with the host file's time, so files made during the build get a fixed time.
    if (e === 'dracut-functions.sh') await cp(join(hostBase, e), join(into, e), { preserveTimestamps: true, dereference: true })
    else await symlink(join(hostBase, e), join(into, e))
  }
  for (const m of await readdir(join(hostBase, 'modules.d'))) {
    // A host that has netboot's module installed already: ours wins.
    if (/^\d\dnetboot$/.test(m)) continue
    await symlink(join(hostBase, 'modules.d', m), join(into, 'modules.d', m))
  }
  await symlink(moduleDir, join(into, 'modules.d', basename(moduleDir)))
}

/** Builds a netboot initrd with dracut; see the header comment for the contract. */
export async function buildInitrd (opts: BuildInitrdOptions): Promise<BuiltInitrd> {
  const log = opts.log ?? (() => {})
  const { kver } = opts
  if (!KVER.test(kver)) throw input(`kernel version '${kver}' is not a plain version string`, '--kver')
  const kmoddir = resolve(opts.kmoddir ?? `/lib/modules/${kver}`)
  if (!existsSync(kmoddir)) throw input(`no kernel modules at ${kmoddir}${opts.kmoddir === undefined ? ' (give --kmoddir, e.g. <cache>/modules/lib/modules/<ver> from scripts/e2e-assets.sh)' : ''}`, '--kmoddir')
  // dracut refuses (and would misplace the modules in the image) unless the tree is <…>/lib/modules/<kver>.
  if (basename(kmoddir) !== kver || !/\/lib\/modules$/.test(dirname(kmoddir))) throw input(`${kmoddir} is not a <root>/lib/modules/${kver} directory (dracut places the modules by that path)`, '--kmoddir')
  if (!existsSync(join(kmoddir, 'modules.dep'))) throw input(`${kmoddir} has no modules.dep: run depmod -b <root> ${kver} first (a kernel .deb ships none)`, '--kmoddir')

  if (opts.kernel !== undefined) {
    if (!existsSync(opts.kernel) || !statSync(opts.kernel).isFile()) throw input(`kernel ${opts.kernel} is not a file`, '--kernel')
    const v = bzImageVersion(await readHead(opts.kernel, 64 * 1024))
    if (v === undefined) throw input(`${opts.kernel} is not an x86 kernel image with a version string`, '--kernel')
    if (v.split(' ')[0] !== kver) throw input(`${opts.kernel} is kernel ${v.split(' ')[0] ?? v}, not ${kver}: the initrd's modules would not load`, '--kernel')
  }
  for (const d of opts.extraDrivers ?? []) {
    if (!/^[A-Za-z0-9_-]+$/.test(d)) throw input(`driver name '${d}' is not a kernel module name`, '--add-drivers')
  }

  const root = projectRoot()
  const agentBundle = resolve(opts.agentBundle ?? join(root, 'dist', 'agent', 'netboot-agent.mjs'))
  const tpmAddon = resolve(opts.tpmAddon ?? join(root, 'agent', 'tpm', 'build', 'Release', 'netboot_tpm.node'))
  if (!existsSync(agentBundle)) throw input(`the agent bundle ${agentBundle} does not exist: run npm run bundle:agent`, agentBundle)
  if (!existsSync(tpmAddon)) throw input(`the TPM addon ${tpmAddon} does not exist: run npm run build:agent`, tpmAddon)
  if (opts.caBundle !== undefined && !existsSync(opts.caBundle)) throw input(`CA bundle ${opts.caBundle} does not exist`, opts.caBundle)
  const node = opts.node ?? onPath('node') ?? process.execPath
  const dracut = onPath(opts.dracut ?? 'dracut', ['/usr/bin', '/usr/sbin', '/sbin'])
  if (dracut === undefined) throw input(`${opts.dracut ?? 'dracut'} not found (Debian packages: dracut-core dracut-network)`, 'dracut')
  const hostBase = process.env.dracutbasedir ?? '/usr/lib/dracut'
  if (!existsSync(join(hostBase, 'modules.d', '35network-legacy'))) throw input(`dracut's network-legacy module is not in ${hostBase}/modules.d (Debian package: dracut-network)`, hostBase)
  const compress = opts.compress ?? 'zstd'
  if (compress === 'zstd' && onPath('zstd') === undefined) throw input('zstd not found (Debian package: zstd), or build with gzip', 'zstd')

  const output = resolve(opts.output)
  if (!existsSync(dirname(output))) throw input(`the output directory ${dirname(output)} does not exist`, '--output')
  const work = await mkdtemp(join(dirname(output), `.${basename(output)}.tmp-`))
  try {
    const base = join(work, 'dracut')
    await overlayBasedir(hostBase, join(root, MODULE_DIR), base)
    // Paths relative to the work directory (dracut's cwd): dracut stores its arguments
    // in the image (build-parameter.txt), and a random directory name there would make
    // two builds of the same inputs differ.
    await mkdir(join(work, 'conf.d'))
    await mkdir(join(work, 'tmp'))
    await writeFile(join(work, 'netboot-dracut.conf'), moduleConf({ agentBundle, tpmAddon, node, ...(opts.caBundle !== undefined ? { caBundle: resolve(opts.caBundle) } : {}) }))
    const tmpOut = join(work, 'initrd.img')
    const args = dracutArgs({ kver, kmoddir, conf: 'netboot-dracut.conf', confdir: 'conf.d', tmpdir: 'tmp', compress, extraDrivers: opts.extraDrivers ?? [], output: 'initrd.img' })
    log(`dracut ${kver} from ${kmoddir} (modules: ${DRACUT_MODULES.join(' ')}; ${compress})`)
    const t0 = Date.now()
    await runDracut(dracut, args, work, { ...process.env, dracutbasedir: base, LC_ALL: 'C' }, opts.timeoutMs ?? 15 * 60_000, log)
    const ms = Date.now() - t0
    if (!existsSync(tmpOut) || statSync(tmpOut).size === 0) throw new NetbootError('IMAGE_BUILD_FAILED', `dracut exited 0 but wrote no initrd at ${tmpOut}`)
    // dracut writes the image mode 0600; it is served over HTTP.
    await chmod(tmpOut, 0o644)
    await rename(tmpOut, output)
    const size = statSync(output).size
    const sha256 = await sha256File(output)
    log(`initrd ${output}: ${(size / 1048576).toFixed(1)} MiB in ${(ms / 1000).toFixed(1)} s, sha256:${sha256}`)
    return { path: output, size, sha256, kver, compress, ms }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Runs dracut, passing its lines to `log`; IMAGE_BUILD_FAILED with its error lines on failure. */
async function runDracut (dracut: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number, log: (line: string) => void): Promise<void> {
  const tail: string[] = []
  const errors: string[] = []
  await new Promise<void>((resolveRun, reject) => {
    const child = spawn(dracut, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    const take = (buf: { rest: string }) => (chunk: Buffer): void => {
      const lines = (buf.rest + chunk.toString('utf8')).split('\n')
      buf.rest = lines.pop() ?? ''
      for (const l of lines) line(l)
    }
    const line = (l: string): void => {
      const t = l.trimEnd()
      if (t === '') return
      tail.push(t)
      if (tail.length > 30) tail.shift()
      if (isDracutError(t) && errors.length < 10) errors.push(t)
      log(t)
    }
    const out = { rest: '' }
    const err = { rest: '' }
    child.stdout.on('data', take(out))
    child.stderr.on('data', take(err))
    child.on('error', (e) => { clearTimeout(timer); reject(new NetbootError('IMAGE_BUILD_FAILED', `cannot run ${dracut}: ${e.message}`)) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      line(out.rest)
      line(err.rest)
      if (code === 0) return resolveRun()
      const why = timedOut ? `timed out after ${Math.round(timeoutMs / 1000)} s` : signal !== null ? `was killed (${signal})` : `exited ${code ?? '?'}`
      const first = errors.length > 0 ? `: ${errors.join(' | ')}` : tail.length > 0 ? `: ${tail[tail.length - 1]!}` : ''
      reject(new NetbootError('IMAGE_BUILD_FAILED', `dracut ${why}${first}`, tail.map((m) => ({ where: 'dracut', message: m }))))
    })
  })
}
