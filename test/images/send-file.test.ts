/**
 * sendFile through fastify's inject (no socket), then over a real socket for
 * client aborts.
 */
import t from 'tap'
import { readdirSync, truncateSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { SendFileOptions } from '../../server/http/send-file.js'
import { tempDir } from '../helpers/tmp.js'
import { fileApp, parseMultipart, writePattern } from './helpers.js'

const SIZE = 10_000
const ETAG = 'b'.repeat(64)
const MTIME = new Date(Date.UTC(2024, 0, 1, 12, 0, 0))
const LM = 'Mon, 01 Jan 2024 12:00:00 GMT'

const dir = tempDir(t, 'netboot-sendfile-')
const { path, data } = writePattern(dir, 'blob', SIZE)
let opts: SendFileOptions = { path, etag: ETAG, contentType: 'application/octet-stream', mtime: MTIME }
const app = await fileApp(() => opts)
t.teardown(() => app.close())
const get = async (headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET', url = '/f') => await app.inject({ method, url, headers })

t.beforeEach(() => { opts = { path, etag: ETAG, contentType: 'application/octet-stream', mtime: MTIME } })

t.test('GET: 200 with the whole file and its validators', async (t) => {
  const r = await get()
  t.equal(r.statusCode, 200)
  t.ok(r.rawPayload.equals(data), 'byte-identical')
  t.equal(r.headers['content-length'], String(SIZE))
  t.equal(r.headers['content-type'], 'application/octet-stream')
  t.equal(r.headers.etag, `"${ETAG}"`)
  t.equal(r.headers['accept-ranges'], 'bytes')
  t.equal(r.headers['last-modified'], LM)
  t.equal(r.headers['cache-control'], undefined)
  opts = { path, etag: ETAG, cacheControl: 'public, max-age=31536000, immutable' }
  const r2 = await get()
  t.equal(r2.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.equal(r2.headers['last-modified'], undefined, 'no mtime, no Last-Modified')
  t.equal(r2.headers['content-type'], 'application/octet-stream', 'default content type')
})

t.test('HEAD: the GET headers, no body, on fastify\'s HEAD route and on our own', async (t) => {
  for (const url of ['/f', '/explicit']) {
    const r = await get({}, 'HEAD', url)
    t.equal(r.statusCode, 200, url)
    t.equal(r.headers['content-length'], String(SIZE), `${url}: Content-Length is the file size`)
    t.equal(r.headers.etag, `"${ETAG}"`)
    t.equal(r.headers['accept-ranges'], 'bytes')
    t.equal(r.rawPayload.length, 0)
    const ranged = await get({ range: 'bytes=0-9' }, 'HEAD', url)
    t.equal(ranged.statusCode, 200, `${url}: Range is ignored on HEAD (§14.2: defined for GET only)`)
    const nm = await get({ 'if-none-match': `"${ETAG}"` }, 'HEAD', url)
    t.equal(nm.statusCode, 304)
    t.equal(nm.headers['content-length'], undefined, `${url}: no Content-Length on 304`)
  }
})

t.test('single ranges: 206 with Content-Range', async (t) => {
  const table: [string, number, number][] = [
    ['bytes=0-99', 0, 99], ['bytes=100-', 100, SIZE - 1], ['bytes=-500', SIZE - 500, SIZE - 1], ['bytes=0-0', 0, 0],
    ['bytes=-1', SIZE - 1, SIZE - 1], ['bytes=9999-', 9999, 9999], ['bytes=0-99999999999999999999', 0, SIZE - 1],
    ['bytes=0-10,5-20', 0, 20], ['bytes=0-,0-,0-', 0, SIZE - 1], ['bytes=-999999', 0, SIZE - 1],
  ]
  for (const [range, start, end] of table) {
    const r = await get({ range })
    t.equal(r.statusCode, 206, range)
    t.equal(r.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, `${range}: Content-Range`)
    t.equal(r.headers['content-length'], String(end - start + 1))
    t.equal(r.headers['content-type'], 'application/octet-stream')
    t.equal(r.headers.etag, `"${ETAG}"`, `${range}: ETag as on 200 (§15.3.7)`)
    t.ok(r.rawPayload.equals(data.subarray(start, end + 1)), `${range}: the right bytes`)
  }
})

t.test('several ranges: 206 multipart/byteranges', async (t) => {
  const table: [string, [number, number][]][] = [
    ['bytes=0-0,-1', [[0, 0], [SIZE - 1, SIZE - 1]]],
    ['bytes=500-600, 0-99', [[500, 600], [0, 99]]],
    ['bytes=100-200,0-10,150-300', [[100, 300], [0, 10]]],
    [`bytes=${Array.from({ length: 32 }, (_, i) => `${i * 100}-${i * 100 + 9}`).join(',')}`, Array.from({ length: 32 }, (_, i): [number, number] => [i * 100, i * 100 + 9])],
  ]
  for (const [range, expected] of table) {
    opts = { path, etag: ETAG, contentType: 'application/x-squashfs', highWaterMark: 4096 }
    const r = await get({ range })
    t.equal(r.statusCode, 206, range.slice(0, 40))
    t.match(r.headers['content-type'], /^multipart\/byteranges; boundary=netboot-[0-9a-f]{24}$/)
    t.equal(r.headers['content-range'], undefined, 'no Content-Range on the whole multipart response')
    t.equal(Number(r.headers['content-length']), r.rawPayload.length, 'Content-Length is exact')
    const parts = parseMultipart(String(r.headers['content-type']), r.rawPayload)
    t.equal(parts.length, expected.length)
    parts.forEach((p, i) => {
      const [s, e] = expected[i]!
      t.equal(p.headers['content-range'], `bytes ${s}-${e}/${SIZE}`)
      t.equal(p.headers['content-type'], 'application/x-squashfs')
      t.ok(p.body.equals(data.subarray(s, e + 1)), `part ${i}: the right bytes`)
    })
  }
})

t.test('a multipart part larger than a read chunk', async (t) => {
  opts = { path, etag: ETAG, highWaterMark: 1024 }
  const r = await get({ range: 'bytes=0-4999,6000-' })
  const parts = parseMultipart(String(r.headers['content-type']), r.rawPayload)
  t.ok(parts[0]!.body.equals(data.subarray(0, 5000)))
  t.ok(parts[1]!.body.equals(data.subarray(6000)))
})

t.test('unsatisfiable: 416 with Content-Range bytes */size', async (t) => {
  for (const range of ['bytes=10000-', 'bytes=20000-30000', 'bytes=-0', 'bytes=10000-,20000-', 'bytes=99999999999999999999999-']) {
    const r = await get({ range })
    t.equal(r.statusCode, 416, range)
    t.equal(r.headers['content-range'], `bytes */${SIZE}`)
    t.equal(r.json().error.code, 'RANGE_NOT_SATISFIABLE')
    t.match(r.headers['content-type'], /^application\/json/)
  }
})

t.test('invalid or unknown Range: ignored, 200 with the whole file', async (t) => {
  for (const range of ['bytes=5-1', 'bytes=abc', 'items=0-1', 'bytes 0-1', 'bytes=0-1;x', 'bytes=', 'bytes=,,,', 'bytes=1e3-', 'bytes=0x0-0x1',
    `bytes=${'0-1,'.repeat(33)}`, 'bytes=-', '']) {
    const r = await get({ range })
    t.equal(r.statusCode, 200, JSON.stringify(range))
    t.ok(r.rawPayload.equals(data))
    t.equal(r.headers['content-range'], undefined)
  }
})

t.test('conditional GET', async (t) => {
  let r = await get({ 'if-none-match': `"${ETAG}"` })
  t.equal(r.statusCode, 304)
  t.equal(r.rawPayload.length, 0)
  t.equal(r.headers.etag, `"${ETAG}"`, '304 carries the ETag')
  t.equal(r.headers['content-type'], undefined)
  t.equal(r.headers['last-modified'], undefined, 'no Last-Modified on a 304 that has an ETag')
  for (const inm of ['*', `W/"${ETAG}"`, `"x", "${ETAG}"`]) t.equal((await get({ 'if-none-match': inm })).statusCode, 304, inm)
  t.equal((await get({ 'if-none-match': '"other"' })).statusCode, 200)
  t.equal((await get({ 'if-none-match': '"other"', range: 'bytes=0-1' })).statusCode, 206, 'If-None-Match false: the Range applies')
  t.equal((await get({ 'if-none-match': `"${ETAG}"`, range: 'bytes=0-1' })).statusCode, 304, 'a matching If-None-Match wins over Range')

  r = await get({ 'if-match': '"other"' })
  t.equal(r.statusCode, 412)
  t.equal(r.json().error.code, 'PRECONDITION_FAILED')
  t.equal((await get({ 'if-match': `"${ETAG}"` })).statusCode, 200)
  t.equal((await get({ 'if-match': '*' })).statusCode, 200)

  t.equal((await get({ 'if-modified-since': LM })).statusCode, 304)
  t.equal((await get({ 'if-modified-since': 'Mon, 01 Jan 2024 11:59:59 GMT' })).statusCode, 200)
  t.equal((await get({ 'if-modified-since': 'garbage' })).statusCode, 200)
  t.equal((await get({ 'if-unmodified-since': 'Mon, 01 Jan 2024 11:59:59 GMT' })).statusCode, 412)
  t.equal((await get({ 'if-unmodified-since': LM })).statusCode, 200)

  opts = { path }
  r = await get({ 'if-modified-since': LM, 'if-none-match': `"${ETAG}"` })
  t.equal(r.statusCode, 200, 'without validators nothing matches')
  t.equal(r.headers.etag, undefined)
  opts = { path, mtime: MTIME }
  r = await get({ 'if-modified-since': LM })
  t.equal(r.statusCode, 304)
  t.equal(r.headers['last-modified'], LM, 'a 304 without an ETag carries Last-Modified')
})

t.test('If-Range', async (t) => {
  const part = (r: { statusCode: number }) => r.statusCode
  t.equal(part(await get({ range: 'bytes=0-9', 'if-range': `"${ETAG}"` })), 206, 'same entity: the range')
  t.equal(part(await get({ range: 'bytes=0-9', 'if-range': '"other"' })), 200, 'changed entity: the whole file')
  t.equal(part(await get({ range: 'bytes=0-9', 'if-range': `W/"${ETAG}"` })), 200, 'weak tag: the whole file')
  t.equal(part(await get({ range: 'bytes=0-9', 'if-range': LM })), 206, 'date equal to Last-Modified')
  t.equal(part(await get({ range: 'bytes=0-9', 'if-range': 'Mon, 01 Jan 2024 12:00:01 GMT' })), 200, 'other date')
  t.equal(part(await get({ range: 'bytes=99999-', 'if-range': '"other"' })), 200, 'If-Range false: no 416 either')
  t.equal(part(await get({ 'if-range': '"other"' })), 200, 'If-Range without Range is ignored')
})

t.test('errors before the first byte', async (t) => {
  opts = { path: join(dir, 'missing') }
  let r = await get()
  t.equal(r.statusCode, 404)
  t.equal(r.json().code, 'FILE_NOT_FOUND')
  opts = { path: dir }
  t.equal((await get()).statusCode, 404, 'a directory is not a file')
  opts = { path: '/dev/zero' }
  t.equal((await get()).statusCode, 404, 'a device is not a file')
  opts = { path, size: SIZE + 1 }
  r = await get()
  t.equal(r.statusCode, 500)
  t.equal(r.json().code, 'FILE_SIZE_MISMATCH')
  opts = { path: 'relative/path' }
  t.equal((await get()).statusCode, 500, 'a relative path is a programming error')
  opts = { path, etag: 'has"quote' }
  t.equal((await get()).statusCode, 500, 'an invalid entity-tag is a programming error')
  opts = { path, size: SIZE }
  t.equal((await get()).statusCode, 200, 'the expected size')
})

t.test('empty file', async (t) => {
  const empty = join(dir, 'empty')
  writeFileSync(empty, '')
  opts = { path: empty, etag: 'e' }
  let r = await get()
  t.equal(r.statusCode, 200)
  t.equal(r.headers['content-length'], '0')
  r = await get({ range: 'bytes=-1' })
  t.equal(r.statusCode, 200, 'no byte to point at: Range ignored')
  r = await get({ range: 'bytes=0-' })
  t.equal(r.statusCode, 200)
})

t.test('the file is opened once: bytes come from the descriptor, sized by fstat', async (t) => {
  const f = writePattern(dir, 'shrinks', 100_000)
  opts = { path: f.path, highWaterMark: 1024 }
  const r = await get({ range: 'bytes=0-9' })
  t.equal(r.statusCode, 206)
  truncateSync(f.path, 50)
  const r2 = await get({ range: 'bytes=90000-' })
  t.equal(r2.statusCode, 416, 'a file that shrank is measured again on the next request')
})

function openFds (): number {
  return readdirSync('/proc/self/fd').length
}

t.test('client aborts close the file (real socket)', async (t) => {
  const big = writePattern(dir, 'big', 32 * 1024 * 1024)
  opts = { path: big.path, etag: ETAG, highWaterMark: 64 * 1024 }
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = new URL(address)
  const before = openFds()
  const abortAfterFirstBytes = async (range: string | undefined): Promise<number> => await new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1')
    let got = 0
    s.on('data', (d: Buffer) => {
      got += d.length
      if (got > 100_000) s.destroy()
    })
    s.on('close', () => resolve(got))
    s.on('error', reject)
    s.write(`GET /f HTTP/1.1\r\nHost: x\r\n${range === undefined ? '' : `Range: ${range}\r\n`}\r\n`)
  })
  for (const range of [undefined, 'bytes=100-', 'bytes=0-10,1000-20000000']) {
    for (let i = 0; i < 5; i++) t.ok(await abortAfterFirstBytes(range) > 0)
  }
  // headers only, then gone: the multipart body has not been read at all
  await new Promise<void>((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write('GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0,-1\r\n\r\n')
      s.destroy()
      resolve()
    })
  })
  const deadline = Date.now() + 5000
  while (openFds() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.equal(openFds(), before, 'every file descriptor opened for the aborted responses is closed')
})
