/**
 * Uploading image files to the store, shared by `image add` and `image build`:
 * each file is hashed, then sent (PUT /api/v1/blobs/<sha256>) only when the server
 * does not hold that content yet; progress shows on a terminal.
 */
import { createReadStream, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { ApiClient } from './client.js'

/** Hashes a file, uploads it unless the server has it, with progress on a terminal. Returns its sha256. */
export async function uploadFile (c: ApiClient, what: string, file: string): Promise<string> {
  const size = statSync(file).size
  const progress = (verb: string, done: number): void => {
    if (process.stderr.isTTY) process.stderr.write(`\r${verb} ${what} ${file}: ${size === 0 ? 100 : Math.floor(done * 100 / size)}%   `)
  }
  const hash = createHash('sha256')
  let done = 0
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer)
    done += (chunk as Buffer).length
    progress('hashing', done)
  }
  const digest = hash.digest('hex')
  if (!(await c.exists(`/api/v1/blobs/${digest}`))) {
    let sent = 0
    const body = Readable.toWeb(createReadStream(file, { highWaterMark: 1 << 20 }).on('data', (ch) => { sent += ch.length; progress('uploading', sent) }))
    await c.request('PUT', `/api/v1/blobs/${digest}`, body, 'application/octet-stream')
  }
  if (process.stderr.isTTY) process.stderr.write(`\r${what} ${file}: sha256:${digest}\n`)
  return digest
}

export interface ImageFiles {
  readonly name: string
  readonly kernel: string
  readonly initrd: string
  readonly rootfs?: string
  /** A unified kernel image that UEFI nodes boot instead of kernel + initrd. */
  readonly uki?: string
  /** Version label; the server's default (a UTC timestamp) when absent. */
  readonly version?: string
  readonly params: string
}

/** Uploads an image version's files (each once, by content) and registers the version: `image add`'s request. */
export async function registerImage<T> (c: ApiClient, f: ImageFiles): Promise<T> {
  const kernelSha256 = await uploadFile(c, 'kernel', f.kernel)
  const initrdSha256 = await uploadFile(c, 'initrd', f.initrd)
  const rootfsSha256 = f.rootfs !== undefined ? await uploadFile(c, 'rootfs', f.rootfs) : undefined
  const ukiSha256 = f.uki !== undefined ? await uploadFile(c, 'uki', f.uki) : undefined
  return await c.request<T>('POST', '/api/v1/images', {
    name: f.name, kernelSha256, initrdSha256, params: f.params, ...(rootfsSha256 !== undefined ? { rootfsSha256 } : {}), ...(ukiSha256 !== undefined ? { ukiSha256 } : {}),
    ...(f.version !== undefined ? { version: f.version } : {}),
  })
}
