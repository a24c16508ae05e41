/**
 * Small TFTP files kept in memory (server/tftp/files.ts): the second open of an
 * unchanged file is served from memory (no open/read/close), a rewritten or
 * replaced file is read again, name checks still apply on every open, files over
 * the size cap come from disk, and the total kept stays within its bound. Also end
 * to end: 20 transfers of one file through the server, exact bytes each time.
 */
import { rename, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { createFileStore, type BlockSource } from '../../server/tftp/files.js'
import { fetchWithClient, pseudoRandomBytes, sha256, startServer, tempDir } from './helpers.js'

const ctx = { peer: { address: '127.0.0.1', port: 1 } }

async function readAll(src: BlockSource, blksize: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for (let i = 0; ; i++) {
    await src.load(i, i)
    const b = src.readBlock(i)
    parts.push(b)
    if (b.length < blksize) return Buffer.concat(parts)
  }
}

async function content(store: Awaited<ReturnType<typeof createFileStore>>, name: string, mode: 'octet' | 'netascii' = 'octet'): Promise<Buffer> {
  const r = await store.open(name, ctx)
  if (!r.ok) throw new Error(`${name}: ${r.error.code}`)
  const b = await readAll(r.value.blocks(512, mode), 512)
  await r.value.close()
  return b
}

t.test('kept, checked against the name on every open, bounded', async (t) => {
  const root = await tempDir(t)
  const a = pseudoRandomBytes(70_000, 1)
  await writeFile(path.join(root, 'undionly.kpxe'), a)
  await writeFile(path.join(root, 'big'), pseudoRandomBytes(5000, 2))
  const store = await createFileStore({ root, memoryMaxFile: 100_000, memoryMaxTotal: 150_000 })

  t.ok((await content(store, 'undionly.kpxe')).equals(a))
  t.match(store.memoryStats(), { hits: 0, loads: 1, files: 1, bytes: 70_000 })
  for (let i = 0; i < 3; i++) t.ok((await content(store, '/undionly.kpxe')).equals(a))
  t.match(store.memoryStats(), { hits: 3, loads: 1 }, 'three opens from memory')

  // rewritten in place (same inode, new size and mtime): read again
  const b = pseudoRandomBytes(70_001, 3)
  await writeFile(path.join(root, 'undionly.kpxe'), b)
  t.ok((await content(store, 'undionly.kpxe')).equals(b), 'the new content')
  // replaced by rename (new inode, same size): read again
  const c = pseudoRandomBytes(70_001, 4)
  await writeFile(path.join(root, 'tmp'), c)
  await rename(path.join(root, 'tmp'), path.join(root, 'undionly.kpxe'))
  t.ok((await content(store, 'undionly.kpxe')).equals(c), 'the replacing file')
  t.match(store.memoryStats(), { hits: 3, loads: 3, files: 1, bytes: 70_001 })

  // the name checks still run: a kept file that becomes a link out of the root is refused
  const outside = await tempDir(t)
  await writeFile(path.join(outside, 'secret'), c)
  await rm(path.join(root, 'undionly.kpxe'))
  await symlink(path.join(outside, 'secret'), path.join(root, 'undionly.kpxe'))
  const r = await store.open('undionly.kpxe', ctx)
  t.equal(r.ok ? 'ok' : r.error.code, 'traversal')

  // netascii from kept bytes
  await writeFile(path.join(root, 'text'), 'a\nb\n')
  t.equal((await content(store, 'text', 'netascii')).toString(), 'a\r\nb\r\n')
  t.equal((await content(store, 'text', 'netascii')).toString(), 'a\r\nb\r\n')

  // the total bound: two files of 70,001 + 80,000 > 150,000: the oldest goes
  await writeFile(path.join(root, 'x'), pseudoRandomBytes(80_000, 5))
  await writeFile(path.join(root, 'y'), pseudoRandomBytes(75_000, 6))
  await content(store, 'x')
  await content(store, 'y')
  t.ok(store.memoryStats().bytes <= 150_000, `kept ${store.memoryStats().bytes} octets, bound 150,000`)
})

t.test('over the size cap: from disk each time', async (t) => {
  const root = await tempDir(t)
  const big = pseudoRandomBytes(200_000, 7)
  await writeFile(path.join(root, 'big'), big)
  const store = await createFileStore({ root, memoryMaxFile: 100_000 })
  t.ok((await content(store, 'big')).equals(big))
  t.ok((await content(store, 'big')).equals(big))
  t.match(store.memoryStats(), { hits: 0, loads: 0, files: 0 })
})

t.test('through the server: 20 transfers of one file, exact bytes', async (t) => {
  const root = await tempDir(t)
  const data = pseudoRandomBytes(74_000, 9)
  await writeFile(path.join(root, 'undionly.kpxe'), data)
  const { port } = await startServer(t, { root })
  for (let i = 0; i < 20; i++) {
    const r = await fetchWithClient(port, 'undionly.kpxe', [{ name: 'blksize', value: '1432' }])
    t.equal(sha256(r.data), sha256(data), `transfer ${i + 1}`)
  }
})

t.test('a storm of first opens reads the file once', async (t) => {
  const root = await tempDir(t)
  const a = pseudoRandomBytes(300_000, 7)
  await writeFile(path.join(root, 'ipxe.efi'), a)
  const store = await createFileStore({ root, memoryMaxFile: 1_000_000, memoryMaxTotal: 4_000_000 })
  // 50 opens before any has finished: all but the first wait for its read
  const all = await Promise.all(Array.from({ length: 50 }, async () => await content(store, 'ipxe.efi')))
  t.ok(all.every((b) => b.equals(a)), 'every open got the exact bytes')
  t.match(store.memoryStats(), { loads: 1, hits: 49, files: 1, bytes: 300_000 }, 'one read from disk, 49 shared')
  // a failed first load (file gone) leaves no stale promise: the next open reads again
  await rm(path.join(root, 'ipxe.efi'))
  const gone = await store.open('ipxe.efi', ctx)
  t.equal(gone.ok, false, 'a removed file is not served from memory')
  await writeFile(path.join(root, 'ipxe.efi'), a)
  t.ok((await content(store, 'ipxe.efi')).equals(a), 'served again once it is back')
})

t.test('kept files are served from preformatted DATA packets, identical to encodeData, block numbers wrapping', async (t) => {
  const { encodeData } = await import('../../server/tftp/codec.js')
  const { PreformattedSource } = await import('../../server/tftp/files.js')
  // 70,000 blocks of 8 octets: past block 65535, so the header's block number wraps to 0
  const blksize = 8
  const data = pseudoRandomBytes(blksize * 70_000 + 5, 9)
  const src = PreformattedSource.of(data, blksize)
  t.equal(PreformattedSource.of(data, blksize).readBlock(3).buffer, src.readBlock(3).buffer, 'one layout per file and blksize, shared')
  let mismatches = 0
  const last = Math.floor(data.length / blksize)
  for (const i of [0, 1, 65534, 65535, 65536, 65537, last]) {
    const block = (i + 1) & 0xffff
    const b = src.readBlock(i)
    const want = data.subarray(i * blksize, Math.min((i + 1) * blksize, data.length))
    if (!b.equals(want)) mismatches++
    const framed = src.framed(b, block)
    t.ok(framed?.equals(encodeData(block, want)), `block index ${i} (number ${block}) framed as encodeData would`)
  }
  t.equal(mismatches, 0, 'readBlock returns the file bytes')
  t.equal(src.readBlock(last).length, 5, 'the last block is short')
  t.equal(src.framed(Buffer.from(src.readBlock(2)), 3), undefined, 'a copy of a block is not framed from the layout')
  t.equal(src.framed(src.readBlock(2), 4), undefined, 'a block number that does not match is not framed')
  const exact = PreformattedSource.of(pseudoRandomBytes(1024, 3), 512)
  t.equal(exact.readBlock(2).length, 0, 'a file of whole blocks ends with an empty block (RFC 1350 §6)')
  t.ok(exact.framed(exact.readBlock(2), 3)?.equals(encodeData(3, Buffer.alloc(0))), 'framed as a 4-octet DATA')
})

t.test('concurrent opens of one name share one path check; the next open after it checks again', async (t) => {
  const root = await tempDir(t)
  const a = pseudoRandomBytes(30_000, 11)
  const b = pseudoRandomBytes(30_000, 12)
  await writeFile(path.join(root, 'f'), a)
  const store = await createFileStore({ root })
  const all = await Promise.all(Array.from({ length: 20 }, async () => await content(store, 'f')))
  t.ok(all.every((x) => x.equals(a)), '20 concurrent opens, each the file')
  await writeFile(path.join(root, 'f.new'), b)
  await rename(path.join(root, 'f.new'), path.join(root, 'f'))
  t.ok((await content(store, 'f')).equals(b), 'replaced: the next open sees the new file')
  const [up, missing, f] = await Promise.all([store.open('../f', ctx), store.open('missing', ctx), store.open('f', ctx)])
  t.same([up.ok ? 'ok' : up.error.code, missing.ok ? 'ok' : missing.error.code, f.ok], ['traversal', 'not-found', true], 'concurrent opens of different names each get their own answer')
})

t.test('a linked file (setup.ts keptFile) is read once per version and served preformatted from its second transfer', async (t) => {
  const { keptFile } = await import('../../server/tftp/setup.js')
  const root = await tempDir(t)
  const target = path.join(root, 'ipxe.efi')
  const a = pseudoRandomBytes(50_000, 21)
  await writeFile(target, a)
  const get = keptFile(target)
  const [x, y] = await Promise.all([get(), get()])
  t.ok(x.equals(a), 'the bytes')
  t.equal(x, y, 'concurrent opens share one read (the same Buffer)')
  t.equal(await get(), x, 'an unchanged file is not read again')
  const b = pseudoRandomBytes(50_000, 22)
  await writeFile(target + '.new', b)
  await rename(target + '.new', target)
  const z = await get()
  t.ok(z.equals(b), 'a replaced file is read again')
  const store = await createFileStore({ root: await tempDir(t), virtualFiles: { 'ipxe.efi': get } })
  const open = async (): Promise<BlockSource> => {
    const r = await store.open('ipxe.efi', ctx)
    if (!r.ok) throw new Error(r.error.code)
    return r.value.blocks(1432, 'octet')
  }
  const first = await open()
  const second = await open()
  t.equal(first.framed?.(first.readBlock(0), 1), undefined, 'first transfer of a Buffer: served as is')
  t.ok(second.framed?.(second.readBlock(0), 1)?.subarray(4).equals(b.subarray(0, 1432)), 'second transfer of the same Buffer: preformatted packets')
  t.ok((await readAll(second, 1432)).equals(b), 'whole content')
})
