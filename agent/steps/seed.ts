/**
 * Step `seed`: hand the booted system what it needs.
 *
 *  NEWROOT/var/lib/cloud/seed/nocloud/{meta-data,user-data,vendor-data[,network-config]}
 *      cloud-init's NoCloud seed directory (reference/INITRAMFS.md; ds-identify takes it
 *      only when meta-data and user-data both exist). The server already merged plain
 *      and secure data; user-data carries secrets, so every file is 0600 and the
 *      directory 0700 (cloud-init runs as root). They land in the overlay's tmpfs upper
 *      layer: RAM only. A network-config the image shipped is removed when the server
 *      sends none, so an image cannot override the node's seed.
 *
 *  <run>/netboot/token        the node token, 0600 in a 0700 directory
 *  <run>/netboot/boot.json    what was attested and measured (no secret), 0644
 *      <run> is the initramfs /run, not NEWROOT/run: dracut (systemd's switch-root and
 *      util-linux switch_root alike) moves the initramfs /run onto NEWROOT/run, which
 *      hides whatever was written into NEWROOT/run, and /run is a tmpfs, so the token
 *      never touches a disk. The booted system finds it at /run/netboot/token.
 *
 * Paths inside NEWROOT are opened without following symlinks: a link in the image
 * (var/lib/cloud → /somewhere) must not make the agent write outside NEWROOT.
 */
import { constants } from 'node:fs'
import { lstat, mkdir, open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentError } from '../errors.js'
import type { AgentLog } from '../log.js'
import type { NoCloudSeed } from './secrets.js'
import type { Measurement } from './measure.js'

export const SEED_DIR = 'var/lib/cloud/seed/nocloud'

export interface BootRecord {
  readonly node: string
  readonly groups: readonly string[]
  readonly attestationId: string
  /** Seconds since the epoch (server clock). */
  readonly tokenExpiresAt: number
  readonly server: string
  readonly rootfs: { readonly url: string; readonly sha256: string }
  readonly instanceId: string
  readonly measurement: Measurement
}

export interface SeedPlan {
  readonly newRoot: string
  /** The initramfs /run (tests: a directory of their own). */
  readonly runDir: string
  readonly seed: NoCloudSeed
  readonly token: string
  readonly record: BootRecord
}

export interface SeedWritten {
  readonly seedDir: string
  readonly files: readonly string[]
  readonly tokenFile: string
  readonly recordFile: string
}

function fail (why: string, e?: unknown): AgentError {
  return new AgentError('AGENT_SEED', 'seed', `${why}${e !== undefined ? `: ${(e as Error).message ?? String(e)}` : ''}`, e !== undefined ? { cause: e } : {})
}

/** mkdir -p of `rel` under `root`, refusing any component that exists as a non-directory or symlink. */
async function safeMkdirs (root: string, rel: string, leafMode: number): Promise<string> {
  let p = root
  const parts = rel.split('/').filter((x) => x !== '')
  for (const [i, part] of parts.entries()) {
    p = join(p, part)
    const s = await lstat(p).catch(() => undefined)
    if (s === undefined) {
      await mkdir(p, { mode: i === parts.length - 1 ? leafMode : 0o755 })
      continue
    }
    if (s.isSymbolicLink()) throw fail(`${p} is a symbolic link in the root image; refusing to write through it`)
    if (!s.isDirectory()) throw fail(`${p} exists and is not a directory`)
  }
  return p
}

/** Writes a file with exactly `mode`, never through a symlink. */
async function writeFileExact (path: string, data: string, mode: number): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode)
  try {
    await fh.chmod(mode)
    await fh.writeFile(data, 'utf8')
  } finally {
    await fh.close()
  }
}

export async function writeSeed (d: { log: AgentLog }, plan: SeedPlan): Promise<SeedWritten> {
  try {
    const seedDir = await safeMkdirs(plan.newRoot, SEED_DIR, 0o700)
    const { seed } = plan
    const docs: [string, string | undefined][] = [
      ['meta-data', seed.metaData], ['user-data', seed.userData], ['vendor-data', seed.vendorData], ['network-config', seed.networkConfig],
    ]
    const files: string[] = []
    for (const [name, text] of docs) {
      const path = join(seedDir, name)
      if (text === undefined) {
        await rm(path, { force: true })
        continue
      }
      await writeFileExact(path, text, 0o600)
      files.push(path)
    }
    const runDir = await safeMkdirs(plan.runDir, 'netboot', 0o700)
    const tokenFile = join(runDir, 'token')
    await writeFileExact(tokenFile, plan.token, 0o600)
    const recordFile = join(runDir, 'boot.json')
    await writeFileExact(recordFile, `${JSON.stringify(plan.record, null, 2)}\n`, 0o644)
    d.log.info('seed', `NoCloud seed ${seed.instanceId} in ${seedDir} (${files.length} files), token in ${tokenFile}`)
    return { seedDir, files, tokenFile, recordFile }
  } catch (e) {
    if (e instanceof AgentError) throw e
    throw fail('writing the NoCloud seed and the token', e)
  }
}
