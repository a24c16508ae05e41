/**
 * Real client: curl against sendFile on a fastify server listening on
 * 127.0.0.1. curl is a required tool of the test suite: without it this test
 * fails, it does not skip.
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { sendFile } from '../../server/http/send-file.js'
import { tempDir } from '../helpers/tmp.js'
import { curl, parseMultipart, writePattern } from './helpers.js'

const SIZE = 3 * 1024 * 1024 + 17
const ETAG = 'a1'.repeat(32)
const dir = tempDir(t, 'netboot-curl-')
const { path, data } = writePattern(dir, 'initrd.img', SIZE)

const app = Fastify({ logger: false })
app.get('/initrd.img', async (req, reply) => { await sendFile(req, reply, { path, etag: ETAG, contentType: 'application/octet-stream' }); return reply })
const address = await app.listen({ host: '127.0.0.1', port: 0 })
t.teardown(() => app.close())
const URL_ = `${address}/initrd.img`

const version = await curl(['--version'])
t.equal(version.code, 0, `curl is installed: ${version.stdout.toString().split('\n')[0] ?? ''}`)

t.test('whole file: byte-identical', async (t) => {
  const out = join(dir, 'whole')
  const r = await curl(['-o', out, '-w', '%{http_code} %{size_download}', URL_])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout.toString(), `200 ${SIZE}`)
  t.ok(readFileSync(out).equals(data))
})

t.test('-r ranges: byte-identical slices', async (t) => {
  const table: [string, number, number][] = [['100-199', 100, 199], ['-500', SIZE - 500, SIZE - 1], ['1000-', 1000, SIZE - 1], ['0-0', 0, 0], ['0-99999999999', 0, SIZE - 1]]
  for (const [range, start, end] of table) {
    const out = join(dir, `r${range}`)
    const r = await curl(['-r', range, '-o', out, '-w', '%{http_code}', URL_])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout.toString(), '206', `-r ${range}: 206`)
    t.ok(readFileSync(out).equals(data.subarray(start, end + 1)), `-r ${range}: the right bytes`)
  }
})

t.test('-r with several ranges: multipart/byteranges as curl receives it', async (t) => {
  const out = join(dir, 'multi')
  const r = await curl(['-r', '0-0,-1,1000-1999', '-o', out, '-w', '%{http_code}\n%{content_type}', URL_])
  t.equal(r.code, 0, r.stderr)
  const [status, contentType] = r.stdout.toString().split('\n') as [string, string]
  t.equal(status, '206')
  const parts = parseMultipart(contentType, readFileSync(out))
  t.same(parts.map((p) => p.headers['content-range']), [`bytes 0-0/${SIZE}`, `bytes ${SIZE - 1}-${SIZE - 1}/${SIZE}`, `bytes 1000-1999/${SIZE}`])
  t.ok(parts[0]!.body.equals(data.subarray(0, 1)) && parts[1]!.body.equals(data.subarray(SIZE - 1)) && parts[2]!.body.equals(data.subarray(1000, 2000)))
})

t.test('conditional GET: If-None-Match → 304, empty', async (t) => {
  let r = await curl(['-H', `If-None-Match: "${ETAG}"`, '-w', '%{http_code} %{size_download}', URL_])
  t.equal(r.stdout.toString(), '304 0', 'no body')
  r = await curl(['-H', 'If-None-Match: "stale"', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', URL_])
  t.equal(r.stdout.toString(), `200 ${SIZE}`)
})

t.test('--head', async (t) => {
  const r = await curl(['--head', URL_])
  t.equal(r.code, 0, r.stderr)
  const head = r.stdout.toString()
  t.match(head, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(head, new RegExp(`\r\ncontent-length: ${SIZE}\r\n`, 'i'))
  t.match(head, /\r\naccept-ranges: bytes\r\n/i)
  t.match(head, new RegExp(`\r\netag: "${ETAG}"\r\n`, 'i'))
})

t.test('resume with -C -: the partial file is completed byte for byte', async (t) => {
  const out = join(dir, 'resumed')
  writeFileSync(out, data.subarray(0, 1_000_000))
  const r = await curl(['-C', '-', '-o', out, '-w', '%{http_code}', URL_])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout.toString(), '206')
  t.ok(readFileSync(out).equals(data))
})

t.test('unsatisfiable range: 416', async (t) => {
  const r = await curl(['-r', `${SIZE}-`, '-D', '-', '-o', '/dev/null', '-w', '%{http_code}', URL_])
  t.match(r.stdout.toString(), new RegExp(`content-range: bytes \\*/${SIZE}\r\n`, 'i'))
  t.match(r.stdout.toString(), /416$/)
})
