/**
 * Content-addressed blob store for image files (kernels, initrds, squashfs root
 * file systems): a blob lives at `<root>/sha256/<first two hex digits>/<digest>`
 * and its name is the SHA-256 of its bytes.
 *
 * Contract:
 *  - add copies through a streaming hash with bounded memory (one read chunk in
 *    flight), into `<root>/tmp/` on the same file system, fsyncs the file,
 *    renames it into place and fsyncs the directory. A blob path therefore only
 *    ever shows complete content; a crash or a failed copy leaves at most a
 *    temporary file, which add removes on failure and sweepTemp removes after a
 *    crash. (The temporary file cannot sit in the blob's own directory: that is
 *    named by the digest, known only once the copy is done. Any directory on the
 *    same file system makes rename(2) atomic.)
 *  - identical content is stored once: adding it again returns `added: false`.
 *  - blobs are written read-only (0444): nothing rewrites them in place.
 *  - every digest taken from a caller must be exactly 64 lower-case hex digits
 *    (IMAGE_DIGEST_INVALID otherwise), so no input can name a path outside the
 *    store.
 *  - stat results of blobs found are kept per digest (a blob never changes under
 *    its name), so serving an image costs no stat(2) per request; remove() forgets
 *    the digest. A blob deleted behind the store's back (by hand, or by another
 *    process on the same directory) stays "found" in this process until restart;
 *    opening it then fails as for any vanished file. Misses are not kept: a blob
 *    added later (by another process) is found at once.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { ReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { NetbootError } from '../errors.js'

const DIGEST = /^[0-9a-f]{64}$/
const PREFIX = /^[0-9a-f]{2}$/
const TEMP = /^\.?add-[0-9a-f]{16}\.part$/
/** Read size when copying a file in: large enough for disk throughput, small enough to bound memory. */
const COPY_CHUNK = 1024 * 1024
/** Digests whose stat is kept (about 100 octets each). */
const STAT_CACHE_MAX = 65_536

export interface BlobInfo {
  /** 64 lower-case hex digits. */
  readonly sha256: string
  readonly size: number
}

export interface AddResult extends BlobInfo {
  /** False when a blob with this content was already stored. */
  readonly added: boolean
}

export interface AddProgress {
  readonly bytes: number
  /** Known when adding a file, or when the caller gave `size`. */
  readonly total: number | undefined
}

export type ProgressCallback = (p: AddProgress) => void

export interface AddOptions {
  readonly onProgress?: ProgressCallback
  /** Minimum milliseconds between progress calls (default 200); the final call is always made. */
  readonly progressIntervalMs?: number
  /** Refuse the content (BLOB_DIGEST_MISMATCH, nothing stored) unless it hashes to this digest. */
  readonly expectSha256?: string
  /** Aborting stops the copy and removes the temporary file. */
  readonly signal?: AbortSignal
}

export interface AddStreamOptions extends AddOptions {
  /** Expected size, for progress only. */
  readonly size?: number
}

/** The hex digest of `sha256:<hex>` or `<hex>`, or undefined unless it is 64 lower-case hex digits. */
export function parseDigest (s: string): string | undefined {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s
  return DIGEST.test(hex) ? hex : undefined
}

export function isDigest (s: string): boolean {
  return DIGEST.test(s)
}

function checkDigest (digest: string): string {
  if (typeof digest !== 'string' || !DIGEST.test(digest)) {
    throw new NetbootError('IMAGE_DIGEST_INVALID', `not a sha256 digest (64 lower-case hex digits): ${JSON.stringify(String(digest).slice(0, 80))}`)
  }
  return digest
}

export class BlobStore {
  readonly #blobs: string
  readonly #tmp: string
  /** Found blobs, by digest; insertion-ordered, the oldest dropped past STAT_CACHE_MAX. */
  readonly #found = new Map<string, BlobInfo>()

  constructor (readonly root: string) {
    this.#blobs = join(root, 'sha256')
    this.#tmp = join(root, 'tmp')
  }

  /** Creates the directories and removes temporary files a crash left behind more than an hour ago. */
  async init (): Promise<void> {
    await mkdir(this.#blobs, { recursive: true })
    await mkdir(this.#tmp, { recursive: true })
    await this.sweepTemp(60 * 60 * 1000)
  }

  /** Where the blob with this digest lives (whether or not it exists). */
  path (digest: string): string {
    const d = checkDigest(digest)
    return join(this.#blobs, d.slice(0, 2), d)
  }

  async has (digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined
  }

  async stat (digest: string): Promise<BlobInfo | undefined> {
    const known = this.#found.get(digest)
    if (known !== undefined) return known
    try {
      const s = await stat(this.path(digest))
      if (!s.isFile()) return undefined
      const info = { sha256: digest, size: s.size }
      if (this.#found.size >= STAT_CACHE_MAX) this.#found.delete(this.#found.keys().next().value!)
      this.#found.set(digest, info)
      return info
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /** Copies a regular file into the store. The source is read once. */
  async add (srcPath: string, options: AddOptions | ProgressCallback = {}): Promise<AddResult> {
    const o: AddOptions = typeof options === 'function' ? { onProgress: options } : options
    let fh: FileHandle
    try {
      fh = await open(srcPath, 'r')
    } catch (err) {
      throw new NetbootError('BLOB_SOURCE_INVALID', `cannot open ${srcPath}: ${(err as Error).message}`)
    }
    try {
      const s = await fh.stat()
      if (!s.isFile()) throw new NetbootError('BLOB_SOURCE_INVALID', `${srcPath} is not a regular file`)
      const source = fh.createReadStream({ highWaterMark: COPY_CHUNK, autoClose: false })
      return await this.addStream(source, { ...o, size: s.size })
    } finally {
      await fh.close()
    }
  }

  /** Stores the bytes of `source` (a file stream, an HTTP upload). */
  async addStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, o: AddStreamOptions = {}): Promise<AddResult> {
    const expect = o.expectSha256 === undefined ? undefined : checkDigest(o.expectSha256)
    o.signal?.throwIfAborted()
    await mkdir(this.#tmp, { recursive: true })
    const tmpPath = join(this.#tmp, `add-${randomBytes(8).toString('hex')}.part`)
    const out = await open(tmpPath, 'wx', 0o600)
    let closed = false
    let renamed = false
    try {
      const hash = createHash('sha256')
      const progress = throttle(o.onProgress, o.progressIntervalMs ?? 200)
      let bytes = 0
      for await (const chunk of source) {
        o.signal?.throwIfAborted()
        hash.update(chunk)
        await writeAll(out, chunk)
        bytes += chunk.byteLength
        progress({ bytes, total: o.size }, false)
      }
      o.signal?.throwIfAborted()
      await out.chmod(0o444)
      await out.sync()
      await out.close()
      closed = true
      const sha256 = hash.digest('hex')
      if (expect !== undefined && sha256 !== expect) {
        throw new NetbootError('BLOB_DIGEST_MISMATCH', `content hashes to sha256:${sha256}, expected sha256:${expect}`)
      }
      const final = this.path(sha256)
      const existing = await stat(final).catch((err: unknown) => { if (isNotFound(err)) return undefined; throw err })
      let added = false
      if (existing === undefined || !existing.isFile() || existing.size !== bytes) {
        const created = await mkdir(join(this.#blobs, sha256.slice(0, 2)), { recursive: true })
        if (created !== undefined) await fsyncDir(this.#blobs)
        await rename(tmpPath, final)
        renamed = true
        await fsyncDir(join(this.#blobs, sha256.slice(0, 2)))
        added = true
      }
      progress({ bytes, total: o.size ?? bytes }, true)
      return { sha256, size: bytes, added }
    } finally {
      if (!closed) await out.close().catch(() => {})
      if (!renamed) await unlink(tmpPath).catch(() => {})
    }
  }

  /** Opens a blob for reading; the caller closes the handle. */
  async open (digest: string): Promise<{ handle: FileHandle; size: number }> {
    const p = this.path(digest)
    let handle: FileHandle
    try {
      handle = await open(p, 'r')
    } catch (err) {
      if (isNotFound(err)) throw new NetbootError('BLOB_NOT_FOUND', `no blob sha256:${digest}`)
      throw err
    }
    const s = await handle.stat()
    return { handle, size: s.size }
  }

  /** A read stream over the blob, or a byte range of it (`end` inclusive, as fs.createReadStream). */
  async createReadStream (digest: string, opts: { start?: number; end?: number; highWaterMark?: number } = {}): Promise<ReadStream> {
    const { handle } = await this.open(digest)
    return handle.createReadStream({ ...opts, autoClose: true })
  }

  /** Deletes a blob; false if there was none. Whether an image still uses it is the caller's question. */
  async remove (digest: string): Promise<boolean> {
    const p = this.path(digest)
    this.#found.delete(digest)
    try {
      await unlink(p)
    } catch (err) {
      if (isNotFound(err)) return false
      throw err
    }
    await fsyncDir(join(this.#blobs, digest.slice(0, 2)))
    return true
  }

  /** Every blob, sorted by digest. Stray files are not blobs and are not listed. */
  async list (): Promise<BlobInfo[]> {
    const out: BlobInfo[] = []
    for (const prefix of (await readdirOrEmpty(this.#blobs)).filter((n) => PREFIX.test(n)).sort()) {
      for (const name of (await readdirOrEmpty(join(this.#blobs, prefix))).filter((n) => DIGEST.test(n) && n.startsWith(prefix)).sort()) {
        const info = await this.stat(name)
        if (info !== undefined) out.push(info)
      }
    }
    return out
  }

  /** Re-reads a blob and checks that it still hashes to its name (bit rot, tampering). */
  async verify (digest: string): Promise<boolean> {
    const s = await this.createReadStream(digest, { highWaterMark: COPY_CHUNK })
    const hash = createHash('sha256')
    for await (const chunk of s) hash.update(chunk as Buffer)
    return hash.digest('hex') === digest
  }

  /** Removes temporary files of adds that never finished, if older than `olderThanMs`. Returns how many. */
  async sweepTemp (olderThanMs: number): Promise<number> {
    let n = 0
    const now = Date.now()
    for (const name of await readdirOrEmpty(this.#tmp)) {
      if (!TEMP.test(name)) continue
      const p = join(this.#tmp, name)
      try {
        const s = await stat(p)
        if (now - s.mtimeMs >= olderThanMs) {
          await unlink(p)
          n++
        }
      } catch (err) {
        if (!isNotFound(err)) throw err
      }
    }
    return n
  }
}

async function writeAll (fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off)
    off += bytesWritten
  }
}

async function fsyncDir (dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

async function readdirOrEmpty (dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (isNotFound(err)) return []
    throw err
  }
}

function isNotFound (err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
}

function throttle (cb: ProgressCallback | undefined, intervalMs: number): (p: AddProgress, final: boolean) => void {
  let last = 0
  return (p, final) => {
    if (cb === undefined) return
    const now = Date.now()
    if (final || now - last >= intervalMs) {
      last = now
      cb(p)
    }
  }
}
