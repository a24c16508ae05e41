/**
 * The TFTP service from the configuration: the iPXE binaries directory, read-only,
 * plus the generated `autoexec.ipxe` some NICs ask for first; transfers counted
 * on the server's Prometheus registry.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { LoadedConfig } from '../config/load.js'
import { createTftpServer, type TftpServer } from './server.js'

export async function startTftp (loaded: LoadedConfig, autoexec: () => Buffer, log: Logger, registry: Registry): Promise<TftpServer> {
  const c = loaded.config.tftp
  const transfers = new Counter({ name: 'netboot_tftp_transfers_total', help: 'TFTP transfers by result', labelNames: ['result'], registers: [registry] })
  const refused = new Counter({ name: 'netboot_tftp_refused_total', help: 'TFTP requests refused, by reason', labelNames: ['reason'], registers: [registry] })
  const bytes = new Counter({ name: 'netboot_tftp_bytes_total', help: 'Bytes sent by completed TFTP transfers', registers: [registry] })
  const seconds = new Histogram({ name: 'netboot_tftp_transfer_seconds', help: 'TFTP transfer duration', registers: [registry], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30] })
  const server = createTftpServer({
    root: c.ipxe_dir,
    virtualFiles: { ...(await linkedFiles(c.ipxe_dir, log)), 'autoexec.ipxe': () => autoexec() },
    address: c.listen,
    port: c.port,
    maxTransfers: c.max_transfers,
    log: log.child({ component: 'tftp' }),
    events: {
      onTransferDone: (n, ms) => { transfers.inc({ result: 'done' }); bytes.inc(n); seconds.observe(ms / 1000) },
      onTransferFailed: (reason) => transfers.inc({ result: reason }),
      onRequestRefused: (reason) => refused.inc({ reason }),
    },
  })
  const { port } = await server.start()
  log.info({ component: 'tftp', root: c.ipxe_dir, port }, 'tftp: serving')
  return server
}

/**
 * Symlinks at the top of ipxe_dir that point out of it (Debian's ipxe package:
 * ipxe.efi -> /boot/ipxe.efi): the configured directory is the admin's choice, so
 * its own links, as they are at start-up, are served by name; the file store
 * still refuses every other name that resolves outside the root.
 */
async function linkedFiles (dir: string, log: Logger): Promise<Record<string, () => Promise<Buffer>>> {
  const out: Record<string, () => Promise<Buffer>> = {}
  const root = await realpath(dir)
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isSymbolicLink()) continue
    const target = await realpath(join(dir, e.name)).catch(() => undefined)
    if (target === undefined || target.startsWith(root + '/')) continue
    if (!(await stat(target)).isFile()) continue
    out[e.name] = keptFile(target)
    log.info({ component: 'tftp', file: e.name, target }, 'tftp: serving a link out of ipxe_dir')
  }
  return out
}

/**
 * The bytes of `target`, read once per file version (dev, inode, size, mtime,
 * ctime: a stat per open, a read only when it changed) and shared by every
 * transfer; concurrent opens of a new version share one read. Before, each
 * transfer read the whole file (Debian's ipxe.efi, 850 KB, is such a link: a
 * storm of UEFI nodes read and dropped 850 KB per node), and a fresh Buffer
 * per transfer also defeated the preformatted DATA packets (files.ts).
 */
export function keptFile (target: string): () => Promise<Buffer> {
  let kept: { key: string, data: Buffer } | undefined
  let pending: { key: string, data: Promise<Buffer> } | undefined
  return async () => {
    const s = await stat(target)
    const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
    if (kept?.key === key) return kept.data
    if (pending?.key === key) return await pending.data
    const data = readFile(target).then((d) => { kept = { key, data: d }; return d })
    pending = { key, data }
    try {
      return await data
    } finally {
      if (pending?.data === data) pending = undefined
    }
  }
}
