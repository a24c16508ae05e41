/**
 * Serving one file from disk over HTTP with validators and byte ranges
 * (RFC 9110 §8.8, §13, §14, §15.3.7), from a fastify route handler:
 *
 *   app.get('/images/:digest', async (req, reply) =>
 *     sendFile(req, reply, { path: blobs.path(digest), etag: digest, contentType: 'application/octet-stream' }))
 *
 * GET and HEAD only. The caller names the file by absolute path (never built
 * from the URL here); it is opened once and every byte sent comes from that
 * descriptor, between offset 0 and the size fstat gives, so no request can
 * make it read anything else. Bodies stream with bounded memory (a read chunk
 * plus the socket's buffer); when the client goes away fastify destroys the
 * stream, which closes the file.
 *
 * The pure parts (Range parsing, precondition evaluation, entity-tag lists,
 * HTTP dates, multipart layout) are exported for table tests.
 */
import { NetbootError } from '../errors.js'
import { randomBytes } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'

// ---------------------------------------------------------------------------
// Range (RFC 9110 §14.1, §14.2)

/** An inclusive byte range, within the representation. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

export type RangeDecision =
  /** No Range field: send the whole representation. */
  | { readonly kind: 'none' }
  /** A Range field the server ignores (§14.2): send the whole representation with 200. */
  | { readonly kind: 'ignored'; readonly reason: string }
  /** Valid, but no range overlaps the representation (§14.1.2, §15.5.17): 416. */
  | { readonly kind: 'unsatisfiable' }
  /** 206: one or more ranges, coalesced, in the order first requested. */
  | { readonly kind: 'ranges'; readonly ranges: readonly ByteRange[] }

/** Range-specs accepted in one field; more are ignored as §14.2 permits (a broken client or a denial of service). */
export const MAX_RANGES = 32

const OWS = /^[ \t]*|[ \t]*$/g
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const INT_RANGE = /^([0-9]+)-([0-9]*)$/
const SUFFIX_RANGE = /^-([0-9]+)$/

/**
 * Decides what a Range field asks of a representation of `size` bytes.
 *
 *  - Grammar (§14.1.1, §14.1.2): `range-unit "=" 1#range-spec`, the unit
 *    case-insensitive; OWS only around the commas of the list; empty list
 *    elements are skipped (§5.6.1.2). Positions are compared exactly, however
 *    many digits they have.
 *  - An unknown unit is ignored (§14.2 "MUST ignore"); so is a field that does
 *    not match the grammar, or holds an int-range whose last-pos is below its
 *    first-pos (an invalid ranges-specifier, §14.1.1; §14.2 lets the server
 *    ignore it), or more than `maxRanges` range-specs (§14.2).
 *  - Satisfiable (§14.1.2): an int-range whose first-pos is below the size
 *    (last-pos clamped to size − 1), or a suffix-range with a non-zero length
 *    (clamped to the whole representation). Unsatisfiable specs are dropped; if
 *    none is left, 416.
 *  - Overlapping and adjacent ranges are coalesced (§15.3.7.2 MAY; it also
 *    defuses `bytes=0-,0-,0-…`), in the order they were first requested
 *    (§15.3.7.2 SHOULD). One range left is sent as a single part (§15.3.7.1),
 *    never as a one-part multipart body.
 *  - A zero-length representation has no byte to point at (a Content-Range
 *    cannot say `bytes 0--1/0`), so Range is ignored and the empty 200 is sent.
 */
export function parseRange (field: string | undefined, size: number, maxRanges: number = MAX_RANGES): RangeDecision {
  if (field === undefined) return { kind: 'none' }
  const eq = field.indexOf('=')
  if (eq < 0) return { kind: 'ignored', reason: 'no range unit' }
  const unit = field.slice(0, eq)
  if (!TOKEN.test(unit)) return { kind: 'ignored', reason: 'malformed range unit' }
  if (unit.toLowerCase() !== 'bytes') return { kind: 'ignored', reason: `unknown range unit ${unit}` }
  const elements = field.slice(eq + 1).split(',').map((e) => e.replace(OWS, '')).filter((e) => e !== '')
  if (elements.length === 0) return { kind: 'ignored', reason: 'empty range set' }
  if (elements.length > maxRanges) return { kind: 'ignored', reason: `more than ${maxRanges} ranges` }
  const big = BigInt(size)
  const satisfiable: { start: bigint; end: bigint; order: number }[] = []
  for (const [order, e] of elements.entries()) {
    const int = INT_RANGE.exec(e)
    if (int !== null) {
      const first = BigInt(int[1]!)
      const last = int[2] === '' ? undefined : BigInt(int[2]!)
      if (last !== undefined && last < first) return { kind: 'ignored', reason: `invalid range ${e}: last-pos below first-pos` }
      if (first < big) satisfiable.push({ start: first, end: last === undefined || last >= big ? big - 1n : last, order })
      continue
    }
    const suffix = SUFFIX_RANGE.exec(e)
    if (suffix !== null) {
      const length = BigInt(suffix[1]!)
      if (length > 0n && big > 0n) satisfiable.push({ start: length >= big ? 0n : big - length, end: big - 1n, order })
      continue
    }
    return { kind: 'ignored', reason: `malformed range-spec ${JSON.stringify(e.slice(0, 40))}` }
  }
  if (size === 0) return { kind: 'ignored', reason: 'zero-length representation' }
  if (satisfiable.length === 0) return { kind: 'unsatisfiable' }
  return { kind: 'ranges', ranges: coalesce(satisfiable) }
}

function coalesce (ranges: { start: bigint; end: bigint; order: number }[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.order - b.order))
  const merged: { start: bigint; end: bigint; order: number }[] = []
  for (const r of sorted) {
    const last = merged[merged.length - 1]
    if (last !== undefined && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end
      if (r.order < last.order) last.order = r.order
    } else {
      merged.push({ ...r })
    }
  }
  return merged.sort((a, b) => a.order - b.order).map((r) => ({ start: Number(r.start), end: Number(r.end) }))
}

// ---------------------------------------------------------------------------
// Entity tags and dates (RFC 9110 §8.8.3, §5.6.7)

export interface EntityTag {
  readonly weak: boolean
  readonly opaque: string
}

/** `*` or a list of entity-tags (§13.1.1, §13.1.2); undefined when the field does not parse. */
export function parseEntityTags (field: string): { readonly any: true } | { readonly any: false; readonly tags: readonly EntityTag[] } | undefined {
  const s = field.trim()
  if (s === '*') return { any: true }
  const tags: EntityTag[] = []
  let i = 0
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++
    if (i >= s.length) break
    let weak = false
    if (s.startsWith('W/', i)) {
      weak = true
      i += 2
    }
    if (s[i] !== '"') return undefined
    const close = s.indexOf('"', i + 1)
    if (close < 0) return undefined
    const opaque = s.slice(i + 1, close)
    if (!ETAGC.test(opaque)) return undefined
    tags.push({ weak, opaque })
    i = close + 1
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++
    if (i < s.length && s[i] !== ',') return undefined
  }
  return tags.length === 0 ? undefined : { any: false, tags }
}

/** etagc = %x21 / %x23-7E / obs-text (§8.8.3); obs-text is not accepted from callers or clients. */
const ETAGC = /^[\x21\x23-\x7e]*$/

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const RFC850 = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/**
 * An HTTP-date (§5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms)
 * in milliseconds since the epoch; undefined for anything else.
 */
export function parseHttpDate (s: string): number | undefined {
  let day: number, month: number, year: number, h: number, m: number, sec: number
  let r = IMF_FIXDATE.exec(s)
  if (r !== null) {
    [day, month, year, h, m, sec] = [Number(r[1]), MONTHS.indexOf(r[2]!), Number(r[3]), Number(r[4]), Number(r[5]), Number(r[6])]
  } else if ((r = RFC850.exec(s)) !== null) {
    // §5.6.7: a two-digit year more than 50 years in the future is in the past century
    const yy = Number(r[3])
    const nowYear = new Date().getUTCFullYear()
    year = 2000 + yy > nowYear + 50 ? 1900 + yy : 2000 + yy;
    [day, month, h, m, sec] = [Number(r[1]), MONTHS.indexOf(r[2]!), Number(r[4]), Number(r[5]), Number(r[6])]
  } else if ((r = ASCTIME.exec(s)) !== null) {
    [month, day, h, m, sec, year] = [MONTHS.indexOf(r[1]!), Number(r[2]!.trim()), Number(r[3]), Number(r[4]), Number(r[5]), Number(r[6])]
  } else {
    return undefined
  }
  if (day < 1 || day > 31 || h > 23 || m > 59 || sec > 60) return undefined
  const t = Date.UTC(year, month, day, h, m, Math.min(sec, 59))
  return new Date(t).getUTCDate() === day ? t : undefined
}

/** IMF-fixdate (§5.6.7) of a time, to the second. */
export function formatHttpDate (t: Date | number): string {
  return new Date(t).toUTCString()
}

// ---------------------------------------------------------------------------
// Preconditions (RFC 9110 §13.2.2)

export interface Validators {
  /** Strong entity-tag, opaque part (no quotes). */
  readonly etag?: string
  /** Last-Modified, in ms since the epoch. */
  readonly lastModified?: number
}

export interface ConditionalFields {
  readonly ifMatch?: string
  readonly ifNoneMatch?: string
  readonly ifModifiedSince?: string
  readonly ifUnmodifiedSince?: string
}

export type PreconditionOutcome = 'proceed' | 'not-modified' | 'precondition-failed'

/**
 * §13.2.2 steps 1–4 for GET and HEAD of an existing representation:
 *  1. If-Match: false → 412 (strong comparison, §13.1.1; `*` is true).
 *  2. else If-Unmodified-Since (valid date, Last-Modified known): false → 412.
 *  3. If-None-Match: false → 304 (weak comparison, §13.1.2; `*` is false).
 *  4. else If-Modified-Since (valid date, Last-Modified known): not modified → 304.
 * A field that does not parse counts as not matching.
 */
export function evaluatePreconditions (f: ConditionalFields, v: Validators): PreconditionOutcome {
  const lastModified = v.lastModified === undefined ? undefined : Math.floor(v.lastModified / 1000) * 1000
  if (f.ifMatch !== undefined) {
    const list = parseEntityTags(f.ifMatch)
    const ok = list !== undefined && (list.any || (v.etag !== undefined && list.tags.some((t) => !t.weak && t.opaque === v.etag)))
    if (!ok) return 'precondition-failed'
  } else if (f.ifUnmodifiedSince !== undefined && lastModified !== undefined) {
    const d = parseHttpDate(f.ifUnmodifiedSince)
    if (d !== undefined && lastModified > d) return 'precondition-failed'
  }
  if (f.ifNoneMatch !== undefined) {
    const list = parseEntityTags(f.ifNoneMatch)
    const matches = list !== undefined && (list.any || (v.etag !== undefined && list.tags.some((t) => t.opaque === v.etag)))
    if (matches) return 'not-modified'
  } else if (f.ifModifiedSince !== undefined && lastModified !== undefined) {
    const d = parseHttpDate(f.ifModifiedSince)
    if (d !== undefined && lastModified <= d) return 'not-modified'
  }
  return 'proceed'
}

/**
 * If-Range (§13.1.5): true when the Range may be honoured. An entity-tag must
 * match strongly; a date must equal Last-Modified exactly, and only if
 * Last-Modified is strong (at least one second before now, §8.8.2.2).
 * Anything else (weak tag, unparsable value) is false: send the whole
 * representation.
 */
export function ifRangeHolds (field: string | undefined, v: Validators, now: number = Date.now()): boolean {
  if (field === undefined) return true
  const s = field.trim()
  if (s.startsWith('"') || s.startsWith('W/')) {
    const list = parseEntityTags(s)
    if (list === undefined || list.any || list.tags.length !== 1) return false
    const tag = list.tags[0]!
    return !tag.weak && v.etag !== undefined && tag.opaque === v.etag
  }
  const d = parseHttpDate(s)
  if (d === undefined || v.lastModified === undefined) return false
  const lm = Math.floor(v.lastModified / 1000) * 1000
  return now - lm >= 1000 && d === lm
}

// ---------------------------------------------------------------------------
// multipart/byteranges (RFC 9110 §14.6)

export interface MultipartLayout {
  readonly contentType: string
  readonly length: number
  readonly parts: readonly { readonly head: string; readonly range: ByteRange }[]
  readonly tail: string
}

/**
 * The body of a multipart/byteranges 206: each part a delimiter, its
 * Content-Type and Content-Range, and the bytes; the total length is exact, so
 * the response carries Content-Length.
 */
export function multipartLayout (ranges: readonly ByteRange[], size: number, contentType: string, boundary: string): MultipartLayout {
  const parts = ranges.map((range) => ({
    head: `\r\n--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: bytes ${range.start}-${range.end}/${size}\r\n\r\n`,
    range,
  }))
  const tail = `\r\n--${boundary}--\r\n`
  const length = parts.reduce((n, p) => n + Buffer.byteLength(p.head) + (p.range.end - p.range.start + 1), 0) + Buffer.byteLength(tail)
  return { contentType: `multipart/byteranges; boundary=${boundary}`, length, parts, tail }
}

// ---------------------------------------------------------------------------
// sendFile

export interface SendFileOptions {
  /** Absolute path of a regular file, chosen by the caller (e.g. BlobStore.path). */
  readonly path: string
  /** Expected size; if the file on disk differs, FILE_SIZE_MISMATCH (500) and nothing is sent. */
  readonly size?: number
  /** Strong entity-tag, without quotes: must change whenever the bytes do (the sha256 for blobs). */
  readonly etag?: string
  /** Default application/octet-stream. */
  readonly contentType?: string
  /** Sent as Last-Modified and used by If-Modified-Since / If-Unmodified-Since / If-Range. */
  readonly mtime?: Date
  /** Sent as Cache-Control on 200, 206 and 304. */
  readonly cacheControl?: string
  /** Bytes per disk read while streaming; default DEFAULT_CHUNK. */
  readonly highWaterMark?: number
  /** Range-specs accepted per request; default MAX_RANGES. */
  readonly maxRanges?: number
}

/** Read size while streaming (bench/http/send-file-bench.ts measured 64 KiB, 256 KiB, 1 MiB and 4 MiB). */
export const DEFAULT_CHUNK = 1024 * 1024

/**
 * Answers GET or HEAD with the file: 200, 206 (single range or
 * multipart/byteranges), 304, 412 or 416, with Accept-Ranges, ETag,
 * Last-Modified and Cache-Control as given. 412 and 416 carry a JSON error body
 * with the codes PRECONDITION_FAILED and RANGE_NOT_SATISFIABLE.
 *
 * Resolves once the response is complete or the client has gone, so an async
 * handler can `return sendFile(…)` (or `await` it and `return reply`), as
 * fastify requires of handlers that send themselves. Rejects, with nothing
 * sent, on NetbootError or an I/O error before the first byte.
 */
export async function sendFile (req: FastifyRequest, reply: FastifyReply, o: SendFileOptions): Promise<void> {
  const body = await prepare(req, reply, o)
  reply.send(body)
  await new Promise<void>((resolve) => {
    // rejects only for a stream error, which fastify has already logged and answered by closing the connection
    reply.then(resolve, () => resolve())
  })
}

async function prepare (req: FastifyRequest, reply: FastifyReply, o: SendFileOptions): Promise<Readable | string> {
  const method = req.method
  if (method !== 'GET' && method !== 'HEAD') throw new TypeError(`sendFile serves GET and HEAD, not ${method}`)
  if (!isAbsolute(o.path)) throw new TypeError(`sendFile needs an absolute path, got ${o.path}`)
  if (o.etag !== undefined && (o.etag === '' || !ETAGC.test(o.etag))) throw new TypeError(`not an entity-tag: ${o.etag}`)
  const hwm = o.highWaterMark ?? DEFAULT_CHUNK
  if (!Number.isSafeInteger(hwm) || hwm < 1024 || hwm > 64 * 1024 * 1024) throw new TypeError(`highWaterMark out of range: ${hwm}`)

  let fh: FileHandle | undefined
  try {
    try {
      fh = await open(o.path, 'r')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw new NetbootError('FILE_NOT_FOUND', 'file not found')
      throw err
    }
    const st = await fh.stat()
    if (!st.isFile()) throw new NetbootError('FILE_NOT_FOUND', 'not a regular file')
    const size = st.size
    if (o.size !== undefined && o.size !== size) throw new NetbootError('FILE_SIZE_MISMATCH', `file is ${size} bytes, expected ${o.size}`)

    const validators: Validators = { etag: o.etag, lastModified: o.mtime?.getTime() }
    const contentType = o.contentType ?? 'application/octet-stream'
    if (o.etag !== undefined) void reply.header('etag', `"${o.etag}"`)
    if (o.cacheControl !== undefined) void reply.header('cache-control', o.cacheControl)

    const pre = evaluatePreconditions({
      ifMatch: header(req, 'if-match'),
      ifNoneMatch: header(req, 'if-none-match'),
      ifModifiedSince: header(req, 'if-modified-since'),
      ifUnmodifiedSince: header(req, 'if-unmodified-since'),
    }, validators)
    if (pre === 'not-modified') {
      // §15.4.5: ETag and Cache-Control as a 200 would have; Last-Modified only without an ETag
      if (o.etag === undefined && o.mtime !== undefined) void reply.header('last-modified', formatHttpDate(o.mtime))
      void reply.code(304)
      return emptyBody()
    }
    if (o.mtime !== undefined) void reply.header('last-modified', formatHttpDate(o.mtime))
    void reply.header('accept-ranges', 'bytes')
    if (pre === 'precondition-failed') {
      void reply.code(412).type('application/json; charset=utf-8')
      return JSON.stringify({ error: { code: 'PRECONDITION_FAILED', message: 'a precondition (If-Match / If-Unmodified-Since) does not hold' } })
    }

    // §14.2: Range is defined for GET only; §13.1.5: If-Range only with Range
    const rangeField = method === 'GET' ? header(req, 'range') : undefined
    const range = rangeField !== undefined && ifRangeHolds(header(req, 'if-range'), validators)
      ? parseRange(rangeField, size, o.maxRanges ?? MAX_RANGES)
      : { kind: 'none' as const }

    if (range.kind === 'unsatisfiable') {
      void reply.code(416).header('content-range', `bytes */${size}`).type('application/json; charset=utf-8')
      return JSON.stringify({ error: { code: 'RANGE_NOT_SATISFIABLE', message: `no requested range overlaps the ${size} bytes of the file` } })
    }

    if (range.kind !== 'ranges') {
      void reply.code(200).header('content-length', String(size)).type(contentType)
      if (method === 'HEAD' || size === 0) return emptyBody()
      const body = new FileBody(fh, [{ start: 0, end: size - 1 }], hwm)
      fh = undefined
      return body
    }

    if (range.ranges.length === 1) {
      const r = range.ranges[0]!
      void reply.code(206).header('content-range', `bytes ${r.start}-${r.end}/${size}`)
        .header('content-length', String(r.end - r.start + 1)).type(contentType)
      const body = new FileBody(fh, [r], hwm)
      fh = undefined
      return body
    }

    const layout = multipartLayout(range.ranges, size, contentType, `netboot-${randomBytes(12).toString('hex')}`)
    void reply.code(206).header('content-length', String(layout.length)).type(layout.contentType)
    const segments: Segment[] = []
    for (const p of layout.parts) segments.push(Buffer.from(p.head, 'latin1'), p.range)
    segments.push(Buffer.from(layout.tail, 'latin1'))
    const body = new FileBody(fh, segments, hwm)
    fh = undefined
    return body
  } finally {
    if (fh !== undefined) await fh.close()
  }
}

function header (req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

/**
 * A body of no bytes that fastify treats as a stream: it leaves our
 * Content-Length alone, also on the HEAD routes fastify adds to GET routes
 * (whose onSend would otherwise set Content-Length: 0, or read a file stream to
 * the end to discard it).
 */
function emptyBody (): Readable {
  return new Readable({ read () { this.push(null) } })
}

/** A piece of a response body: literal bytes, or an inclusive byte range of the file. */
type Segment = Buffer | ByteRange

/**
 * A response body made of file ranges and literal bytes (a plain 200, a single
 * range, or multipart/byteranges), read from the open file on demand. Owns the
 * file handle: closes it at the end or when destroyed (client gone), even
 * before the first read.
 *
 * `pipe(dest)` (what fastify does with a stream body) does not go through the
 * Readable machinery: it reads the file into two buffers allocated once per
 * response and writes them to `dest` in turn, reusing a buffer only after the
 * write that carried it has completed (its write callback), so at most two
 * chunks are in flight and nothing is allocated per chunk. A fresh 1 MiB
 * buffer per chunk (as fs.ReadStream does) made V8 run a full collection every
 * 50–64 MiB once those buffers were tenured, halving throughput with 8 clients
 * (docs/bench-chainload.md). Any other consumer (`read()`, `'data'`) gets a
 * fresh buffer per chunk through `_read`.
 */
class FileBody extends Readable {
  readonly #segments: readonly Segment[]
  #seg = 0
  #pos = -1
  #busy = false
  #pumping = false
  /** Wakes the pump when a write completes or the body is destroyed. */
  #wake: (() => void) | undefined

  constructor (private readonly fh: FileHandle, segments: readonly Segment[], private readonly hwm: number) {
    super({ highWaterMark: hwm })
    this.#segments = segments
  }

  override pipe<T extends NodeJS.WritableStream> (dest: T, options?: { end?: boolean }): T {
    if (this.#pumping || this.#seg !== 0 || this.#pos !== -1 || this.readableFlowing !== null) return super.pipe(dest, options)
    this.#pumping = true
    this.#pump(dest, options?.end !== false).then(() => {
      if (this.destroyed) return
      // no data went through the Readable buffer: ending it emits 'end' at once (then autoDestroy closes the file)
      this.push(null)
      this.resume()
    }, (err: unknown) => { this.destroy(err as Error) })
    return dest
  }

  async #pump (dest: NodeJS.WritableStream, end: boolean): Promise<void> {
    let largest = 0
    for (const s of this.#segments) if (!Buffer.isBuffer(s)) largest = Math.max(largest, s.end - s.start + 1)
    const size = Math.min(this.hwm, largest)
    const bufs = size === 0 ? [] : [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)]
    const inFlight = [false, false]
    const written = (k: number) => () => {
      inFlight[k] = false
      const w = this.#wake
      this.#wake = undefined
      w?.()
    }
    let k = 0
    for (const s of this.#segments) {
      if (this.destroyed) return
      if (Buffer.isBuffer(s)) {
        dest.write(s)
        continue
      }
      for (let pos = s.start; pos <= s.end;) {
        while (inFlight[k] === true && !this.destroyed) await new Promise<void>((resolve) => { this.#wake = resolve })
        if (this.destroyed) return
        const buf = bufs[k]!
        const want = Math.min(size, s.end - pos + 1)
        const { bytesRead } = await this.fh.read(buf, 0, want, pos)
        if (this.destroyed) return
        if (bytesRead === 0) throw new Error('file shrank while being sent')
        inFlight[k] = true
        dest.write(bytesRead === size ? buf : buf.subarray(0, bytesRead), written(k))
        pos += bytesRead
        k ^= 1
      }
    }
    if (end) dest.end()
  }

  override _read (): void {
    if (this.#busy || this.#pumping) return
    this.#busy = true
    this.#next().then((chunk) => {
      this.#busy = false
      this.push(chunk)
    }, (err: unknown) => {
      this.#busy = false
      this.destroy(err as Error)
    })
  }

  async #next (): Promise<Buffer | null> {
    for (;;) {
      const s = this.#segments[this.#seg]
      if (s === undefined) return null
      if (Buffer.isBuffer(s)) {
        this.#seg++
        return s
      }
      if (this.#pos < 0) this.#pos = s.start
      if (this.#pos > s.end) {
        this.#seg++
        this.#pos = -1
        continue
      }
      const want = Math.min(this.hwm, s.end - this.#pos + 1)
      const buf = Buffer.allocUnsafe(want)
      const { bytesRead } = await this.fh.read(buf, 0, want, this.#pos)
      if (bytesRead === 0) throw new Error('file shrank while being sent')
      this.#pos += bytesRead
      return bytesRead === want ? buf : buf.subarray(0, bytesRead)
    }
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
    this.fh.close().then(() => cb(err), () => cb(err))
  }
}
