/**
 * BlobStore.stat keeps what it found per digest (blobs are immutable under their
 * name): serving an image costs no stat(2) per request. Shown by moving the file
 * away after the first stat (the store still answers from memory, as documented
 * for deletions behind its back), remove() forgetting the digest, and misses not
 * being kept (a blob added later is found at once).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BlobStore } from '../../server/images/blobs.js'
import { tempDir } from '../helpers/tmp.js'
import { pattern } from './helpers.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('found blobs are answered from memory; remove() forgets; misses are not kept', async (t) => {
  const base = tempDir(t, 'netboot-blobcache-')
  const src = join(base, 'src')
  mkdirSync(src)
  const store = new BlobStore(join(base, 'store'))
  await store.init()
  const data = pattern(70_000)
  const digest = sha(data)

  t.equal(await store.stat(digest), undefined, 'not there yet')
  writeFileSync(join(src, 'k'), data)
  await store.add(join(src, 'k'))
  t.same(await store.stat(digest), { sha256: digest, size: data.length }, 'a miss was not kept: found once added')

  // behind the store's back: the file leaves, the answer stays (no stat per request)
  renameSync(store.path(digest), join(base, 'moved'))
  t.same(await store.stat(digest), { sha256: digest, size: data.length }, 'answered from memory')
  renameSync(join(base, 'moved'), store.path(digest))

  t.equal(await store.remove(digest), true)
  t.equal(await store.stat(digest), undefined, 'remove() forgets the digest')
  t.equal(await store.has(digest), false)
})

t.test('a fresh store (another process) finds what is on disk, not what this one remembers', async (t) => {
  const base = tempDir(t, 'netboot-blobcache-')
  const a = new BlobStore(join(base, 'store'))
  await a.init()
  const data = pattern(1000)
  writeFileSync(join(base, 'f'), data)
  const { sha256 } = await a.add(join(base, 'f'))
  t.ok(await a.has(sha256))
  const b = new BlobStore(join(base, 'store'))
  t.ok(await b.has(sha256))
  await b.remove(sha256)
  t.equal(await b.stat(sha256), undefined, 'the remover knows')
})
