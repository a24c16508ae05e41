/**
 * agent/steps/mount.ts with the real mount(8) as root, in temp dirs: a squashfs
 * read-only under a size-capped tmpfs overlay, and every failure unwinding what
 * it had mounted (no mount, no loop device left).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { memoryLog } from '../../agent/log.js'
import { execTool, mountRoot, unmountRoot, type Exec } from '../../agent/steps/mount.js'
import { tempDir } from '../helpers/tmp.js'
import { buildSquashfs, cleanupMounts, loopsUnder, mountsUnder, realPeerProblems } from './helpers.js'

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  const setup = (t: Test) => {
    const dir = tempDir(t, 'netboot-mount-')
    t.teardown(() => cleanupMounts(dir))
    const work = join(dir, 'work')
    const newRoot = join(dir, 'newroot')
    mkdirSync(work)
    mkdirSync(newRoot)
    return { dir, work, newRoot }
  }

  t.test('mount and unmount: ro squashfs, tmpfs upper capped, overlay at NEWROOT; unmount frees the loop device', async (t) => {
    const { dir, work, newRoot } = setup(t)
    const img = buildSquashfs(join(dir), 'm1')
    const log = memoryLog()
    const m = await mountRoot({ log }, { image: img.path, workDir: work, newRoot, overlaySize: '16m' })
    t.same(m.mounts, [join(work, 'lower'), join(work, 'overlay'), newRoot])
    t.equal(readFileSync(join(newRoot, 'etc/netboot-marker'), 'utf8'), 'm1\n')
    t.equal(loopsUnder(dir).length, 1, 'one loop device')
    // the cap holds: writing more than 16m into the root fails with ENOSPC
    const dd = spawnSync('dd', ['if=/dev/zero', `of=${join(newRoot, 'fill')}`, 'bs=1M', 'count=32'], { encoding: 'utf8' })
    t.not(dd.status, 0, 'the upper layer is capped')
    t.match(dd.stderr, /No space left on device/)
    await unmountRoot({ log }, m)
    t.same(mountsUnder(dir), [], 'all unmounted')
    t.same(loopsUnder(dir), [], 'the loop device autocleared')
  })

  t.test('an image that is not a squashfs: AGENT_MOUNT, nothing left mounted', async (t) => {
    const { dir, work, newRoot } = setup(t)
    const bogus = join(dir, 'bogus.squashfs')
    writeFileSync(bogus, Buffer.alloc(1 << 20, 7))
    await t.rejects(mountRoot({ log: memoryLog() }, { image: bogus, workDir: work, newRoot, overlaySize: '16m' }), { code: 'AGENT_MOUNT', failure: 'mount', message: /does not mount as squashfs: mount -t squashfs/ })
    t.same(mountsUnder(dir), [])
    t.same(loopsUnder(dir), [])
  })

  t.test('the overlay mount fails: the tmpfs and the squashfs are unmounted before the error', async (t) => {
    const { dir, work, newRoot } = setup(t)
    const img = buildSquashfs(dir, 'm2')
    const exec: Exec = async (cmd, args) => {
      if (args.includes('overlay')) throw new Error('mount: netboot-root: wrong fs type (simulated)')
      return await execTool(cmd, args)
    }
    await t.rejects(mountRoot({ exec, log: memoryLog() }, { image: img.path, workDir: work, newRoot, overlaySize: '16m' }), { code: 'AGENT_MOUNT', message: /the overlay does not mount on .*simulated/ })
    t.same(mountsUnder(dir), [], 'unwound')
    t.same(loopsUnder(dir), [])
  })

  t.test('refused before mounting: NEWROOT already a mount point, a bad size, a path mount options cannot carry', async (t) => {
    const { dir, work, newRoot } = setup(t)
    const img = buildSquashfs(dir, 'm3')
    t.equal(spawnSync('mount', ['-t', 'tmpfs', 'x', newRoot]).status, 0)
    await t.rejects(mountRoot({ log: memoryLog() }, { image: img.path, workDir: work, newRoot, overlaySize: '16m' }), { code: 'AGENT_MOUNT', message: /is already a mount point/ })
    await t.rejects(mountRoot({ log: memoryLog() }, { image: img.path, workDir: work, newRoot, overlaySize: 'lots' }), { code: 'AGENT_MOUNT', message: /not a tmpfs size/ })
    const odd = join(dir, 'a,b')
    mkdirSync(odd)
    await t.rejects(mountRoot({ log: memoryLog() }, { image: img.path, workDir: odd, newRoot: join(dir, 'nr'), overlaySize: '16m' }), { code: 'AGENT_MOUNT', message: /contains a comma/ })
    await t.rejects(mountRoot({ log: memoryLog() }, { image: img.path, workDir: work, newRoot: join(dir, 'missing'), overlaySize: '16m' }), { code: 'AGENT_MOUNT', message: /is not a directory/ })
    t.same(mountsUnder(dir), [newRoot], 'only the test’s own tmpfs')
  })
}
