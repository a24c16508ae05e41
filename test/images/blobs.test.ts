import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, ftruncateSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BlobStore, isDigest, parseDigest, type AddProgress } from '../../server/images/blobs.js'
import { isNetbootError } from '../../server/errors.js'
import { tempDir } from '../helpers/tmp.js'
import { pattern } from './helpers.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

async function fresh (t: Test): Promise<{ store: BlobStore; root: string; src: string }> {
  const base = tempDir(t, 'netboot-blobs-')
  const root = join(base, 'store')
  const src = join(base, 'src')
  mkdirSync(src)
  const store = new BlobStore(root)
  await store.init()
  return { store, root, src }
}

function tmpFiles (root: string): string[] {
  return readdirSync(join(root, 'tmp'))
}

t.test('add stores by digest, read-only, under sha256/<aa>/', async (t) => {
  const { store, root, src } = await fresh(t)
  const data = pattern(300_000)
  writeFileSync(join(src, 'vmlinuz'), data)
  const r = await store.add(join(src, 'vmlinuz'))
  t.same(r, { sha256: sha(data), size: data.length, added: true })
  const p = store.path(r.sha256)
  t.equal(p, join(root, 'sha256', r.sha256.slice(0, 2), r.sha256))
  t.ok(readFileSync(p).equals(data))
  t.equal(statSync(p).mode & 0o777, 0o444, 'read-only')
  t.ok(await store.has(r.sha256))
  t.same(await store.stat(r.sha256), { sha256: r.sha256, size: data.length })
  t.same(await store.list(), [{ sha256: r.sha256, size: data.length }])
  t.ok(await store.verify(r.sha256))
  t.same(tmpFiles(root), [], 'no temporary file left')
  const s = await store.createReadStream(r.sha256, { start: 10, end: 19 })
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  t.ok(Buffer.concat(chunks).equals(data.subarray(10, 20)), 'ranged read stream')
  const { handle, size } = await store.open(r.sha256)
  t.equal(size, data.length)
  await handle.close()
})

t.test('identical content is stored once', async (t) => {
  const { store, src } = await fresh(t)
  writeFileSync(join(src, 'a'), 'same bytes')
  writeFileSync(join(src, 'b'), 'same bytes')
  writeFileSync(join(src, 'c'), 'other bytes')
  const a = await store.add(join(src, 'a'))
  const b = await store.add(join(src, 'b'))
  t.equal(a.added, true)
  t.equal(b.added, false)
  t.equal(a.sha256, b.sha256)
  const both = await Promise.all([store.add(join(src, 'c')), store.add(join(src, 'c')), store.add(join(src, 'c'))])
  t.ok(both.every((x) => x.sha256 === sha(Buffer.from('other bytes'))), 'concurrent adds of one content agree')
  t.equal((await store.list()).length, 2)
})

t.test('a failed copy leaves nothing', async (t) => {
  const { store, root } = await fresh(t)
  async function * failing (): AsyncGenerator<Buffer> {
    yield Buffer.alloc(1 << 20, 1)
    yield Buffer.alloc(1 << 20, 2)
    throw new Error('disk pulled')
  }
  await t.rejects(store.addStream(failing()), { message: 'disk pulled' })
  t.same(await store.list(), [])
  t.same(tmpFiles(root), [], 'temporary file removed')

  const ac = new AbortController()
  async function * slow (): AsyncGenerator<Buffer> {
    for (let i = 0; i < 100; i++) {
      if (i === 3) ac.abort()
      yield Buffer.alloc(1024, i)
    }
  }
  await t.rejects(store.addStream(slow(), { signal: ac.signal }), { name: 'AbortError' })
  t.same(await store.list(), [])
  t.same(tmpFiles(root), [])

  const data = Buffer.from('expected content')
  await t.rejects(store.addStream([data], { expectSha256: 'f'.repeat(64) }), { code: 'BLOB_DIGEST_MISMATCH' })
  t.same(await store.list(), [], 'a digest mismatch stores nothing')
  t.same(tmpFiles(root), [])
  t.same(await store.addStream([data], { expectSha256: sha(data) }), { sha256: sha(data), size: data.length, added: true })
})

t.test('sources that are not regular files', async (t) => {
  const { store, src, root } = await fresh(t)
  await t.rejects(store.add(join(src, 'missing')), { code: 'BLOB_SOURCE_INVALID' })
  await t.rejects(store.add(src), { code: 'BLOB_SOURCE_INVALID' })
  t.same(tmpFiles(root), [])
})

t.test('digests are 64 lower-case hex digits, nothing else reaches the file system', async (t) => {
  const { store } = await fresh(t)
  const bad = ['', '../../etc/passwd', 'A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), `sha256:${'a'.repeat(64)}`, `${'a'.repeat(62)}/..`,
    `${'a'.repeat(63)}\u0000`, ` ${'a'.repeat(64)}`, `${'a'.repeat(64)}\n`, 'g'.repeat(64), '..', '/']
  for (const d of bad) {
    t.throws(() => store.path(d), { code: 'IMAGE_DIGEST_INVALID' }, JSON.stringify(d))
    await t.rejects(store.has(d), { code: 'IMAGE_DIGEST_INVALID' })
    await t.rejects(store.remove(d), { code: 'IMAGE_DIGEST_INVALID' })
    await t.rejects(store.open(d), { code: 'IMAGE_DIGEST_INVALID' })
    await t.rejects(store.addStream([Buffer.from('x')], { expectSha256: d }), { code: 'IMAGE_DIGEST_INVALID' })
  }
  t.equal(parseDigest(`sha256:${'a'.repeat(64)}`), 'a'.repeat(64))
  t.equal(parseDigest('a'.repeat(64)), 'a'.repeat(64))
  t.equal(parseDigest(`sha512:${'a'.repeat(64)}`), undefined)
  t.equal(parseDigest(`SHA256:${'a'.repeat(64)}`), undefined)
  t.ok(isDigest('0'.repeat(64)))
  t.notOk(isDigest('0'.repeat(64) + 'x'))
})

t.test('missing blobs', async (t) => {
  const { store } = await fresh(t)
  const d = 'c'.repeat(64)
  t.equal(await store.has(d), false)
  t.equal(await store.stat(d), undefined)
  t.equal(await store.remove(d), false)
  await t.rejects(store.open(d), { code: 'BLOB_NOT_FOUND' })
  await t.rejects(store.createReadStream(d), { code: 'BLOB_NOT_FOUND' })
  try {
    await store.open(d)
  } catch (e) {
    t.ok(isNetbootError(e, 'BLOB_NOT_FOUND'))
    t.equal((e as { status: number }).status, 404)
  }
})

t.test('remove, list ignores strays, verify detects damage, a damaged blob is repaired by adding it again', async (t) => {
  const { store, root, src } = await fresh(t)
  writeFileSync(join(src, 'x'), 'hello')
  const { sha256 } = await store.add(join(src, 'x'))
  writeFileSync(join(root, 'sha256', 'zz'), 'stray')
  mkdirSync(join(root, 'sha256', 'ab'), { recursive: true })
  writeFileSync(join(root, 'sha256', 'ab', 'not-a-digest'), 'stray')
  writeFileSync(join(root, 'sha256', 'ab', 'cd'.repeat(32)), 'wrong prefix dir')
  t.same((await store.list()).map((b) => b.sha256), [sha256])

  chmodSync(store.path(sha256), 0o644)
  writeFileSync(store.path(sha256), 'HELLO')
  t.equal(await store.verify(sha256), false, 'same size, other bytes: verify says so')
  writeFileSync(store.path(sha256), 'hell')
  const again = await store.add(join(src, 'x'))
  t.equal(again.added, true, 'a blob of the wrong size is replaced')
  t.equal(readFileSync(store.path(sha256), 'utf8'), 'hello')

  t.equal(await store.remove(sha256), true)
  t.equal(await store.remove(sha256), false)
  t.equal(existsSync(store.path(sha256)), false)
})

t.test('temporary files of crashed adds are swept', async (t) => {
  const { store, root } = await fresh(t)
  const old = join(root, 'tmp', 'add-0123456789abcdef.part')
  const recent = join(root, 'tmp', 'add-fedcba9876543210.part')
  const other = join(root, 'tmp', 'keep-me')
  for (const f of [old, recent, other]) writeFileSync(f, 'partial')
  const past = new Date(Date.now() - 2 * 60 * 60 * 1000)
  utimesSync(old, past, past)
  await store.init()
  t.same(tmpFiles(root).sort(), ['add-fedcba9876543210.part', 'keep-me'], 'init removes temporary files older than an hour')
  t.equal(await store.sweepTemp(0), 1)
  t.same(tmpFiles(root), ['keep-me'], 'only our own temporary files')
  t.same(await store.list(), [], 'never listed as blobs')
})

t.test('progress for a big file, with bounded memory', async (t) => {
  const { store, src } = await fresh(t)
  const file = join(src, 'rootfs.squashfs')
  const size = 256 * 1024 * 1024
  const fd = openSync(file, 'w')
  ftruncateSync(fd, size)
  closeSync(fd)
  const calls: AddProgress[] = []
  global.gc?.()
  const rss0 = process.memoryUsage().rss
  let peak = rss0
  const r = await store.add(file, {
    progressIntervalMs: 0,
    onProgress: (p) => {
      calls.push(p)
      peak = Math.max(peak, process.memoryUsage().rss)
    },
  })
  t.equal(r.size, size)
  t.ok(isDigest(r.sha256), 'hashed')
  t.ok(calls.length >= 100, `${calls.length} progress calls`)
  t.ok(calls.every((c, i) => i === 0 || c.bytes >= calls[i - 1]!.bytes), 'monotonic')
  t.same(calls.at(-1), { bytes: size, total: size }, 'the last call is complete')
  t.ok(calls.every((c) => c.total === size), 'total known for a file')
  t.ok(peak - rss0 < 64 * 1024 * 1024, `RSS grew ${((peak - rss0) / 1048576).toFixed(1)} MiB while copying 256 MiB`)

  const throttled: AddProgress[] = []
  await store.addStream((async function * () { for (let i = 0; i < 50; i++) yield Buffer.alloc(1024, i) })(), { onProgress: (p) => throttled.push(p), progressIntervalMs: 60_000, size: 50 * 1024 })
  t.same(throttled, [{ bytes: 1024, total: 51_200 }, { bytes: 51_200, total: 51_200 }], 'throttled: the first and the last')
  const fn: AddProgress[] = []
  writeFileSync(join(src, 'small'), 'abc')
  await store.add(join(src, 'small'), (p) => fn.push(p))
  t.same(fn.at(-1), { bytes: 3, total: 3 }, 'a bare callback works as onProgress')
})
