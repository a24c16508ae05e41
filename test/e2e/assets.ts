/**
 * The boot assets of the firmware end-to-end test: Debian's kernel and a tiny
 * busybox initrd, built by scripts/e2e-assets.sh into .cache/e2e (or $E2E_CACHE).
 * The script is idempotent and takes well under a second once the cache is
 * filled, so it runs every time; a fresh machine downloads the two .debs.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = join(ROOT, 'scripts', 'e2e-assets.sh')

export interface E2eAssets {
  readonly dir: string
  readonly kernel: string
  readonly initrd: string
  readonly kernelSha256: string
  readonly initrdSha256: string
  /** e.g. 6.1.0-28-amd64 */
  readonly kernelVersion: string
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')

export async function e2eAssets (): Promise<E2eAssets> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('bash', [SCRIPT], { timeout: 600_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`scripts/e2e-assets.sh failed (${err.message}):\n${stderr}`))
      else resolve(stdout.trim().split('\n').pop() ?? '')
    })
  })
  const kernel = join(out, 'vmlinuz')
  const initrd = join(out, 'initrd.img')
  return {
    dir: out,
    kernel,
    initrd,
    kernelSha256: sha256(kernel),
    initrdSha256: sha256(initrd),
    kernelVersion: readFileSync(join(out, 'kernel-version'), 'utf8').trim(),
  }
}
