/**
 * Unified kernel images (UKI): systemd's EFI stub (`linuxx64.efi.stub`, Debian's
 * systemd-boot-efi) with the kernel, initrd, command line and os-release added as PE
 * sections (.osrel, .cmdline, .initrd, .linux), built with binutils' objcopy. UEFI
 * firmware measures the whole file into PCR 4 by its Authenticode hash
 * (authenticode.ts), so the initrd, and the agent in it, is covered by the quote.
 *
 * The section layout is the well-known objcopy recipe (systemd's ukify, the Arch
 * wiki): each new section starts at the next SectionAlignment boundary past the
 * stub's image, in order, and objcopy is told each address with
 * --change-section-vma. The recipe takes the stub's end as its last section's
 * VirtualAddress + VirtualSize; this takes the larger of that and SizeOfImage
 * (Debian's 252 stub: 0x19134 vs 0x19300, its last section having more raw data
 * than VirtualSize), so no added section overlaps memory the stub's image may
 * occupy under a loader that maps SizeOfRawData. `.linux` comes last, as ukify
 * places it, so nothing follows the kernel in memory.
 *
 * Stable API (H1a calls buildUki from `netboot initrd build --uki`):
 *   buildUki({ kernel, initrd, cmdline, output, stub?, osRelease?, objcopy? }) → BuiltUki
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { NetbootError } from '../errors.js'
import { authenticodeDigests, parsePe, type AuthenticodeAlg, type PeHeaders } from './authenticode.js'
import { workerScript } from '../worker-url.js'

/** Where Debian's systemd-boot-efi puts the x86-64 stub. */
export const DEFAULT_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub'

/** Written to .osrel when the caller gives none (os-release(5) format). */
export const DEFAULT_OS_RELEASE = 'NAME="netboot"\nID=netboot\nPRETTY_NAME="netboot initramfs (unified kernel image)"\n'

/** objcopy gets this long before it is killed. */
const OBJCOPY_TIMEOUT_MS = 120_000

export interface BuildUkiOptions {
  /** Path of the kernel (a bzImage with its EFI stub, e.g. /boot/vmlinuz-6.1.0-…-amd64). */
  readonly kernel: string
  /** Path of the initrd (e.g. the netboot initrd from `netboot initrd build`). */
  readonly initrd: string
  /**
   * The built-in command line (.cmdline). systemd-stub uses it only when the loader
   * passes no command line of its own, or with Secure Boot on (stub.c, v252); iPXE
   * always passes one, so netboot's per-node parameters still arrive (docs/uki.md).
   */
  readonly cmdline: string
  /** Path to write; written through a temporary file in the same directory, then renamed. */
  readonly output: string
  /** The EFI stub; default DEFAULT_STUB. */
  readonly stub?: string
  /** The text of the .osrel section (os-release format); default DEFAULT_OS_RELEASE. */
  readonly osRelease?: string
  /** The objcopy binary; default `objcopy` from PATH. */
  readonly objcopy?: string
}

export interface UkiSection {
  readonly name: string
  /** Absolute virtual address given to objcopy (ImageBase + RVA). */
  readonly vma: number
  readonly size: number
}

export interface BuiltUki {
  readonly path: string
  readonly size: number
  /** SHA-256 of the file: its name in the blob store. */
  readonly sha256: string
  /** Authenticode digests (hex) by algorithm: what UEFI firmware extends into PCR 4. */
  readonly authenticode: Readonly<Record<AuthenticodeAlg, string>>
  readonly sections: readonly UkiSection[]
}

/** The order sections are added in; .linux last. */
export const UKI_SECTION_ORDER = ['.osrel', '.cmdline', '.initrd', '.linux'] as const

/**
 * Where each added section goes: pure. The first starts at ImageBase + the stub's
 * end (the larger of SizeOfImage and its last section's VirtualAddress +
 * VirtualSize), rounded up to SectionAlignment; each next one at the previous end
 * rounded up again (PE Format, "Section Table": VirtualAddress must be a multiple of
 * SectionAlignment and sections ascend without overlap).
 */
export function ukiLayout (stub: Pick<PeHeaders, 'imageBase' | 'sectionAlignment' | 'sizeOfImage' | 'sections'>, sections: ReadonlyArray<{ name: string; size: number }>): UkiSection[] {
  const align = stub.sectionAlignment
  if (!Number.isSafeInteger(align) || align <= 0 || (align & (align - 1)) !== 0) throw new NetbootError('UKI_BUILD_FAILED', `the stub's SectionAlignment ${align} is not a power of two`)
  const up = (n: number): number => Math.ceil(n / align) * align
  let end = stub.sizeOfImage
  for (const s of stub.sections) end = Math.max(end, s.virtualAddress + s.virtualSize)
  let rva = up(end)
  const out: UkiSection[] = []
  for (const s of sections) {
    if (stub.sections.some((t) => t.name === s.name)) throw new NetbootError('UKI_BUILD_FAILED', `the stub already has a ${s.name} section`)
    out.push({ name: s.name, vma: stub.imageBase + rva, size: s.size })
    rva = up(rva + s.size)
  }
  if (rva > 0xffffffff) throw new NetbootError('UKI_BUILD_FAILED', `the image would be ${rva} bytes: beyond the PE32+ 4 GiB SizeOfImage`)
  return out
}

/** Builds a UKI with objcopy; throws UKI_BUILD_FAILED naming the input at fault. */
export async function buildUki (opts: BuildUkiOptions): Promise<BuiltUki> {
  const stubPath = opts.stub ?? DEFAULT_STUB
  const stubBytes = await readFile(stubPath).catch((e: NodeJS.ErrnoException) => {
    throw new NetbootError('UKI_BUILD_FAILED', `cannot read the EFI stub ${stubPath}: ${e.code ?? e.message}${e.code === 'ENOENT' && opts.stub === undefined ? " (install Debian's systemd-boot-efi)" : ''}`)
  })
  const stub = parsePe(stubBytes)
  if (!stub.ok) throw new NetbootError('UKI_BUILD_FAILED', `the EFI stub ${stubPath} is not a PE image: ${stub.error.message}`)
  if (opts.cmdline.includes('\0')) throw new NetbootError('UKI_BUILD_FAILED', 'cmdline contains a NUL byte')

  const sizes = new Map<string, number>()
  for (const [what, path] of [['kernel', opts.kernel], ['initrd', opts.initrd]] as const) {
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => { throw new NetbootError('UKI_BUILD_FAILED', `${what} ${path}: ${e.code ?? e.message}`) })
    if (!st.isFile()) throw new NetbootError('UKI_BUILD_FAILED', `${what} ${path} is not a regular file`)
    if (st.size === 0) throw new NetbootError('UKI_BUILD_FAILED', `${what} ${path} is empty`)
    sizes.set(what, st.size)
  }

  const tmp = await mkdtemp(join(dirname(opts.output), `.${basename(opts.output)}.`))
  try {
    const osrel = join(tmp, 'osrel')
    const cmdline = join(tmp, 'cmdline')
    const osText = Buffer.from(opts.osRelease ?? DEFAULT_OS_RELEASE, 'utf8')
    const cmdText = Buffer.from(opts.cmdline, 'utf8')
    await writeFile(osrel, osText)
    await writeFile(cmdline, cmdText)
    const files: Record<(typeof UKI_SECTION_ORDER)[number], { path: string; size: number }> = {
      '.osrel': { path: osrel, size: osText.length },
      '.cmdline': { path: cmdline, size: cmdText.length },
      '.initrd': { path: opts.initrd, size: sizes.get('initrd')! },
      '.linux': { path: opts.kernel, size: sizes.get('kernel')! },
    }
    // An empty .cmdline would be an empty section: leave it out (the stub then has none).
    const wanted = UKI_SECTION_ORDER.filter((n) => files[n].size > 0)
    const layout = ukiLayout(stub.value, wanted.map((n) => ({ name: n, size: files[n].size })))
    const args: string[] = []
    for (const s of layout) {
      args.push('--add-section', `${s.name}=${files[s.name as keyof typeof files].path}`,
        '--set-section-flags', `${s.name}=readonly,data`,
        '--change-section-vma', `${s.name}=0x${s.vma.toString(16)}`)
    }
    const out = join(tmp, 'uki.efi')
    args.push(stubPath, out)
    await run(opts.objcopy ?? 'objcopy', args)

    const bytes = await readFile(out)
    const check = checkUki(bytes, layout)
    if (check !== undefined) throw new NetbootError('UKI_BUILD_FAILED', `objcopy produced an unexpected image: ${check}`)
    const digests = authenticodeDigests(bytes)
    if (!digests.ok) throw new NetbootError('UKI_BUILD_FAILED', `the built image does not parse: ${digests.error.message}`)
    await rename(out, opts.output)
    return {
      path: opts.output,
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      authenticode: Object.fromEntries(Object.entries(digests.value).map(([k, v]) => [k, v.toString('hex')])) as Record<AuthenticodeAlg, string>,
      sections: layout,
    }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/** Why a built image does not have the sections where the layout put them, or undefined. */
export function checkUki (bytes: Uint8Array, layout: readonly UkiSection[]): string | undefined {
  const pe = parsePe(bytes)
  if (!pe.ok) return pe.error.message
  for (const want of layout) {
    const got = pe.value.sections.find((s) => s.name === want.name)
    if (got === undefined) return `no ${want.name} section`
    if (pe.value.imageBase + got.virtualAddress !== want.vma) return `${want.name} at 0x${(pe.value.imageBase + got.virtualAddress).toString(16)}, not 0x${want.vma.toString(16)}`
    if (got.virtualSize < want.size || got.sizeOfRawData < want.size) return `${want.name} holds ${Math.min(got.virtualSize, got.sizeOfRawData)} bytes, not ${want.size}`
  }
  return undefined
}

/** Largest UKI the server measures on upload (it is read whole). */
export const MAX_UKI_BYTES = 512 * 1024 * 1024

export interface UkiMeasurements {
  /** Authenticode digests (hex) of the whole UKI: its PCR 4 event on UEFI. */
  readonly authenticode: Readonly<Record<AuthenticodeAlg, string>>
  /** Authenticode digests (hex) of the kernel in .linux, when it is a PE itself (stubs that LoadImage it measure it too). */
  readonly linux?: Readonly<Record<AuthenticodeAlg, string>>
}

/**
 * measureUki of a file, in a worker thread (uki-worker.ts): the event loop keeps
 * serving while a large UKI is hashed. Rejects with IMAGE_UKI_INVALID as measureUki
 * throws it, or with the read error.
 */
export async function measureUkiFile (path: string): Promise<UkiMeasurements> {
  const worker = new Worker(workerScript(import.meta.url, 'uki-worker'), { workerData: { path } })
  type Reply = { ok: true; value: UkiMeasurements } | { ok: false; code: string; message: string }
  return await new Promise<UkiMeasurements>((resolve, reject) => {
    worker.once('message', (r: Reply) => {
      if (r.ok) resolve(r.value)
      else reject(r.code === 'IMAGE_UKI_INVALID' ? new NetbootError('IMAGE_UKI_INVALID', r.message) : new Error(r.message))
    })
    worker.once('error', reject)
    worker.once('exit', (code) => { reject(new Error(`the UKI measuring worker exited (${code}) without an answer`)) })
  })
}

/**
 * What the firmware will measure when it starts this UKI: pure. Throws
 * IMAGE_UKI_INVALID when the bytes are not a PE image or have no .linux section.
 */
export function measureUki (bytes: Uint8Array): UkiMeasurements {
  const whole = authenticodeDigests(bytes)
  if (!whole.ok) throw new NetbootError('IMAGE_UKI_INVALID', `not a PE image: ${whole.error.message}`)
  const linux = peSectionBytes(bytes, '.linux')
  if (linux === undefined || linux.length === 0) throw new NetbootError('IMAGE_UKI_INVALID', 'the PE image has no .linux section: not a unified kernel image')
  const inner = authenticodeDigests(linux)
  const hex = (r: Record<AuthenticodeAlg, Buffer>): Record<AuthenticodeAlg, string> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.toString('hex')])) as Record<AuthenticodeAlg, string>
  return { authenticode: hex(whole.value), ...(inner.ok ? { linux: hex(inner.value) } : {}) }
}

/** One section's raw bytes (VirtualSize of them: SizeOfRawData is padded to FileAlignment). */
export function peSectionBytes (bytes: Uint8Array, name: string): Buffer | undefined {
  const pe = parsePe(bytes)
  if (!pe.ok) return undefined
  const s = pe.value.sections.find((x) => x.name === name)
  if (s === undefined) return undefined
  const len = Math.min(s.virtualSize === 0 ? s.sizeOfRawData : s.virtualSize, s.sizeOfRawData)
  return Buffer.from(bytes.buffer, bytes.byteOffset + s.pointerToRawData, len)
}

async function run (cmd: string, args: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(cmd, args, { timeout: OBJCOPY_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (err === null) return resolve()
      const e = err as NodeJS.ErrnoException & { killed?: boolean }
      const why = e.code === 'ENOENT' ? `${cmd} not found (install Debian's binutils)` : e.killed === true ? `${cmd} timed out after ${OBJCOPY_TIMEOUT_MS / 1000} s` : `${cmd} failed: ${String(stderr).trim() || e.message}`
      reject(new NetbootError('UKI_BUILD_FAILED', why))
    })
  })
}
