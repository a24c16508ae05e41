/**
 * Step `rootfs`: download the squashfs root image from the attested URL into the
 * work directory (a tmpfs: the initramfs /run), resuming after interruptions, and
 * verify it against the attested SHA-256 before anything uses it.
 *
 *  - Resume: after a cut connection the next request asks for the rest,
 *    `Range: bytes=<have>-` (RFC 9110 §14.2) with `If-Range: <ETag>` (§13.1.5) so a
 *    changed file comes back whole (200) instead of spliced; a 206 must start at
 *    the offset asked for (Content-Range, §14.4), else the download starts over.
 *  - Retries: bounded, with full jitter ("Exponential Backoff And Jitter"): after
 *    a mass reboot thousands of nodes retry spread over the window instead of in
 *    waves. An attempt that brought bytes resets the count: a slow, flaky link
 *    finishes; a dead one gives up after `attempts` tries without progress.
 *  - Stalls: a body that sends nothing for `idleTimeoutMs` is abandoned and resumed.
 *  - Integrity: SHA-256 (and SHA-1, for a TPM whose SHA-1 bank is active) are
 *    computed over exactly the bytes written, as they are written; a mismatch
 *    deletes the file and fails for good (AGENT_ROOTFS_DIGEST_MISMATCH): an
 *    unverified image is never left where the mount step could find it.
 */
import { createHash, type Hash } from 'node:crypto'
import { open, rename, rm, statfs, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { fullJitter, secs, type Backoff, type Clock, type Random } from '../backoff.js'
import { AgentError } from '../errors.js'
import { describeFetchError, isBusy, parseRetryAfter, type FetchFn } from '../http.js'
import { mib, type AgentLog } from '../log.js'

export interface DownloadPolicy {
  /** Consecutive tries without a byte of progress before giving up. */
  readonly attempts: number
  readonly backoff: Backoff
  /** Until the response headers arrive (ms). */
  readonly headersTimeoutMs: number
  /** Longest silence inside a body (ms). */
  readonly idleTimeoutMs: number
}

export interface RootfsDeps {
  readonly fetch: FetchFn
  readonly clock: Clock
  readonly random: Random
  readonly log: AgentLog
}

export interface VerifiedImage {
  /** The verified file: `<workDir>/rootfs.squashfs`. */
  readonly path: string
  readonly size: number
  readonly sha256: Buffer
  readonly sha1: Buffer
  /** Requests that continued a partial download. */
  readonly resumes: number
  readonly elapsedMs: number
}

/** Name of the verified image in the work directory. */
export const IMAGE_FILE = 'rootfs.squashfs'
const PART_SUFFIX = '.part'
/** Room left free in the work directory beyond the image itself. */
const SPACE_MARGIN = 16 * 1024 * 1024
/** A server's Retry-After is honoured up to this long. */
const MAX_RETRY_AFTER_MS = 300_000

/** A failed try that the next one may fix. */
class Attempt extends Error {
  constructor (message: string, readonly retryAfterMs?: number) {
    super(message)
  }
}

/** `bytes START-END/TOTAL` → its numbers (RFC 9110 §14.4). */
export function parseContentRange (v: string | null): { start: number; end: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(v?.trim() ?? '')
  if (m === null) return undefined
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (!Number.isSafeInteger(total) || start > end || end >= total) return undefined
  return { start, end, total }
}

export async function downloadRootfs (d: RootfsDeps, workDir: string, want: { url: string; sha256: string }, p: DownloadPolicy): Promise<VerifiedImage> {
  const { log, clock } = d
  const final = join(workDir, IMAGE_FILE)
  const part = final + PART_SUFFIX
  await rm(final, { force: true })
  const fh = await open(part, 'w', 0o600)
  const t0 = clock.now()
  let offset = 0
  let total: number | undefined
  let etag: string | undefined
  let sha256: Hash = createHash('sha256')
  let sha1: Hash = createHash('sha1')
  let resumes = 0
  let failures = 0
  let startedLine = false

  const restart = async (why: string): Promise<void> => {
    if (offset > 0) log.warn('rootfs', `${why}: starting over`)
    offset = 0
    total = undefined
    etag = undefined
    sha256 = createHash('sha256')
    sha1 = createHash('sha1')
    await fh.truncate(0)
  }

  try {
    for (;;) {
      const before = offset
      let why: string
      let retryAfterMs = 0
      try {
        const done = await attempt()
        if (done) break
        why = `the connection closed after ${mib(offset)} of ${total !== undefined ? mib(total) : '?'}`
      } catch (e) {
        if (e instanceof AgentError) throw e
        why = e instanceof Attempt ? e.message : describeFetchError(e)
        retryAfterMs = e instanceof Attempt ? e.retryAfterMs ?? 0 : 0
      }
      if (offset > before) failures = 0
      else failures++
      if (failures >= p.attempts) {
        throw new AgentError('AGENT_ROOTFS_DOWNLOAD', 'download', `${want.url}: gave up after ${failures} tries without progress (${mib(offset)}${total !== undefined ? ` of ${mib(total)}` : ''} so far; last: ${why})`)
      }
      const delay = Math.max(fullJitter(p.backoff, failures, d.random), Math.min(retryAfterMs, MAX_RETRY_AFTER_MS))
      log.warn('rootfs', `${why}; ${offset > 0 ? `resuming at ${mib(offset)}` : 'retrying'} in ${secs(delay)}`)
      await clock.sleep(delay)
    }
    await fh.sync()
  } catch (e) {
    await fh.close().catch(() => undefined)
    await rm(part, { force: true })
    throw e
  }
  await fh.close()

  const got256 = sha256.digest()
  const got1 = sha1.digest()
  if (got256.toString('hex') !== want.sha256) {
    await rm(part, { force: true })
    throw new AgentError('AGENT_ROOTFS_DIGEST_MISMATCH', 'integrity',
      `${want.url}: the image hashes to sha256:${got256.toString('hex')}, not the attested sha256:${want.sha256}; deleted, not mounted`)
  }
  await rename(part, final)
  const elapsedMs = clock.now() - t0
  log.info('rootfs', `${mib(offset)} in ${secs(elapsedMs)}${resumes > 0 ? ` (${resumes} resume${resumes > 1 ? 's' : ''})` : ''}; sha256 verified against the attested digest`)
  return { path: final, size: offset, sha256: got256, sha1: got1, resumes, elapsedMs }

  /** One request: true when the file is complete; throws Attempt (retry) or AgentError (final). */
  async function attempt (): Promise<boolean> {
    const ac = new AbortController()
    let timer = setTimeout(() => ac.abort(new Attempt(`no response headers within ${secs(p.headersTimeoutMs)}`)), p.headersTimeoutMs)
    const headers: Record<string, string> = { 'accept-encoding': 'identity' }
    if (offset > 0) {
      headers.range = `bytes=${offset}-`
      if (etag !== undefined) headers['if-range'] = etag
    }
    try {
      let res: Response
      try {
        res = await d.fetch(want.url, { headers, signal: ac.signal, redirect: 'follow' })
      } catch (e) {
        throw ac.signal.aborted && ac.signal.reason instanceof Attempt ? ac.signal.reason : new Attempt(`request failed: ${describeFetchError(e)}`)
      }
      if (res.status === 416 && total !== undefined && offset === total) return true
      if (isBusy(res.status)) {
        await res.body?.cancel().catch(() => undefined)
        const ra = parseRetryAfter(res.headers.get('retry-after'))
        throw new Attempt(`HTTP ${res.status}${ra !== undefined ? ` (Retry-After ${ra} s)` : ''}`, ra !== undefined ? ra * 1000 : undefined)
      }
      if (res.status === 200) {
        if (offset > 0) await restart('the server sent the whole image instead of the rest')
        const len = Number(res.headers.get('content-length') ?? NaN)
        total = Number.isSafeInteger(len) && len >= 0 ? len : undefined
      } else if (res.status === 206) {
        const cr = parseContentRange(res.headers.get('content-range'))
        if (offset === 0 || cr === undefined || cr.start !== offset || cr.end !== cr.total - 1) {
          await res.body?.cancel().catch(() => undefined)
          await restart(`the server answered the range request with ${res.headers.get('content-range') ?? 'no Content-Range'}`)
          throw new Attempt('unusable partial answer')
        }
        if (total !== undefined && cr.total !== total) {
          await res.body?.cancel().catch(() => undefined)
          await restart(`the image size changed from ${total} to ${cr.total} bytes`)
          throw new Attempt('the image changed')
        }
        total = cr.total
        resumes++
      } else {
        await res.body?.cancel().catch(() => undefined)
        const what = res.status === 404 ? ' (the server has no such image: was it removed?)' : ''
        throw new AgentError('AGENT_ROOTFS_DOWNLOAD', 'download', `${want.url}: HTTP ${res.status}${what}`)
      }
      const tag = res.headers.get('etag')
      if (tag !== null && !tag.startsWith('W/')) etag = tag
      if (total !== undefined && !startedLine) {
        startedLine = true
        await checkSpace(workDir, total - offset)
        log.info('rootfs', `downloading ${mib(total)} from ${want.url}`)
      }
      if (res.body === null) return total !== undefined && offset === total
      clearTimeout(timer)
      timer = setTimeout(() => ac.abort(new Attempt(`no data for ${secs(p.idleTimeoutMs)}`)), p.idleTimeoutMs)
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          clearTimeout(timer)
          timer = setTimeout(() => ac.abort(new Attempt(`no data for ${secs(p.idleTimeoutMs)}`)), p.idleTimeoutMs)
          if (total !== undefined && offset + chunk.length > total) {
            await restart(`the server sent more than the ${total} bytes it announced`)
            throw new Attempt('overlong body')
          }
          await writeAll(fh, chunk, offset)
          sha256.update(chunk)
          sha1.update(chunk)
          offset += chunk.length
        }
      } catch (e) {
        if (e instanceof Attempt || e instanceof AgentError) throw e
        const reason = ac.signal.aborted && ac.signal.reason instanceof Attempt ? ac.signal.reason.message : describeFetchError(e)
        throw new Attempt(`the transfer broke after ${mib(offset)} of ${total !== undefined ? mib(total) : '?'} (${reason})`)
      }
      if (total === undefined) {
        total = offset
        return true
      }
      return offset === total
    } finally {
      clearTimeout(timer)
    }
  }
}

async function writeAll (fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done)
    done += bytesWritten
  }
}

async function checkSpace (dir: string, need: number): Promise<void> {
  let free: number
  try {
    const s = await statfs(dir)
    free = s.bavail * s.bsize
  } catch {
    return
  }
  if (free < need + SPACE_MARGIN) {
    throw new AgentError('AGENT_ROOTFS_NO_SPACE', 'download', `the root image needs ${mib(need)} but ${dir} has ${mib(free)} free (keep ${mib(SPACE_MARGIN)} spare)`)
  }
}
