/**
 * Test helpers for PE/COFF and UKI tests: a small PE32/PE32+ writer (layout per the
 * PE Format specification: MS-DOS header with e_lfanew at 0x3c, "PE\0\0", COFF file
 * header, optional header with 16 data directories, section table), real tools
 * located with a failure that names their Debian package, and the e2e kernel.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub'

export interface SpecSection { name: string; data: Buffer; virtualSize?: number }
export interface PeSpec {
  pe32plus?: boolean
  sections?: SpecSection[]
  /** Bytes appended after the last section (before any certificate table). */
  trailing?: Buffer
  /** A certificate table appended at the end (and named by data directory 4). */
  certTable?: Buffer
  checksum?: number
  numberOfRvaAndSizes?: number
  fileAlignment?: number
  sectionAlignment?: number
  imageBase?: number
}

/** A well-formed PE image from a spec; offsets of the interesting fields alongside. */
export function buildPe (spec: PeSpec = {}): { bytes: Buffer; checksumOffset: number; certDirOffset: number } {
  const plus = spec.pe32plus ?? true
  const fa = spec.fileAlignment ?? 0x200
  const sa = spec.sectionAlignment ?? 0x1000
  const ndirs = spec.numberOfRvaAndSizes ?? 16
  const sections = spec.sections ?? [{ name: '.text', data: Buffer.from('text section contents') }, { name: '.data', data: Buffer.alloc(700, 7) }]
  const lfanew = 0x80
  const optSize = (plus ? 112 : 96) + ndirs * 8
  const tableAt = lfanew + 4 + 20 + optSize
  const headers = Math.ceil((tableAt + sections.length * 40) / fa) * fa
  const up = (n: number, a: number): number => Math.ceil(n / a) * a
  let raw = headers
  let rva = up(headers, sa)
  const placed = sections.map((s) => {
    const p = { ...s, ptr: raw, rawSize: up(s.data.length, fa), rva, vsize: s.virtualSize ?? s.data.length }
    raw += p.rawSize
    rva += up(Math.max(p.vsize, 1), sa)
    return p
  })
  const trailing = spec.trailing ?? Buffer.alloc(0)
  const certAt = raw + trailing.length
  const cert = spec.certTable ?? Buffer.alloc(0)
  const b = Buffer.alloc(certAt + cert.length)
  b.write('MZ', 0, 'latin1')
  b.writeUInt32LE(lfanew, 0x3c)
  b.write('PE\0\0', lfanew, 'latin1')
  const coff = lfanew + 4
  b.writeUInt16LE(0x8664, coff)
  b.writeUInt16LE(sections.length, coff + 2)
  b.writeUInt16LE(optSize, coff + 16)
  b.writeUInt16LE(0x0206, coff + 18)
  const opt = coff + 20
  b.writeUInt16LE(plus ? 0x20b : 0x10b, opt)
  if (plus) b.writeBigUInt64LE(BigInt(spec.imageBase ?? 0), opt + 24)
  else b.writeUInt32LE(spec.imageBase ?? 0x400000, opt + 28)
  b.writeUInt32LE(sa, opt + 32)
  b.writeUInt32LE(fa, opt + 36)
  b.writeUInt32LE(rva, opt + 56)
  b.writeUInt32LE(headers, opt + 60)
  b.writeUInt32LE(spec.checksum ?? 0, opt + 64)
  b.writeUInt16LE(10, opt + 68) // EFI application
  const countAt = opt + (plus ? 108 : 92)
  b.writeUInt32LE(ndirs, countAt)
  const certDirOffset = countAt + 4 + 4 * 8
  if (ndirs > 4 && cert.length > 0) {
    b.writeUInt32LE(certAt, certDirOffset)
    b.writeUInt32LE(cert.length, certDirOffset + 4)
  }
  for (const [i, p] of placed.entries()) {
    const h = tableAt + i * 40
    b.write(p.name.padEnd(8, '\0').slice(0, 8), h, 'latin1')
    b.writeUInt32LE(p.vsize, h + 8)
    b.writeUInt32LE(p.rva, h + 12)
    b.writeUInt32LE(p.rawSize, h + 16)
    b.writeUInt32LE(p.ptr, h + 20)
    b.writeUInt32LE(0x40000040, h + 36)
    p.data.copy(b, p.ptr)
  }
  trailing.copy(b, raw)
  cert.copy(b, certAt)
  return { bytes: b, checksumOffset: opt + 64, certDirOffset }
}

/** The path of a command, or a test failure naming the Debian package that provides it. */
export function need (cmd: string, pkg: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  const path = r.stdout.trim()
  if (r.status !== 0 || path === '') throw new Error(`${cmd} is missing: install Debian's ${pkg} (scripts/setup.sh installs scripts/debian-packages.txt)`)
  return path
}

/** The systemd EFI stub, or a failure naming systemd-boot-efi. */
export function needStub (): string {
  if (!existsSync(STUB)) throw new Error(`${STUB} is missing: install Debian's systemd-boot-efi (scripts/setup.sh)`)
  return STUB
}

/** Debian's kernel and the e2e initrd (scripts/e2e-assets.sh builds or reuses them). */
export function e2eAssets (): { dir: string; vmlinuz: string; initrd: string; busybox: string; kernelVersion: string } {
  const dir = execFileSync('bash', [join(ROOT, 'scripts/e2e-assets.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim().split('\n').at(-1)!
  const kernelVersion = existsSync(join(dir, 'kernel-version')) ? readFileSync(join(dir, 'kernel-version'), 'utf8').trim() : 'unknown'
  return { dir, vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), busybox: join(dir, 'busybox'), kernelVersion }
}

/** `pesign --hash` of a file: an independent Authenticode implementation (NSS). */
export function pesignHash (file: string, alg: 'sha1' | 'sha256' = 'sha256'): string {
  need('pesign', 'pesign')
  const out = execFileSync('pesign', ['-h', '-d', alg, '-i', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 })
  const m = /^hash: ([0-9a-f]+)$/m.exec(out)
  if (m === null) throw new Error(`pesign printed no hash: ${out}`)
  return m[1]!
}
