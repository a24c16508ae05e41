/**
 * `netboot image build`: a root (directory or tarball) → the three files of an
 * image version: the root as a squashfs, its kernel, and a netboot initrd built for
 * that kernel from the root's own modules.
 *
 * Contracts:
 * - The root is never changed. A tarball is unpacked (GNU tar, which recognises
 *   gzip/xz/zstd by itself) into a scratch directory beside the output, removed after.
 * - Paths inside the root are resolved inside the root: an absolute symbolic link
 *   (Debian's /sbin/init → /lib/systemd/systemd, usrmerge's /lib → usr/lib) never
 *   reaches the build host's files.
 * - The kernel is ROOT/boot/vmlinuz-<kver> (a regular file with the Linux x86 boot
 *   header, Documentation/arch/x86/boot.rst); several kernels need `kver`.
 * - The squashfs is reproducible: same tree (contents, modes, owners, mtimes) → same
 *   bytes. mksquashfs is given fixed filesystem and root-inode times
 *   (SOURCE_DATE_EPOCH, else 0) and a fixed root inode (0755, 0:0); file times and
 *   xattrs (file capabilities) are kept. Owners are kept when the builder is root
 *   (a real OS root has files owned by system users); a non-root builder cannot have
 *   made them meaningful, so the image then says root owns everything (-all-root).
 * - The contents of proc/, sys/ and run/ are left out (mount points of pseudo file
 *   systems: a root copied from a live system must not carry them).
 */
import { spawn } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, readSync, renameSync, rmSync, statSync } from 'node:fs'
import { join, posix, resolve } from 'node:path'
import { NetbootError } from '../errors.js'

export type Compression = 'zstd' | 'xz' | 'gzip'
export const COMPRESSIONS: readonly Compression[] = ['zstd', 'xz', 'gzip']

/** Builds the netboot initrd for a kernel (dracut with netboot's module). */
export type InitrdBuilder = (o: { kver: string; kmoddir: string; kernel: string; output: string; log: (line: string) => void }) => Promise<void>

export interface BuildImageOptions {
  /** A root directory, or a tarball of one. */
  readonly root: string
  /** Where the outputs go (created if missing): rootfs.squashfs, vmlinuz, initrd.img. */
  readonly outputDir: string
  readonly compression?: Compression
  /** Which kernel when the root has several (or names the modules for --kernel). */
  readonly kver?: string
  /** A kernel from outside the root. */
  readonly kernel?: string
  /** A ready initrd: no initrd is built. */
  readonly initrd?: string
  /** Needed when `initrd` is not given. */
  readonly buildInitrd?: InitrdBuilder
  /** Progress and warnings, one line each. */
  readonly log?: (line: string) => void
  /** Seconds since 1970 for the filesystem and root-inode times (default SOURCE_DATE_EPOCH, else 0). */
  readonly epoch?: number
}

export interface BuiltImage {
  readonly rootfs: string
  readonly kernel: string
  readonly initrd: string
  /** The kernel version the initrd was built for (undefined when --kernel and --initrd came from outside and none was named). */
  readonly kver: string | undefined
  readonly rootfsBytes: number
  readonly warnings: readonly string[]
  /** Milliseconds per phase: unpack, squashfs, initrd. */
  readonly ms: Readonly<Record<string, number>>
}

const input = (message: string, where?: string): NetbootError =>
  new NetbootError('IMAGE_BUILD_INPUT', message, where !== undefined ? [{ where, message }] : [])

// ---- pure parts ------------------------------------------------------------------

/**
 * Whether the first bytes of a file are an x86 Linux kernel image: boot_flag 0xAA55 at
 * 0x1FE and the "HdrS" magic at 0x202 (Linux x86 boot protocol ≥ 2.00,
 * Documentation/arch/x86/boot.rst, "The real-mode kernel header").
 */
export function isX86Kernel (head: Uint8Array): boolean {
  if (head.length < 0x206) return false
  return head[0x1fe] === 0x55 && head[0x1ff] === 0xaa && head[0x202] === 0x48 && head[0x203] === 0x64 && head[0x204] === 0x72 && head[0x205] === 0x53
}

/** Kernel versions from the names in /boot: vmlinuz-<kver>, sorted; `.old`, `.bak`, `.dpkg-*` left out. */
export function kernelVersions (bootEntries: readonly string[]): string[] {
  return bootEntries
    .filter((n) => n.startsWith('vmlinuz-') && n.length > 'vmlinuz-'.length && !/\.(old|bak|dpkg-[a-z]+)$/.test(n))
    .map((n) => n.slice('vmlinuz-'.length))
    .sort()
}

/** The kernel to use: the only one, or the one `wanted` names. */
export function chooseKernel (versions: readonly string[], wanted: string | undefined, where: string): string {
  if (wanted !== undefined) {
    if (!versions.includes(wanted)) throw input(`no kernel ${wanted} in ${where} (found: ${versions.join(', ') || 'none'})`, where)
    return wanted
  }
  if (versions.length === 0) throw input(`no kernel in the root: ${where}/vmlinuz-* does not exist (install one in the root, or give --kernel and --initrd)`, where)
  if (versions.length > 1) throw input(`several kernels in ${where} (${versions.join(', ')}): choose one with --kver`, where)
  return versions[0]!
}

/** mksquashfs's arguments (squashfs-tools 4.5). */
export function mksquashfsArgs (src: string, out: string, o: { compression: Compression; epoch: number; allRoot: boolean }): string[] {
  return [
    src, out,
    '-noappend',
    '-comp', o.compression,
    '-mkfs-time', String(o.epoch),
    '-root-time', String(o.epoch), '-root-mode', '755', '-root-uid', '0', '-root-gid', '0',
    ...(o.allRoot ? ['-all-root'] : []),
    '-wildcards', '-e', 'proc/*', 'sys/*', 'run/*',
  ]
}

/** The last "done/total  N%" of mksquashfs's progress bar in `text`, or undefined. */
export function squashfsPercent (text: string): number | undefined {
  let last: number | undefined
  for (const m of text.matchAll(/\]\s+\d+\/\d+\s+(\d{1,3})%/g)) last = Number(m[1])
  return last
}

// ---- I/O ---------------------------------------------------------------------------

/**
 * `path` (absolute, as seen from inside the root) → the host path it names, following
 * symbolic links inside the root; undefined when something on the way is missing.
 */
export function resolveInRoot (root: string, path: string): string | undefined {
  let parts = path.split('/').filter((p) => p !== '' && p !== '.')
  const done: string[] = []
  for (let hops = 0; parts.length > 0;) {
    const name = parts.shift()!
    if (name === '..') { done.pop(); continue }
    const host = join(root, ...done, name)
    let st
    try { st = lstatSync(host) } catch { return undefined }
    if (!st.isSymbolicLink()) { done.push(name); continue }
    if (++hops > 40) return undefined // ELOOP, as the kernel counts
    const target = readlinkSync(host)
    if (posix.isAbsolute(target)) done.length = 0
    parts = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...parts]
  }
  return join(root, ...done)
}

function readHead (file: string, n: number): Buffer {
  const fd = openSync(file, 'r')
  try {
    const b = Buffer.alloc(n)
    const got = readSync(fd, b, 0, n, 0)
    return b.subarray(0, got)
  } finally { closeSync(fd) }
}

/** Runs a program; rejects with IMAGE_BUILD_FAILED and its last output lines. */
async function run (cmd: string, args: readonly string[], onOutput?: (text: string) => void): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let tail = ''
    const keep = (d: Buffer): void => {
      const s = d.toString()
      tail = (tail + s).slice(-4000)
      onOutput?.(s)
    }
    p.stdout.on('data', keep)
    p.stderr.on('data', keep)
    p.once('error', (e) => reject(new NetbootError('IMAGE_BUILD_FAILED', `${cmd} could not start (${(e as NodeJS.ErrnoException).code ?? e.message})${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `: install Debian package ${cmd === 'mksquashfs' ? 'squashfs-tools' : cmd}` : ''}`)))
    p.once('close', (code, signal) => {
      if (code === 0) { resolvePromise(); return }
      const lines = tail.replace(/\r/g, '\n').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('[')).slice(-8)
      reject(new NetbootError('IMAGE_BUILD_FAILED', `${cmd} failed (${signal ?? `exit ${String(code)}`})`, lines.map((message) => ({ where: cmd, message }))))
    })
  })
}

export async function buildImage (o: BuildImageOptions): Promise<BuiltImage> {
  const log = o.log ?? ((): void => {})
  const warnings: string[] = []
  const warn = (w: string): void => { warnings.push(w); log(`warning: ${w}`) }
  const ms: Record<string, number> = {}
  const compression = o.compression ?? 'zstd'
  if (!COMPRESSIONS.includes(compression)) throw input(`unknown compression '${String(compression)}' (${COMPRESSIONS.join(', ')})`, '--compression')
  const epoch = o.epoch ?? (process.env.SOURCE_DATE_EPOCH !== undefined && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH) ? Number(process.env.SOURCE_DATE_EPOCH) : 0)
  for (const [flag, f] of [['--kernel', o.kernel], ['--initrd', o.initrd]] as const) {
    if (f !== undefined && !(existsSync(f) && statSync(f).isFile())) throw input(`${f} is not a file`, flag)
  }

  let st
  try { st = statSync(o.root) } catch { throw input(`${o.root} does not exist`, '--root') }
  if (!st.isDirectory() && !st.isFile()) throw input(`${o.root} is neither a directory nor a tarball`, '--root')
  const outputDir = resolve(o.outputDir)
  mkdirSync(outputDir, { recursive: true })

  let scratch: string | undefined
  try {
    let root = resolve(o.root)
    if (st.isFile()) {
      const t0 = Date.now()
      scratch = mkdtempSync(join(outputDir, '.root-'))
      log(`unpacking ${o.root} (${mib(st.size)})`)
      const asRoot = process.getuid?.() === 0
      await run('tar', ['-x', '-f', root, '-C', scratch, '--numeric-owner', '--xattrs', '--xattrs-include=*', ...(asRoot ? ['--same-owner', '-p'] : ['--no-same-owner'])])
      root = scratch
      ms.unpack = Date.now() - t0
    }

    if (resolveInRoot(root, '/sbin/init') === undefined) {
      warn(`${o.root} has no /sbin/init (systemd-sysv, or busybox's init): the image will not boot into an operating system`)
    }

    // kernel
    const bootDir = resolveInRoot(root, '/boot')
    const bootWhere = `${o.root.replace(/\/+$/, '')}/boot`
    let kernel: string
    let kver: string | undefined = o.kver
    if (o.kernel !== undefined) {
      kernel = o.kernel
    } else {
      const entries = bootDir !== undefined && statSync(bootDir).isDirectory() ? readdirSync(bootDir) : []
      const versions = kernelVersions(entries).filter((v) => {
        const f = resolveInRoot(root, `/boot/vmlinuz-${v}`)
        return f !== undefined && statSync(f).isFile()
      })
      kver = chooseKernel(versions, o.kver, bootWhere)
      kernel = resolveInRoot(root, `/boot/vmlinuz-${kver}`)!
    }
    if (!isX86Kernel(readHead(kernel, 0x206))) {
      throw input(`${o.kernel ?? `${bootWhere}/vmlinuz-${kver!}`} is not an x86 Linux kernel image (no boot header: "HdrS" at 0x202)`, o.kernel !== undefined ? '--kernel' : bootWhere)
    }

    // initrd: checked before the (slow) squashfs, built after it
    let kmoddir: string | undefined
    if (o.initrd === undefined) {
      if (o.buildInitrd === undefined) throw input('this netboot cannot build initrds yet: give --initrd', '--initrd')
      if (kver === undefined) {
        const mods = resolveInRoot(root, '/lib/modules')
        const found = mods !== undefined && statSync(mods).isDirectory() ? readdirSync(mods).sort() : []
        kver = chooseKernel(found, undefined, `${o.root}/lib/modules`)
      }
      kmoddir = resolveInRoot(root, `/lib/modules/${kver}`)
      if (kmoddir === undefined || !statSync(kmoddir).isDirectory()) {
        throw input(`no modules for kernel ${kver}: ${o.root}/lib/modules/${kver} does not exist (the initrd is built from them; or give --initrd)`, `${o.root}/lib/modules`)
      }
    }

    // squashfs
    const rootfs = join(outputDir, 'rootfs.squashfs')
    const allRoot = process.getuid?.() !== 0
    log(`mksquashfs ${o.root} → ${rootfs} (${compression}${allRoot ? ', all files owned by root: not building as root' : ''})`)
    let t0 = Date.now()
    let lastShown = -1
    let buffered = ''
    await run('mksquashfs', mksquashfsArgs(root, `${rootfs}.tmp`, { compression, epoch, allRoot }), (text) => {
      buffered = (buffered + text).slice(-400)
      const p = squashfsPercent(buffered)
      if (p !== undefined && p >= lastShown + 10) {
        lastShown = p - (p % 10)
        log(`mksquashfs ${lastShown}%`)
      }
    })
    renameSync(`${rootfs}.tmp`, rootfs)
    ms.squashfs = Date.now() - t0
    const rootfsBytes = statSync(rootfs).size
    log(`rootfs ${mib(rootfsBytes)} in ${(ms.squashfs / 1000).toFixed(1)} s`)

    // kernel and initrd beside it
    const kernelOut = join(outputDir, 'vmlinuz')
    copyFileSync(kernel, kernelOut)
    const initrdOut = join(outputDir, 'initrd.img')
    if (o.initrd !== undefined) {
      if (resolve(o.initrd) !== initrdOut) copyFileSync(o.initrd, initrdOut)
    } else {
      t0 = Date.now()
      log(`building the netboot initrd for ${kver!} from ${o.root}/lib/modules/${kver!} (dracut)`)
      await o.buildInitrd!({ kver: kver!, kmoddir: kmoddir!, kernel: kernelOut, output: initrdOut, log })
      ms.initrd = Date.now() - t0
      log(`initrd ${mib(statSync(initrdOut).size)} in ${(ms.initrd / 1000).toFixed(1)} s`)
    }
    return { rootfs, kernel: kernelOut, initrd: initrdOut, kver, rootfsBytes, warnings, ms }
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
    if (existsSync(join(outputDir, 'rootfs.squashfs.tmp'))) rmSync(join(outputDir, 'rootfs.squashfs.tmp'), { force: true })
  }
}

const mib = (n: number): string => `${(n / (1 << 20)).toFixed(1)} MiB`
