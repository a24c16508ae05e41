/**
 * The chainload path over HTTP:
 *
 *   GET /boot/<mac>[.ipxe]          the node's iPXE script (discovery or reboot for unknown MACs)
 *   GET /images/<sha256>[/<name>]   kernels, initrds, root images, by content digest (Range, ETag)
 *   GET /ipxe/<file>                the iPXE binaries, for UEFI HTTP boot
 *
 * Images are immutable under their digest, so they are served with a long
 * cache lifetime and the digest as a strong ETag.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { NetbootError } from '../../errors.js'
import type { FastifyBaseLogger } from 'fastify'
import type { BootService } from '../../boot/service.js'
import type { BlobStore } from '../../images/blobs.js'
import { sendFile } from '../send-file.js'

export interface BootRouteDeps {
  readonly boot: BootService
  readonly blobs: BlobStore
  /** Directory of the iPXE binaries (tftp.ipxe_dir). */
  readonly ipxeDir: string
}

const DIGEST = /^[0-9a-f]{64}$/

/** What GET /boot/<mac> answers with (fastify's route and fast.ts alike). */
export const SCRIPT_CONTENT_TYPE = 'text/plain; charset=utf-8'

/**
 * The log line of a script served: a known node's script is what `netboot boot show`
 * prints (debug); a discovery or reboot script for an unknown MAC is news (info).
 */
export function bootLogScript (log: FastifyBaseLogger, mac: string, r: Awaited<ReturnType<BootService['scriptForMac']>>): void {
  if (r.kind === 'boot') log.debug({ mac, node: r.node, kind: r.kind }, 'boot: script served')
  else log.info({ mac, node: r.node, kind: r.kind }, 'boot: script served')
}

export async function bootRoutes (app: FastifyInstance, d: BootRouteDeps): Promise<void> {
  // Sockets reach fast.ts first; this route answers inject() and what the fast path hands over.
  app.get('/boot/:mac', async (req, reply) => {
    const { mac } = req.params as { mac: string }
    const r = await d.boot.scriptForMac(mac.replace(/\.ipxe$/, ''))
    bootLogScript(req.log, mac, r)
    return await reply.type(SCRIPT_CONTENT_TYPE).header('cache-control', 'no-store').send(r.script)
  })

  const blob = async (digest: string): Promise<{ path: string; size: number }> => {
    if (!DIGEST.test(digest)) throw new NetbootError('IMAGE_DIGEST_INVALID', 'an image is named by its sha256, 64 lower-case hex digits')
    const info = await d.blobs.stat(digest)
    if (info === undefined) throw new NetbootError('BLOB_NOT_FOUND', `no image file ${digest}`)
    return { path: d.blobs.path(digest), size: info.size }
  }
  const serveBlob = async (req: Parameters<typeof sendFile>[0], reply: Parameters<typeof sendFile>[1], digest: string): Promise<void> => {
    const b = await blob(digest)
    await sendFile(req, reply, { path: b.path, size: b.size, etag: digest, cacheControl: 'public, max-age=31536000, immutable' })
  }
  app.get('/images/:digest', async (req, reply) => { await serveBlob(req, reply, (req.params as { digest: string }).digest) })
  app.get('/images/:digest/:name', async (req, reply) => { await serveBlob(req, reply, (req.params as { digest: string }).digest) })

  // Only names that are files in the directory, as listed: no path ever reaches the filesystem.
  app.get('/ipxe/:file', async (req, reply) => {
    const { file } = req.params as { file: string }
    const names = await readdir(d.ipxeDir).catch(() => [] as string[])
    if (!names.includes(file)) throw new NetbootError('FILE_NOT_FOUND', `no iPXE binary ${file}`)
    const path = join(d.ipxeDir, file)
    const s = await stat(path)
    await sendFile(req, reply, { path, size: s.size, mtime: s.mtime })
  })
}
