/**
 * The TFTP file source: a root directory plus virtual (generated) files, with
 * safe name resolution and bounded-memory block reads.
 *
 * Name contract (`resolveRequestPath`, pure):
 * - NUL, backslash, control characters: refused (`invalid-name`);
 * - one leading `/` is stripped (firmware commonly asks for `/pxelinux.0`);
 *   a name still absolute after that (`//etc/passwd`) is refused (`traversal`);
 * - any `..` component is refused (`traversal`), before and regardless of
 *   normalisation; `.` and empty components are dropped;
 * - so `/etc/passwd` means `<root>/etc/passwd`, never the host's file.
 * On disk the joined path is resolved with realpath; a result outside the real
 * root (a symlink pointing out) is `traversal`; only regular files are served.
 * The final open uses O_NOFOLLOW and O_NONBLOCK and re-checks the inode, so a
 * file swapped for a symlink or FIFO between the checks is refused, not followed.
 *
 * Virtual files are looked up by the same resolved name and take precedence
 * over the disk.
 *
 * Small files in memory: a file of at most `memoryMaxFile` octets (iPXE
 * binaries: undionly.kpxe ~70 KB, ipxe.efi ~1 MB) is read whole once and its
 * bytes kept, keyed by real path and checked on every open against the name's
 * stat (device, inode, size, mtime, ctime): a replaced or rewritten file is read
 * again; the name checks above run on every request all the same. A boot storm
 * then costs a realpath and a stat per transfer instead of an open, fstat, a read
 * per window and a close. Kept bytes are bounded by `memoryMaxTotal` (oldest
 * dropped first).
 */

import { constants as fsc, type Stats } from 'node:fs'
import { open, realpath, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { netasciiEncode, type TransferMode } from './codec.js'

export interface VirtualFileContext {
  /** The requesting peer, for generated content that depends on the client. */
  readonly peer: { readonly address: string; readonly port: number }
}

export type VirtualFile = (ctx: VirtualFileContext) => Buffer | Promise<Buffer>
export type VirtualFiles = Readonly<Record<string, VirtualFile>> | ReadonlyMap<string, VirtualFile>

export const FILE_ERRORS = {
  'invalid-name': 'The name contains NUL, a backslash or a control character, or is empty.',
  traversal: 'The name leaves the TFTP root (.. component, absolute path, or a symlink resolving outside).',
  'not-found': 'No file or virtual file has that name.',
  'not-regular-file': 'The name resolves to a directory, device, FIFO or socket.',
  'permission-denied': 'The file exists but the server may not read it.',
  'io-error': 'Reading or generating the file failed.',
} as const satisfies Record<string, string>

export type FileErrorCode = keyof typeof FILE_ERRORS

export interface FileError {
  readonly code: FileErrorCode
  readonly message: string
}

export type FileResult<T> = { ok: true; value: T } | { ok: false; error: FileError }

const err = (code: FileErrorCode, message: string = FILE_ERRORS[code]): { ok: false; error: FileError } => ({
  ok: false,
  error: { code, message },
})

/** Resolve a requested name to a root-relative POSIX path (no leading `/`, no `.`/`..`). */
export function resolveRequestPath(name: string): FileResult<string> {
  if (name.length === 0) return err('invalid-name')
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(name)) return err('invalid-name')
  const stripped = name.startsWith('/') ? name.slice(1) : name
  if (stripped.startsWith('/')) return err('traversal', 'absolute path outside the root')
  const parts = stripped.split('/')
  if (parts.includes('..')) return err('traversal', '".." component')
  const kept = parts.filter((p) => p !== '' && p !== '.')
  if (kept.length === 0) return err('not-regular-file', 'the root directory itself')
  return { ok: true, value: kept.join('/') }
}

/**
 * Blocks of one transfer's byte stream. `readBlock` is synchronous and valid only
 * for blocks covered by a completed `load`; the driver calls `isLoaded`/`load`
 * before each transition (see transfer.ts `blocksNeeded`). Ranges passed to
 * `load` start no earlier than the previous one (the window only moves forward).
 */
export interface BlockSource {
  isLoaded(first: number, last: number): boolean
  load(first: number, last: number): Promise<void>
  /** Block `index`: blksize octets, or fewer for the last block (possibly 0). */
  readBlock(index: number): Buffer
  /**
   * The whole DATA packet (RFC 1350 §5: opcode 3, block number, `data`) for a
   * block this source's `readBlock` returned, when the source keeps its blocks
   * preformatted; undefined otherwise (the caller encodes it). No copy.
   */
  framed?(data: Buffer, block: number): Buffer | undefined
}

export interface OpenedFile {
  /** Root-relative name, for logs. */
  readonly name: string
  /** Size in octets of the file (before any netascii translation). */
  readonly size: number
  readonly virtual: boolean
  blocks(blksize: number, mode: TransferMode): BlockSource
  close(): Promise<void>
}

/**
 * Octets read from disk per read-ahead refill (the window's size if larger).
 * Bounds memory at about this much per transfer (64 MiB for 1024 transfers)
 * while keeping a 32 MiB file to 512 reads.
 */
export const DEFAULT_CHUNK_SIZE = 64 * 1024

/** Files up to this size are kept in memory (see the module comment). */
export const DEFAULT_MEMORY_MAX_FILE = 4 * 1024 * 1024
/** Total octets of files kept in memory. */
export const DEFAULT_MEMORY_MAX_TOTAL = 64 * 1024 * 1024

export interface FileStoreOptions {
  readonly root: string
  readonly virtualFiles?: VirtualFiles
  readonly chunkSize?: number
  /** Largest file kept in memory; 0 keeps none. Default DEFAULT_MEMORY_MAX_FILE. */
  readonly memoryMaxFile?: number
  /** Bound of all kept files together. Default DEFAULT_MEMORY_MAX_TOTAL. */
  readonly memoryMaxTotal?: number
}

export interface MemoryStats {
  /** Opens served from kept bytes. */
  readonly hits: number
  /** Small files read from disk (first time, or changed since). */
  readonly loads: number
  readonly files: number
  readonly bytes: number
}

export interface FileStore {
  /** The real (symlink-free) root directory. */
  readonly root: string
  open(name: string, ctx: VirtualFileContext): Promise<FileResult<OpenedFile>>
  memoryStats(): MemoryStats
}

interface Kept {
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly data: Buffer
}

const sameFile = (k: Kept, s: Stats): boolean =>
  k.dev === s.dev && k.ino === s.ino && k.size === s.size && k.mtimeMs === s.mtimeMs && k.ctimeMs === s.ctimeMs

/** Resolves the root (must be an existing directory) and checks virtual file names; throws on bad configuration. */
export async function createFileStore(opts: FileStoreOptions): Promise<FileStore> {
  const root = await realpath(opts.root)
  const st = await stat(root)
  if (!st.isDirectory()) throw new Error(`TFTP root ${opts.root} is not a directory`)
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE
  const memoryMaxFile = opts.memoryMaxFile ?? DEFAULT_MEMORY_MAX_FILE
  const memoryMaxTotal = opts.memoryMaxTotal ?? DEFAULT_MEMORY_MAX_TOTAL
  const kept = new Map<string, Kept>()
  /** Loads in flight, by real path and file version: waiters share the first one's read. */
  const loading = new Map<string, Promise<Buffer | undefined>>()
  let keptBytes = 0
  let hits = 0
  let loads = 0
  const keep = (real: string, k: Kept): void => {
    const old = kept.get(real)
    if (old !== undefined) {
      kept.delete(real)
      keptBytes -= old.size
    }
    if (k.size > memoryMaxTotal) return
    for (const [name, v] of kept) {
      if (keptBytes + k.size <= memoryMaxTotal) break
      kept.delete(name)
      keptBytes -= v.size
    }
    kept.set(real, k)
    keptBytes += k.size
  }
  const inMemory = (name: string, data: Buffer): OpenedFile => ({
    name,
    size: data.length,
    virtual: false,
    blocks: (blksize, mode) => (mode === 'netascii' ? new BufferSource(netasciiEncode(data), blksize) : PreformattedSource.of(data, blksize)),
    close: async () => {},
  })
  const virtual = new Map<string, VirtualFile>()
  const entries = opts.virtualFiles instanceof Map ? [...opts.virtualFiles] : Object.entries(opts.virtualFiles ?? {})
  for (const [name, fn] of entries) {
    const r = resolveRequestPath(name)
    if (!r.ok) throw new Error(`virtual file name ${JSON.stringify(name)}: ${r.error.message}`)
    virtual.set(r.value, fn)
  }

  async function openVirtual(name: string, fn: VirtualFile, ctx: VirtualFileContext): Promise<FileResult<OpenedFile>> {
    let content: Buffer
    try {
      content = await fn(ctx)
    } catch (e) {
      return err('io-error', `virtual file generator failed: ${(e as Error)?.message ?? String(e)}`)
    }
    if (!Buffer.isBuffer(content)) return err('io-error', 'virtual file generator returned no Buffer')
    return {
      ok: true,
      value: {
        name,
        size: content.length,
        virtual: true,
        blocks: (blksize, mode) => virtualSource(content, blksize, mode),
        close: async () => {},
      },
    }
  }

  type Resolved = { ok: true; real: string; before: Stats } | { ok: false; error: FileError }

  /** realpath, the root check and stat of one name; never rejects. */
  async function resolveDisk(name: string): Promise<Resolved> {
    const joined = path.join(root, ...name.split('/'))
    let real: string
    try {
      real = await realpath(joined)
    } catch (e) {
      return mapFsError(e)
    }
    if (real !== root && !real.startsWith(root + path.sep)) return err('traversal', 'resolves outside the root')
    try {
      return { ok: true, real, before: await stat(real) }
    } catch (e) {
      return mapFsError(e)
    }
  }

  /**
   * Opens of one name that arrive while its realpath/stat is in flight share that
   * check (a storm admits hundreds of RRQs for undionly.kpxe at once: one pair of
   * syscalls serves them, not one each). The check is never older than the
   * oldest waiting request; the next open after it settles checks again.
   */
  const resolving = new Map<string, Promise<Resolved>>()
  function resolveShared(name: string): Promise<Resolved> {
    let p = resolving.get(name)
    if (p === undefined) {
      p = resolveDisk(name)
      resolving.set(name, p)
      void p.then(() => resolving.delete(name))
    }
    return p
  }

  async function openDisk(name: string): Promise<FileResult<OpenedFile>> {
    const resolved = await resolveShared(name)
    if (!resolved.ok) return { ok: false, error: resolved.error }
    const { real, before } = resolved
    if (!before.isFile()) return err('not-regular-file')
    const small = before.size <= memoryMaxFile
    if (!small) return await openFrom(name, real, before, false)
    const k = kept.get(real)
    if (k !== undefined && sameFile(k, before)) {
      hits++
      return { ok: true, value: inMemory(name, k.data) }
    }
    // One read per file version however many transfers ask at once: a storm right after
    // start-up (or after ipxe.efi changed) would otherwise read the file once per
    // transfer, up to max_transfers × memoryMaxFile bytes, before the first keep().
    const key = `${real}\0${before.dev}:${before.ino}:${before.size}:${before.mtimeMs}:${before.ctimeMs}`
    const pending = loading.get(key)
    if (pending !== undefined) {
      const data = await pending
      if (data !== undefined) {
        hits++
        return { ok: true, value: inMemory(name, data) }
      }
      // that load failed: try on our own (and report our own error)
      return await openFrom(name, real, before, true)
    }
    let settle!: (data: Buffer | undefined) => void
    loading.set(key, new Promise((resolve) => { settle = resolve }))
    try {
      return await openFrom(name, real, before, true)
    } finally {
      loading.delete(key)
      // what openFrom kept (not kept, or failed: the waiters read on their own)
      const now = kept.get(real)
      settle(now !== undefined && sameFile(now, before) ? now.data : undefined)
    }
  }

  async function openFrom (name: string, real: string, before: Stats, small: boolean): Promise<FileResult<OpenedFile>> {
    let fh: FileHandle
    try {
      fh = await open(real, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
    } catch (e) {
      return mapFsError(e)
    }
    try {
      const after = await fh.stat()
      if (!after.isFile() || after.ino !== before.ino || after.dev !== before.dev) {
        await fh.close()
        return err('not-regular-file', 'file changed while opening')
      }
      const size = after.size
      if (small && size <= memoryMaxFile) {
        const data = await readExactly(fh, size, 0)
        await fh.close()
        loads++
        keep(real, { dev: after.dev, ino: after.ino, size, mtimeMs: after.mtimeMs, ctimeMs: after.ctimeMs, data })
        return { ok: true, value: inMemory(name, data) }
      }
      return {
        ok: true,
        value: {
          name,
          size,
          virtual: false,
          blocks: (blksize, mode) =>
            mode === 'netascii' ? new NetasciiSource(fh, size, blksize, chunkSize) : new FileSource(fh, size, blksize, chunkSize),
          close: () => fh.close(),
        },
      }
    } catch (e) {
      await fh.close().catch(() => {})
      return mapFsError(e)
    }
  }

  return {
    root,
    memoryStats: () => ({ hits, loads, files: kept.size, bytes: keptBytes }),
    async open(requested, ctx) {
      const r = resolveRequestPath(requested)
      if (!r.ok) return r
      const fn = virtual.get(r.value)
      if (fn !== undefined) return openVirtual(r.value, fn, ctx)
      return openDisk(r.value)
    },
  }
}

function mapFsError(e: unknown): { ok: false; error: FileError } {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return err('not-found')
    case 'EACCES':
    case 'EPERM':
      return err('permission-denied')
    case 'ELOOP':
      return err('traversal', 'symlink loop or symlink swapped in')
    default:
      return err('io-error', `${code ?? 'error'}: ${(e as Error)?.message ?? String(e)}`)
  }
}

/**
 * Virtual file contents seen once. A generator that returns the same Buffer
 * again (a kept file, setup.ts keptFile) gets preformatted DATA packets from its
 * second transfer on; a fresh Buffer per transfer (generated text) is served as
 * is, so a tsize probe that aborts after the OACK does not pay for a layout.
 */
const seenVirtual = new WeakSet<Buffer>()

function virtualSource(content: Buffer, blksize: number, mode: TransferMode): BlockSource {
  if (mode === 'netascii') return new BufferSource(netasciiEncode(content), blksize)
  if (seenVirtual.has(content)) return PreformattedSource.of(content, blksize)
  seenVirtual.add(content)
  return new BufferSource(content, blksize)
}

/** A whole stream in memory (virtual files). */
export class BufferSource implements BlockSource {
  constructor(
    private readonly data: Buffer,
    private readonly blksize: number,
  ) {}

  isLoaded(): boolean {
    return true
  }

  async load(): Promise<void> {}

  readBlock(index: number): Buffer {
    const start = index * this.blksize
    if (start > this.data.length) throw new RangeError(`block ${index} is past the end`)
    return this.data.subarray(start, Math.min(start + this.blksize, this.data.length))
  }
}

/** DATA packets of one kept file at one blksize, laid out back to back: block i at i × (blksize + 4). */
interface Framed {
  readonly blksize: number
  readonly packets: Buffer
}

/** Preformatted layouts kept per kept file (a storm asks the same few blksizes: 1432, 1468, 512). */
const MAX_LAYOUTS_PER_FILE = 4
const layouts = new WeakMap<Buffer, Framed[]>()

/**
 * An octet stream kept in memory with every DATA packet preformatted (RFC 1350
 * §5 header + block), built once per file version and blksize and shared by
 * every transfer of it: a lock-step block then costs the send, not an
 * allocation and a copy. Block numbers wrap modulo 2^16 as transfer.ts
 * `blockNumber` does (the header of block index i holds (i + 1) & 0xffff).
 * Memory: the file's size plus 4 octets per block, per layout (at most
 * MAX_LAYOUTS_PER_FILE); dropped with the kept file (WeakMap).
 */
export class PreformattedSource implements BlockSource {
  private constructor(
    private readonly f: Framed,
    private readonly size: number,
  ) {}

  static of(data: Buffer, blksize: number): PreformattedSource {
    let list = layouts.get(data)
    if (list === undefined) layouts.set(data, (list = []))
    let f = list.find((l) => l.blksize === blksize)
    if (f === undefined) {
      const count = Math.floor(data.length / blksize) + 1
      const packets = Buffer.allocUnsafeSlow(data.length + 4 * count)
      for (let i = 0; i < count; i++) {
        const o = i * (blksize + 4)
        packets.writeUInt16BE(3, o)
        packets.writeUInt16BE((i + 1) & 0xffff, o + 2)
        data.copy(packets, o + 4, i * blksize, Math.min((i + 1) * blksize, data.length))
      }
      f = { blksize, packets }
      if (list.length >= MAX_LAYOUTS_PER_FILE) list.shift()
      list.push(f)
    }
    return new PreformattedSource(f, data.length)
  }

  isLoaded(): boolean {
    return true
  }

  async load(): Promise<void> {}

  readBlock(index: number): Buffer {
    const { blksize, packets } = this.f
    const start = index * blksize
    if (start > this.size) throw new RangeError(`block ${index} is past the end`)
    const o = index * (blksize + 4) + 4
    return packets.subarray(o, o + Math.min(blksize, this.size - start))
  }

  framed(data: Buffer, block: number): Buffer | undefined {
    const { packets } = this.f
    if (data.buffer !== packets.buffer || data.byteOffset - packets.byteOffset < 4) return undefined
    const start = data.byteOffset - packets.byteOffset - 4
    if (packets.readUInt16BE(start + 2) !== block) return undefined
    return packets.subarray(start, start + 4 + data.length)
  }
}

/** Reads exactly `length` octets at `position` or throws (the file shrank). */
async function readExactly(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got)
    if (bytesRead === 0) throw Object.assign(new Error('file shrank during transfer'), { code: 'ESHRANK' })
    got += bytesRead
  }
  return buf
}

/**
 * Octet stream of a file, read in chunks of at least `chunkSize` octets; holds
 * one chunk (or one window, if larger) in memory.
 */
export class FileSource implements BlockSource {
  private buf: Buffer = Buffer.alloc(0)
  private bufStart = 0

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly blksize: number,
    private readonly chunkSize: number,
  ) {}

  private range(first: number, last: number): [number, number] {
    const start = Math.min(first * this.blksize, this.size)
    const end = Math.min((last + 1) * this.blksize, this.size)
    return [start, end]
  }

  isLoaded(first: number, last: number): boolean {
    const [start, end] = this.range(first, last)
    return start === end || (start >= this.bufStart && end <= this.bufStart + this.buf.length)
  }

  async load(first: number, last: number): Promise<void> {
    if (this.isLoaded(first, last)) return
    const [start, end] = this.range(first, last)
    const length = Math.min(Math.max(end - start, this.chunkSize), this.size - start)
    this.buf = await readExactly(this.fh, length, start)
    this.bufStart = start
  }

  readBlock(index: number): Buffer {
    const [start, end] = this.range(index, index)
    if (start === end) return Buffer.alloc(0)
    if (!this.isLoaded(index, index)) throw new RangeError(`block ${index} not loaded`)
    return this.buf.subarray(start - this.bufStart, end - this.bufStart)
  }
}

/**
 * netascii stream of a file (RFC 1350 §1): translated forward chunk by chunk;
 * keeps the translated octets from the start of the current window onward.
 */
export class NetasciiSource implements BlockSource {
  private out: Buffer = Buffer.alloc(0)
  private outStart = 0
  private srcPos = 0

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly blksize: number,
    private readonly chunkSize: number,
  ) {}

  private get eof(): boolean {
    return this.srcPos >= this.size
  }

  isLoaded(first: number, last: number): boolean {
    const start = first * this.blksize
    const end = (last + 1) * this.blksize
    return start >= this.outStart && (end <= this.outStart + this.out.length || this.eof)
  }

  async load(first: number, last: number): Promise<void> {
    const start = first * this.blksize
    const end = (last + 1) * this.blksize
    if (start < this.outStart) {
      this.out = Buffer.alloc(0)
      this.outStart = 0
      this.srcPos = 0
    }
    const drop = Math.min(start - this.outStart, this.out.length)
    this.out = this.out.subarray(drop)
    this.outStart += drop
    while (this.outStart + this.out.length < end && !this.eof) {
      const raw = await readExactly(this.fh, Math.min(this.chunkSize, this.size - this.srcPos), this.srcPos)
      this.srcPos += raw.length
      this.out = Buffer.concat([this.out, netasciiEncode(raw)])
    }
  }

  readBlock(index: number): Buffer {
    if (!this.isLoaded(index, index)) throw new RangeError(`block ${index} not loaded`)
    const s = index * this.blksize - this.outStart
    if (s > this.out.length) throw new RangeError(`block ${index} is past the end`)
    return this.out.subarray(s, Math.min(s + this.blksize, this.out.length))
  }
}
