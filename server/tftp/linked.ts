/**
 * Files linked out of ipxe_dir, served by name (setup.ts decides which; the
 * in-process server and the TFTP worker both serve them through keptFile).
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'

/**
 * Symlinks at the top of ipxe_dir that point out of it (Debian's ipxe package:
 * ipxe.efi -> /boot/ipxe.efi), name -> real target: the configured directory is
 * the admin's choice, so its own links, as they are at start-up, are served by
 * name; the file store still refuses every other name that resolves outside the
 * root.
 */
export async function linkedTargets (dir: string, log: Logger): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const root = await realpath(dir)
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isSymbolicLink()) continue
    const target = await realpath(join(dir, e.name)).catch(() => undefined)
    if (target === undefined || target.startsWith(root + '/')) continue
    if (!(await stat(target)).isFile()) continue
    out[e.name] = target
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
