/**
 * PE/COFF headers and the Authenticode image hash.
 *
 * The image hash is the digest UEFI firmware extends into PCR 4 for every EFI
 * application it starts (TCG PC Client Platform Firmware Profile §10.4.4 / §3.3.4.4:
 * EV_EFI_BOOT_SERVICES_APPLICATION, "the digest … is the Authenticode hash of the PE
 * image"), computed as in Microsoft's "Windows Authenticode Portable Executable
 * Signature Format" (v1.0, "Calculating the PE Image Hash") and EDK2's
 * Tcg2MeasurePeImage (SecurityPkg DxeTpm2MeasureBootLib):
 *
 *   1. the headers from offset 0 to the optional header's CheckSum field;
 *   2. skip CheckSum (4 bytes);
 *   3. up to the Certificate Table data-directory entry (IMAGE_DIRECTORY_ENTRY_SECURITY,
 *      index 4), or to SizeOfHeaders when the image has no such entry;
 *   4. skip that entry (8 bytes), then up to SizeOfHeaders;
 *   5. every section with SizeOfRawData > 0, in ascending PointerToRawData order,
 *      SizeOfRawData bytes each; SUM = SizeOfHeaders + Σ SizeOfRawData;
 *   6. if the file is longer than SUM + the certificate table's size, the bytes from
 *      SUM to (file size − certificate table size): trailing data.
 *
 * Pure: bytes in, digests or a typed error out. Never trusts a count or offset: every
 * field is checked against the file's length before it is used (PE Format, "MS-DOS
 * stub", "COFF File Header", "Optional Header", "Section Table").
 */
import { createHash } from 'node:crypto'

export type PeErrorCode = 'too-small' | 'not-mz' | 'bad-lfanew' | 'not-pe' | 'bad-optional-header' | 'bad-section-table' | 'bad-section' | 'bad-headers' | 'bad-cert-table'

export class PeError extends Error {
  constructor (readonly code: PeErrorCode, message: string) {
    super(message)
    this.name = 'PeError'
  }
}

export type PeResult<T> = { ok: true; value: T } | { ok: false; error: PeError }

/** The Windows loader's limit (PE Format, COFF File Header: NumberOfSections). */
export const MAX_SECTIONS = 96
/** IMAGE_DIRECTORY_ENTRY_SECURITY: the Certificate Table's index in the data directories. */
const SECURITY_DIR = 4
const PE32_MAGIC = 0x10b
const PE32PLUS_MAGIC = 0x20b

export interface PeSection {
  /** Up to 8 bytes, NUL padding removed. */
  readonly name: string
  readonly virtualSize: number
  /** RVA (relative to ImageBase). */
  readonly virtualAddress: number
  readonly sizeOfRawData: number
  readonly pointerToRawData: number
  readonly characteristics: number
}

export interface PeHeaders {
  readonly machine: number
  readonly pe32plus: boolean
  /** File offset of the optional header. */
  readonly optionalHeaderOffset: number
  /** File offset of the CheckSum field (optional header + 64). */
  readonly checksumOffset: number
  /** File offset of the Certificate Table directory entry, if the image has one (NumberOfRvaAndSizes > 4). */
  readonly certDirOffset?: number
  /** The Certificate Table: a file offset (not an RVA) and size; size 0 when unsigned. */
  readonly certTable: { readonly offset: number; readonly size: number }
  /** ImageBase; a bigint only beyond 2^53 (never for real EFI images). */
  readonly imageBase: number
  readonly sectionAlignment: number
  readonly fileAlignment: number
  readonly sizeOfImage: number
  readonly sizeOfHeaders: number
  readonly sections: readonly PeSection[]
}

const fail = (code: PeErrorCode, message: string): { ok: false; error: PeError } => ({ ok: false, error: new PeError(code, message) })

/** Parses the DOS stub pointer, COFF header, optional header and section table. */
export function parsePe (buf: Uint8Array): PeResult<PeHeaders> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (b.length < 0x40) return fail('too-small', `${b.length} bytes: smaller than an MS-DOS header`)
  if (b[0] !== 0x4d || b[1] !== 0x5a) return fail('not-mz', 'no MZ signature at offset 0')
  const lfanew = b.readUInt32LE(0x3c)
  if (lfanew < 0x40 || lfanew > b.length - 24) return fail('bad-lfanew', `e_lfanew ${lfanew} is outside the file (${b.length} bytes)`)
  if (b.readUInt32LE(lfanew) !== 0x00004550) return fail('not-pe', `no "PE\\0\\0" signature at e_lfanew ${lfanew}`)
  const coff = lfanew + 4
  const machine = b.readUInt16LE(coff)
  const nsections = b.readUInt16LE(coff + 2)
  const optSize = b.readUInt16LE(coff + 16)
  const opt = coff + 20
  if (nsections > MAX_SECTIONS) return fail('bad-section-table', `NumberOfSections ${nsections} is over ${MAX_SECTIONS}`)
  if (optSize < 2 || opt + optSize > b.length) return fail('bad-optional-header', `SizeOfOptionalHeader ${optSize} at ${opt} runs past the file (${b.length} bytes)`)
  const magic = b.readUInt16LE(opt)
  if (magic !== PE32_MAGIC && magic !== PE32PLUS_MAGIC) return fail('bad-optional-header', `optional header magic 0x${magic.toString(16)} is neither PE32 (0x10b) nor PE32+ (0x20b)`)
  const pe32plus = magic === PE32PLUS_MAGIC
  // NumberOfRvaAndSizes is the last fixed field: 92 (PE32) or 108 (PE32+) bytes in.
  const dirCountAt = pe32plus ? 108 : 92
  if (optSize < dirCountAt + 4) return fail('bad-optional-header', `SizeOfOptionalHeader ${optSize} is too small for a ${pe32plus ? 'PE32+' : 'PE32'} optional header`)
  const ndirs = b.readUInt32LE(opt + dirCountAt)
  const dirs = opt + dirCountAt + 4
  if (ndirs > 16 || dirCountAt + 4 + ndirs * 8 > optSize) return fail('bad-optional-header', `NumberOfRvaAndSizes ${ndirs} does not fit SizeOfOptionalHeader ${optSize}`)
  const imageBaseBig = pe32plus ? b.readBigUInt64LE(opt + 24) : BigInt(b.readUInt32LE(opt + 28))
  if (imageBaseBig > BigInt(Number.MAX_SAFE_INTEGER)) return fail('bad-optional-header', `ImageBase 0x${imageBaseBig.toString(16)} is beyond 2^53`)
  const sectionAlignment = b.readUInt32LE(opt + 32)
  const fileAlignment = b.readUInt32LE(opt + 36)
  const sizeOfImage = b.readUInt32LE(opt + 56)
  const sizeOfHeaders = b.readUInt32LE(opt + 60)
  const table = opt + optSize
  if (table + nsections * 40 > b.length) return fail('bad-section-table', `${nsections} section headers at ${table} run past the file (${b.length} bytes)`)
  if (sizeOfHeaders > b.length) return fail('bad-headers', `SizeOfHeaders ${sizeOfHeaders} is beyond the file (${b.length} bytes)`)
  if (sizeOfHeaders < opt + 68) return fail('bad-headers', `SizeOfHeaders ${sizeOfHeaders} ends before the CheckSum field`)
  const certDirOffset = ndirs > SECURITY_DIR ? dirs + SECURITY_DIR * 8 : undefined
  if (certDirOffset !== undefined && certDirOffset + 8 > sizeOfHeaders) return fail('bad-headers', `SizeOfHeaders ${sizeOfHeaders} ends before the Certificate Table entry`)
  const certTable = certDirOffset === undefined ? { offset: 0, size: 0 } : { offset: b.readUInt32LE(certDirOffset), size: b.readUInt32LE(certDirOffset + 4) }
  if (certTable.size > 0 && (certTable.offset < sizeOfHeaders || certTable.offset + certTable.size > b.length)) {
    return fail('bad-cert-table', `Certificate Table at ${certTable.offset} (+${certTable.size}) is outside the file's body (${b.length} bytes)`)
  }
  const sections: PeSection[] = []
  for (let i = 0; i < nsections; i++) {
    const s = table + i * 40
    const rawName = b.subarray(s, s + 8)
    const end = rawName.indexOf(0)
    const section: PeSection = {
      name: rawName.subarray(0, end < 0 ? 8 : end).toString('latin1'),
      virtualSize: b.readUInt32LE(s + 8),
      virtualAddress: b.readUInt32LE(s + 12),
      sizeOfRawData: b.readUInt32LE(s + 16),
      pointerToRawData: b.readUInt32LE(s + 20),
      characteristics: b.readUInt32LE(s + 36),
    }
    if (section.sizeOfRawData > 0 && section.pointerToRawData + section.sizeOfRawData > b.length) {
      return fail('bad-section', `section ${i} (${JSON.stringify(section.name)}): raw data at ${section.pointerToRawData} (+${section.sizeOfRawData}) runs past the file (${b.length} bytes)`)
    }
    sections.push(section)
  }
  return {
    ok: true,
    value: {
      machine, pe32plus, optionalHeaderOffset: opt, checksumOffset: opt + 64,
      ...(certDirOffset !== undefined ? { certDirOffset } : {}),
      certTable, imageBase: Number(imageBaseBig), sectionAlignment, fileAlignment, sizeOfImage, sizeOfHeaders, sections,
    },
  }
}

export const AUTHENTICODE_ALGS = ['sha1', 'sha256', 'sha384', 'sha512'] as const
export type AuthenticodeAlg = (typeof AUTHENTICODE_ALGS)[number]

/**
 * The byte ranges the Authenticode hash covers, in order, as [start, end) file
 * offsets (the steps in this file's header comment). Exposed so tests can check the
 * exclusions directly.
 */
export function authenticodeRanges (buf: Uint8Array, pe: PeHeaders): Array<readonly [number, number]> {
  const out: Array<readonly [number, number]> = []
  const push = (a: number, z: number): void => { if (z > a) out.push([a, z]) }
  push(0, pe.checksumOffset)
  if (pe.certDirOffset === undefined) {
    push(pe.checksumOffset + 4, pe.sizeOfHeaders)
  } else {
    push(pe.checksumOffset + 4, pe.certDirOffset)
    push(pe.certDirOffset + 8, pe.sizeOfHeaders)
  }
  let sum = pe.sizeOfHeaders
  const sorted = pe.sections.filter((s) => s.sizeOfRawData > 0).sort((x, y) => x.pointerToRawData - y.pointerToRawData)
  for (const s of sorted) {
    push(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData)
    sum += s.sizeOfRawData
  }
  const tail = buf.byteLength - pe.certTable.size
  if (tail > sum) push(sum, tail)
  return out
}

/** The Authenticode image hash of a PE file with one algorithm. */
export function authenticodeDigest (buf: Uint8Array, alg: AuthenticodeAlg = 'sha256'): PeResult<Buffer> {
  const r = authenticodeDigests(buf, [alg])
  return r.ok ? { ok: true, value: r.value[alg]! } : r
}

/** The Authenticode image hash with several algorithms in one pass over the file. */
export function authenticodeDigests<A extends AuthenticodeAlg> (buf: Uint8Array, algs: readonly A[] = AUTHENTICODE_ALGS as unknown as A[]): PeResult<Record<A, Buffer>> {
  const pe = parsePe(buf)
  if (!pe.ok) return pe
  const hashes = algs.map((a) => createHash(a))
  for (const [a, z] of authenticodeRanges(buf, pe.value)) {
    const part = buf.subarray(a, z)
    for (const h of hashes) h.update(part)
  }
  return { ok: true, value: Object.fromEntries(algs.map((a, i) => [a, hashes[i]!.digest()])) as Record<A, Buffer> }
}
