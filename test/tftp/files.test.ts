import { execFileSync } from 'node:child_process'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { netasciiEncode } from '../../server/tftp/codec.js'
import { createFileStore, resolveRequestPath, FILE_ERRORS, type BlockSource, type FileErrorCode } from '../../server/tftp/files.js'
import { pseudoRandomBytes, tempDir } from './helpers.js'

const ctx = { peer: { address: '127.0.0.1', port: 1234 } }

t.test('resolveRequestPath', async (t) => {
  const ok: Array<[string, string]> = [
    ['pxelinux.0', 'pxelinux.0'],
    ['/pxelinux.0', 'pxelinux.0'],
    ['boot/x86/ipxe.efi', 'boot/x86/ipxe.efi'],
    ['/boot//x86/./ipxe.efi', 'boot/x86/ipxe.efi'],
    ['/etc/passwd', 'etc/passwd'],
    ['..foo', '..foo'],
    ['foo..', 'foo..'],
  ]
  for (const [name, want] of ok) {
    const r = resolveRequestPath(name)
    t.same(r, { ok: true, value: want }, name)
  }
  const bad: Array<[string, FileErrorCode]> = [
    ['', 'invalid-name'],
    ['a\0b', 'invalid-name'],
    ['boot\\ipxe.efi', 'invalid-name'],
    ['..\\..\\windows', 'invalid-name'],
    ['a\nb', 'invalid-name'],
    ['../etc/passwd', 'traversal'],
    ['/../etc/passwd', 'traversal'],
    ['a/../../etc/passwd', 'traversal'],
    ['a/..', 'traversal'],
    ['..', 'traversal'],
    ['//etc/passwd', 'traversal'],
    ['/', 'not-regular-file'],
    ['.', 'not-regular-file'],
  ]
  for (const [name, code] of bad) {
    const r = resolveRequestPath(name)
    t.equal(r.ok ? 'ok' : r.error.code, code, JSON.stringify(name))
  }
  for (const doc of Object.values(FILE_ERRORS)) t.ok(doc.length > 10)
})

async function readAll(src: BlockSource, blksize: number): Promise<Buffer> {
  const out: Buffer[] = []
  for (let i = 0; i < 1_000_000; i++) {
    if (!src.isLoaded(i, i + 3)) await src.load(i, i + 3)
    const b = src.readBlock(i)
    out.push(Buffer.from(b))
    if (b.length < blksize) break
  }
  return Buffer.concat(out)
}

t.test('file store: root, symlinks, special files, virtual files', async (t) => {
  const root = await tempDir(t)
  const outside = await tempDir(t)
  await writeFile(path.join(outside, 'secret'), 'secret')
  await mkdir(path.join(root, 'sub'))
  await writeFile(path.join(root, 'sub', 'f.bin'), 'hello')
  await symlink(path.join(outside, 'secret'), path.join(root, 'escape'))
  await symlink(outside, path.join(root, 'escape-dir'))
  await symlink('sub/f.bin', path.join(root, 'inside-link'))
  await symlink('loop', path.join(root, 'loop'))
  execFileSync('mkfifo', [path.join(root, 'fifo')])
  const store = await createFileStore({
    root,
    virtualFiles: {
      '/autoexec.ipxe': (c) => Buffer.from(`#!ipxe\necho ${c.peer.address}\n`),
      'sub/f.bin': () => Buffer.from('virtual wins'),
      broken: () => {
        throw new Error('generator failed')
      },
      async: async () => Buffer.from('later'),
    },
  })

  const code = async (name: string): Promise<string> => {
    const r = await store.open(name, ctx)
    if (r.ok) await r.value.close()
    return r.ok ? 'ok' : r.error.code
  }
  t.equal(await code('inside-link'), 'ok')
  t.equal(await code('escape'), 'traversal')
  t.equal(await code('escape-dir/secret'), 'traversal')
  t.equal(await code('loop'), 'traversal')
  t.equal(await code('fifo'), 'not-regular-file', 'a FIFO is refused without blocking')
  t.equal(await code('sub'), 'not-regular-file')
  t.equal(await code('nope'), 'not-found')
  t.equal(await code('sub/f.bin/x'), 'not-found')
  t.equal(await code('../etc/passwd'), 'traversal')
  t.equal(await code('/etc/passwd'), 'not-found', 'absolute names are relative to the root')
  t.equal(await code('broken'), 'io-error')

  const v = await store.open('autoexec.ipxe', ctx)
  t.ok(v.ok)
  if (v.ok) {
    t.equal(v.value.virtual, true)
    t.equal((await readAll(v.value.blocks(512, 'octet'), 512)).toString(), '#!ipxe\necho 127.0.0.1\n')
    t.equal((await readAll(v.value.blocks(512, 'netascii'), 512)).toString(), '#!ipxe\r\necho 127.0.0.1\r\n')
  }
  const w = await store.open('/sub/f.bin', ctx)
  t.ok(w.ok && w.value.virtual, 'virtual files take precedence')
  const a = await store.open('async', ctx)
  t.ok(a.ok && (await readAll(a.value.blocks(8, 'octet'), 8)).toString() === 'later')

  await t.rejects(createFileStore({ root: path.join(root, 'missing') }))
  await t.rejects(createFileStore({ root: path.join(root, 'sub', 'f.bin') }))
  await t.rejects(createFileStore({ root, virtualFiles: { '../x': () => Buffer.alloc(0) } }))
})

t.test('FileSource reads in chunks with bounded memory and exact content', async (t) => {
  const root = await tempDir(t)
  const sizes = [0, 1, 511, 512, 513, 4096, 100_000, 300_007]
  for (const size of sizes) await writeFile(path.join(root, `f${size}`), pseudoRandomBytes(size, size))
  for (const chunkSize of [1000, 64 * 1024]) {
    const store = await createFileStore({ root, chunkSize, memoryMaxFile: 0 }) // from disk, not the small-file memory
    for (const size of sizes) {
      const r = await store.open(`f${size}`, ctx)
      if (!r.ok) throw new Error(r.error.message)
      t.equal(r.value.size, size)
      for (const blksize of [512, 1468]) {
        const got = await readAll(r.value.blocks(blksize, 'octet'), blksize)
        t.ok(got.equals(pseudoRandomBytes(size, size)), `size ${size} blksize ${blksize} chunk ${chunkSize}`)
      }
      await r.value.close()
    }
  }
})

t.test('NetasciiSource translates a file chunk by chunk', async (t) => {
  const root = await tempDir(t)
  const text = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? '\n' : i % 11 === 0 ? '\r' : 'x')).join(''))
  await writeFile(path.join(root, 'text'), text)
  const want = netasciiEncode(text)
  // Exact multiple of the block size after translation too.
  const exact = Buffer.from('a\n'.repeat(256)) // 768 octets on the wire
  await writeFile(path.join(root, 'exact'), exact)
  for (const chunkSize of [7, 100, 4096]) {
    const store = await createFileStore({ root, chunkSize, memoryMaxFile: 0 }) // from disk, not the small-file memory
    const r = await store.open('text', ctx)
    if (!r.ok) throw new Error(r.error.message)
    t.ok((await readAll(r.value.blocks(512, 'netascii'), 512)).equals(want), `chunk ${chunkSize}`)
    await r.value.close()
    const e = await store.open('exact', ctx)
    if (!e.ok) throw new Error(e.error.message)
    const src = e.value.blocks(256, 'netascii')
    const got = await readAll(src, 256)
    t.ok(got.equals(netasciiEncode(exact)))
    t.equal(src.readBlock(3).length, 0, 'zero-length final block')
    await e.value.close()
  }
})
