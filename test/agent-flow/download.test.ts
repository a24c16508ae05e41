/**
 * agent/steps/rootfs.ts against a scriptable HTTP server on loopback: what a
 * download must survive (cuts, servers that ignore Range, a file replaced between
 * tries, wrong Content-Range, 503 with Retry-After, chunked bodies) and what it
 * must refuse (a digest mismatch, a 404, a full disk).
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { memoryLog } from '../../agent/log.js'
import { downloadRootfs, type DownloadPolicy } from '../../agent/steps/rootfs.js'
import type { Clock } from '../../agent/backoff.js'
import { tempDir } from '../helpers/tmp.js'
import { cleanupMounts } from './helpers.js'

type Behaviour = { kind: 'normal' } | { kind: 'cut'; after: number } | { kind: 'ignore-range' } | { kind: 'status'; status: number; retryAfter?: number } | { kind: 'wrong-range' } | { kind: 'chunked' }

interface Served { range?: string; ifRange?: string; status: number }

async function imageServer (t: Test, initial: Buffer) {
  let content = initial
  let etag = `"${createHash('sha256').update(content).digest('hex')}"`
  const plan: Behaviour[] = []
  const served: Served[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const b = plan.shift() ?? { kind: 'normal' }
    const rec: Served = { status: 0, ...(req.headers.range !== undefined ? { range: req.headers.range } : {}), ...(typeof req.headers['if-range'] === 'string' ? { ifRange: req.headers['if-range'] } : {}) }
    served.push(rec)
    if (b.kind === 'status') {
      rec.status = b.status
      res.writeHead(b.status, b.retryAfter !== undefined ? { 'retry-after': String(b.retryAfter) } : {}).end()
      return
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const rangeOk = m !== null && b.kind !== 'ignore-range' && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag)
    const start = rangeOk ? Number(m![1]) : 0
    const body = content.subarray(start)
    const headers: Record<string, string> = { etag, 'accept-ranges': 'bytes' }
    if (b.kind !== 'chunked') headers['content-length'] = String(body.length)
    if (rangeOk) headers['content-range'] = b.kind === 'wrong-range' ? `bytes ${start + 10}-${content.length - 1}/${content.length}` : `bytes ${start}-${content.length - 1}/${content.length}`
    rec.status = rangeOk ? 206 : 200
    res.writeHead(rec.status, headers)
    if (b.kind === 'cut') {
      res.write(body.subarray(0, b.after), () => setTimeout(() => res.socket?.destroy(), 10))
      return
    }
    if (b.kind === 'chunked') {
      res.write(body.subarray(0, 1000))
      res.end(body.subarray(1000))
      return
    }
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}/images/x/rootfs.squashfs`,
    served,
    next: (...b: Behaviour[]) => { plan.push(...b) },
    replace: (c: Buffer) => { content = c; etag = `"${createHash('sha256').update(c).digest('hex')}"` },
  }
}

const policy: DownloadPolicy = { attempts: 3, backoff: { baseMs: 1000, capMs: 8000 }, headersTimeoutMs: 5000, idleTimeoutMs: 5000 }
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** The step's deps with a clock whose sleeps return at once (after `onSleep`, if given). */
function deps (onSleep?: () => void) {
  let now = 0
  const sleeps: number[] = []
  const clock: Clock = { now: () => now, sleep: async (ms) => { sleeps.push(ms); now += ms; onSleep?.() } }
  return { d: { fetch, clock, random: () => 0.5, log: memoryLog() }, sleeps }
}

const DATA = randomBytes(300_000)

t.test('cut twice, then complete: each try continues where the last stopped', async (t) => {
  const s = await imageServer(t, DATA)
  s.next({ kind: 'cut', after: 100_000 }, { kind: 'cut', after: 50_000 })
  const dir = tempDir(t)
  const { d } = deps()
  const r = await downloadRootfs(d, dir, { url: s.url, sha256: sha(DATA) }, policy)
  t.same(s.served.map((x) => [x.range, x.status]), [[undefined, 200], ['bytes=100000-', 206], ['bytes=150000-', 206]])
  t.equal(r.resumes, 2)
  t.equal(r.sha256.toString('hex'), sha(DATA))
  t.equal(r.sha1.toString('hex'), createHash('sha1').update(DATA).digest('hex'), 'the SHA-1 (for a SHA-1 PCR bank) too')
  t.ok(readFileSync(r.path).equals(DATA))
  t.same(readdirSync(dir), ['rootfs.squashfs'], 'no partial file left')
})

t.test('a server that ignores Range: the whole image again, from the start', async (t) => {
  const s = await imageServer(t, DATA)
  s.next({ kind: 'cut', after: 100_000 }, { kind: 'ignore-range' })
  const { d } = deps()
  const r = await downloadRootfs(d, tempDir(t), { url: s.url, sha256: sha(DATA) }, policy)
  t.same(s.served.map((x) => x.status), [200, 200])
  t.equal(r.resumes, 0)
  t.ok(d.log.lines.some((l) => /sent the whole image instead of the rest: starting over/.test(l)))
})

t.test('the file was replaced between tries: If-Range gets the new one whole, never a splice', async (t) => {
  const s = await imageServer(t, DATA)
  s.next({ kind: 'cut', after: 100_000 })
  const NEW = randomBytes(250_000)
  const { d } = deps(() => s.replace(NEW))
  const r = await downloadRootfs(d, tempDir(t), { url: s.url, sha256: sha(NEW) }, policy)
  t.equal(s.served[1]?.ifRange, `"${sha(DATA)}"`, 'the resume names the version it has')
  t.equal(s.served[1]?.status, 200, 'the server sends the new version whole')
  t.equal(r.sha256.toString('hex'), sha(NEW))
})

t.test('a 206 that does not start where asked: start over', async (t) => {
  const s = await imageServer(t, DATA)
  s.next({ kind: 'cut', after: 100_000 }, { kind: 'wrong-range' })
  const { d } = deps()
  const r = await downloadRootfs(d, tempDir(t), { url: s.url, sha256: sha(DATA) }, policy)
  t.same(s.served.map((x) => [x.range, x.status]), [[undefined, 200], ['bytes=100000-', 206], [undefined, 200]])
  t.equal(r.size, DATA.length)
})

t.test('503 with Retry-After: the wait honours it; chunked bodies have no length and still verify', async (t) => {
  const s = await imageServer(t, DATA)
  s.next({ kind: 'status', status: 503, retryAfter: 12 }, { kind: 'chunked' })
  const { d, sleeps } = deps()
  const r = await downloadRootfs(d, tempDir(t), { url: s.url, sha256: sha(DATA) }, policy)
  t.same(sleeps, [12_000], 'Retry-After 12 s beats a 1 s jitter')
  t.equal(r.size, DATA.length)
})

t.test('bounded: tries without progress give up with full jitter between them', async (t) => {
  const s = await imageServer(t, DATA)
  s.next(...Array.from({ length: 10 }, () => ({ kind: 'status' as const, status: 502 })))
  const { d, sleeps } = deps()
  await t.rejects(downloadRootfs(d, tempDir(t), { url: s.url, sha256: sha(DATA) }, policy), { code: 'AGENT_ROOTFS_DOWNLOAD', failure: 'download', message: /gave up after 3 tries without progress .*HTTP 502/ })
  t.equal(s.served.length, 3)
  t.same(sleeps, [1000, 2000], 'random 0.5 of the ceiling: 2 s, 4 s')
})

t.test('refused for good: 404, and a digest mismatch (the file is deleted)', async (t) => {
  const s = await imageServer(t, DATA)
  s.next({ kind: 'status', status: 404 })
  const dir = tempDir(t)
  const { d } = deps()
  await t.rejects(downloadRootfs(d, dir, { url: s.url, sha256: sha(DATA) }, policy), { code: 'AGENT_ROOTFS_DOWNLOAD', retryable: false, message: /HTTP 404 \(the server has no such image/ })
  t.equal(s.served.length, 1, 'a 404 is not retried')
  await t.rejects(downloadRootfs(d, dir, { url: s.url, sha256: 'e'.repeat(64) }, policy), { code: 'AGENT_ROOTFS_DIGEST_MISMATCH', failure: 'integrity', retryable: false })
  t.same(readdirSync(dir), [], 'nothing left to mount')
})

t.test('a work directory too small for the image: refused before the download fills it', async (t) => {
  if (process.getuid?.() !== 0) { t.fail('needs root to mount a small tmpfs'); return }
  const dir = tempDir(t)
  const small = join(dir, 'small')
  mkdirSync(small)
  t.teardown(() => cleanupMounts(dir))
  t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'netboot-test', small]).status, 0)
  const big = randomBytes(12 * 1024 * 1024)
  const s = await imageServer(t, big)
  const { d } = deps()
  await t.rejects(downloadRootfs(d, small, { url: s.url, sha256: sha(big) }, policy), { code: 'AGENT_ROOTFS_NO_SPACE', message: /needs 12\.0 MiB but .* has 8\.0 MiB free/ })
  t.notOk(existsSync(join(small, 'rootfs.squashfs.part')))
})
