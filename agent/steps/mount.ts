/**
 * Step `mount`: the verified squashfs, read-only, under an overlay whose upper layer
 * is a size-capped tmpfs, at NEWROOT — what dracut's dmsquash-live does for
 * `root=live:` (reference/INITRAMFS.md), with the cap dracut-ng spells
 * `rd.overlay=tmpfs:size=…`:
 *
 *   mount -t squashfs -o ro,loop  <work>/rootfs.squashfs  <work>/lower
 *   mount -t tmpfs -o size=<cap>,mode=0755  netboot-overlay  <work>/overlay
 *   mount -t overlay -o lowerdir=<work>/lower,upperdir=<work>/overlay/upper,workdir=<work>/overlay/work  netboot-root  NEWROOT
 *
 * The work directory lives on the initramfs /run, which dracut moves to NEWROOT/run
 * at switch_root (Documentation/filesystems/overlayfs.rst: the layers must stay
 * reachable; a moved mount keeps its submounts). `-o loop` sets LO_FLAGS_AUTOCLEAR
 * (util-linux mount(8)), so unmounting the squashfs frees its loop device.
 * Any failure unmounts what this step mounted, in reverse order, before it throws.
 * Tools: util-linux `mount` and `umount` (in every dracut initramfs).
 */
import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { AgentError } from '../errors.js'
import type { AgentLog } from '../log.js'

export type Exec = (cmd: string, args: readonly string[]) => Promise<{ stdout: string; stderr: string }>

/** execFile with a timeout; rejects with stderr in the message. */
export const execTool: Exec = async (cmd, args) => await new Promise((resolve, reject) => {
  execFile(cmd, [...args], { timeout: 60_000, maxBuffer: 1 << 20, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
    if (err !== null) reject(Object.assign(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`), { stderr }))
    else resolve({ stdout, stderr })
  })
})

export interface MountPlan {
  /** The verified image (rootfs step). */
  readonly image: string
  readonly workDir: string
  readonly newRoot: string
  /** tmpfs size= for the upper layer: bytes with an optional k/m/g suffix, or a percentage of RAM. */
  readonly overlaySize: string
}

export interface MountedRoot {
  readonly newRoot: string
  readonly lower: string
  readonly overlay: string
  readonly upper: string
  /** Mount points in the order they were mounted. */
  readonly mounts: readonly string[]
}

export const OVERLAY_SIZE = /^[1-9][0-9]*[kKmMgG]?$|^(?:[1-9][0-9]?|100)%$/

function fail (why: string, e?: unknown): AgentError {
  return new AgentError('AGENT_MOUNT', 'mount', `${why}${e !== undefined ? `: ${(e as Error).message ?? String(e)}` : ''}`, e !== undefined ? { cause: e } : {})
}

/** Mount points listed in /proc/self/mountinfo (field 5, with \040-style escapes undone). */
export async function mountPoints (): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  const out = new Set<string>()
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    if (f[4] !== undefined) out.add(f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
  }
  return out
}

/** overlayfs splits its options at ',' and lowerdir at ':'; '\\' escapes; keep paths plain. */
function checkPath (what: string, p: string): void {
  if (/[,:\\\s]/.test(p)) throw fail(`${what} ${JSON.stringify(p)} contains a comma, colon, backslash or space, which mount options cannot carry`)
}

export async function mountRoot (d: { exec?: Exec; log: AgentLog }, plan: MountPlan): Promise<MountedRoot> {
  const exec = d.exec ?? execTool
  if (!OVERLAY_SIZE.test(plan.overlaySize)) throw fail(`overlay size ${JSON.stringify(plan.overlaySize)} is not a tmpfs size (e.g. 2g, 512m, 50%)`)
  const work = resolve(plan.workDir)
  const newRoot = resolve(plan.newRoot)
  const lower = join(work, 'lower')
  const overlay = join(work, 'overlay')
  const upper = join(overlay, 'upper')
  const ovlWork = join(overlay, 'work')
  for (const [what, p] of [['the work directory', work], ['NEWROOT', newRoot]] as const) checkPath(what, p)
  const s = await stat(newRoot).catch(() => undefined)
  if (s === undefined || !s.isDirectory()) throw fail(`NEWROOT ${newRoot} is not a directory`)
  const existing = await mountPoints()
  for (const p of [newRoot, lower, overlay]) if (existing.has(p)) throw fail(`${p} is already a mount point`)

  const mounted: string[] = []
  try {
    await mkdir(lower, { recursive: true, mode: 0o755 })
    await mkdir(overlay, { recursive: true, mode: 0o755 })
    try {
      await exec('mount', ['-t', 'squashfs', '-o', 'ro,loop', plan.image, lower])
    } catch (e) {
      throw fail(`the root image ${plan.image} does not mount as squashfs`, e)
    }
    mounted.push(lower)
    try {
      await exec('mount', ['-t', 'tmpfs', '-o', `size=${plan.overlaySize},mode=0755`, 'netboot-overlay', overlay])
    } catch (e) {
      throw fail(`the overlay tmpfs (size=${plan.overlaySize}) does not mount on ${overlay}`, e)
    }
    mounted.push(overlay)
    await mkdir(upper, { mode: 0o755 })
    await mkdir(ovlWork, { mode: 0o755 })
    // The root of the merged tree takes upperdir's mode: make it 0755 whatever the umask.
    await chmod(upper, 0o755)
    try {
      await exec('mount', ['-t', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${ovlWork}`, 'netboot-root', newRoot])
    } catch (e) {
      throw fail(`the overlay does not mount on ${newRoot}`, e)
    }
    mounted.push(newRoot)
  } catch (e) {
    await unmountAll(exec, mounted, d.log)
    throw e
  }
  const init = await Promise.all(['sbin/init', 'usr/sbin/init', 'usr/lib/systemd/systemd'].map(async (p) => await stat(join(newRoot, p)).then(() => p, () => undefined)))
  if (!init.some((x) => x !== undefined)) d.log.warn('mount', `the root image has no /sbin/init or systemd: switch_root needs init= to name one`)
  d.log.info('mount', `squashfs read-only on ${lower}, overlay with a ${plan.overlaySize} tmpfs upper layer on ${newRoot}`)
  return { newRoot, lower, overlay, upper, mounts: mounted }
}

async function unmountAll (exec: Exec, mounts: readonly string[], log: AgentLog): Promise<string[]> {
  const left: string[] = []
  for (const p of [...mounts].reverse()) {
    try {
      await exec('umount', [p])
    } catch (e) {
      log.warn('mount', `umount ${p}: ${(e as Error).message}`)
      left.push(p)
    }
  }
  return left
}

/** Undoes mountRoot (a failed boot, tests): NEWROOT, the tmpfs, the squashfs (its loop device autoclears). */
export async function unmountRoot (d: { exec?: Exec; log: AgentLog }, m: MountedRoot): Promise<void> {
  const left = await unmountAll(d.exec ?? execTool, m.mounts, d.log)
  if (left.length > 0) throw fail(`could not unmount ${left.join(', ')}`)
}
