/**
 * `netboot image build`: a small busybox root (directory and tarball) → a real
 * squashfs (mksquashfs) that unsquashfs lists, the same bytes from the directory and
 * from its tarball and on every run; registered through a running `netboot serve`
 * and visible in `image show`; clear errors for roots it cannot use. The kernel is
 * Debian's (scripts/e2e-assets.sh, cached in .cache/e2e); without --initrd, dracut
 * builds the netboot initrd from the root's modules. About 3–5 minutes on a busy machine.
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { chooseKernel, isX86Kernel, kernelVersions, mksquashfsArgs, resolveInRoot, squashfsPercent } from '../../server/images/build.js'
import { e2eAssets } from '../e2e/assets.js'
import { CLI, freePort, netboot, type CliResult } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'

/** The CLI with room for mksquashfs and dracut on a busy machine (the shared helper stops at 60 s). */
async function slowNetboot (args: readonly string[]): Promise<CliResult> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NETBOOT_TOKEN: '' }, timeout: 900_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

/**
 * `netboot serve` until its admin API answers, killed (by pid) at teardown: the shared
 * helper's, with 2 minutes instead of 20 s (a node start takes 15 s and more on a busy machine).
 */
async function serve (t: Test, cfg: string, adminUrl: string): Promise<void> {
  let log = ''
  const proc = spawn(process.execPath, [CLI, '-c', cfg, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout.on('data', (d: Buffer) => { log += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { log += d.toString() })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  const deadline = Date.now() + 120_000
  for (;;) {
    try { if ((await fetch(`${adminUrl}/healthz`)).ok) return } catch { /* not up yet */ }
    if (proc.exitCode !== null) throw new Error(`netboot serve exited early:\n${log}`)
    if (Date.now() > deadline) throw new Error(`netboot serve did not come up in 120 s:\n${log}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex')

for (const [tool, pkg] of [['mksquashfs', 'squashfs-tools'], ['unsquashfs', 'squashfs-tools'], ['tar', 'tar']] as const) {
  try { execFileSync('sh', ['-c', `command -v ${tool}`]) } catch { t.fail(`${tool} is missing: install the Debian package ${pkg} (scripts/setup.sh does)`) }
}

// Under load (two cores shared by many jobs) mksquashfs and dracut take minutes.
t.setTimeout(1_800_000)

const assets = await e2eAssets()

/** A busybox root: /bin/busybox, /bin/sh and /sbin/init as links, a kernel in /boot, a stray file in /run. */
function busyboxRoot (dir: string, o: { kernels?: readonly string[]; init?: boolean } = {}): string {
  const root = join(dir, 'root')
  for (const d of ['bin', 'sbin', 'boot', 'etc', 'proc', 'sys', 'run', 'dev', 'tmp']) mkdirSync(join(root, d), { recursive: true })
  copyFileSync(join(assets.dir, 'busybox'), join(root, 'bin/busybox'))
  symlinkSync('busybox', join(root, 'bin/sh'))
  // absolute, as distributions make it: must resolve inside the root, not on the host
  if (o.init !== false) symlinkSync('/bin/busybox', join(root, 'sbin/init'))
  writeFileSync(join(root, 'etc/hostname'), 'tiny\n')
  writeFileSync(join(root, 'run/stale'), 'left by a live system\n')
  for (const k of o.kernels ?? [assets.kernelVersion]) copyFileSync(assets.kernel, join(root, 'boot', `vmlinuz-${k}`))
  // fixed times: the tree is the same input on every run
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', '@1700000000', '{}', '+'])
  return root
}

const listing = (squashfs: string): string[] =>
  execFileSync('unsquashfs', ['-l', '-d', 'R', squashfs], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('R')).sort()

t.test('pure parts', async (t) => {
  t.ok(isX86Kernel(readFileSync(assets.kernel).subarray(0, 0x206)), "Debian's kernel has the x86 boot header")
  t.notOk(isX86Kernel(Buffer.alloc(0x206)), 'zeros do not')
  t.notOk(isX86Kernel(readFileSync(join(assets.dir, 'busybox')).subarray(0, 0x206)), 'an ELF does not')
  t.same(kernelVersions(['vmlinuz-6.1.0-28-amd64', 'config-6.1.0-28-amd64', 'vmlinuz-6.1.0-9-amd64.old', 'vmlinuz', 'vmlinuz-5.10.0-1-amd64', 'System.map-6.1.0-28-amd64']),
    ['5.10.0-1-amd64', '6.1.0-28-amd64'])
  t.equal(chooseKernel(['6.1.0-28-amd64'], undefined, '/r/boot'), '6.1.0-28-amd64')
  t.throws(() => chooseKernel([], undefined, '/r/boot'), { code: 'IMAGE_BUILD_INPUT', message: /no kernel in the root: \/r\/boot\/vmlinuz-\* does not exist/ })
  t.throws(() => chooseKernel(['a', 'b'], undefined, '/r/boot'), { code: 'IMAGE_BUILD_INPUT', message: /several kernels in \/r\/boot \(a, b\): choose one with --kver/ })
  t.throws(() => chooseKernel(['a', 'b'], 'c', '/r/boot'), { message: /no kernel c in \/r\/boot \(found: a, b\)/ })
  t.equal(squashfsPercent('\r[====     ]  10/229  4%\r[=====   ] 120/229  52%'), 52)
  t.equal(squashfsPercent('Parallel mksquashfs: Using 2 processors'), undefined)
  const args = mksquashfsArgs('/src', '/out.sq', { compression: 'zstd', epoch: 0, allRoot: false })
  t.same(args.slice(0, 5), ['/src', '/out.sq', '-noappend', '-comp', 'zstd'])
  t.notOk(args.includes('-all-root'))
  t.ok(mksquashfsArgs('/src', '/o', { compression: 'xz', epoch: 5, allRoot: true }).includes('-all-root'))

  const dir = tempDir(t)
  const root = busyboxRoot(dir)
  symlinkSync('../../..', join(root, 'etc/up'))
  t.equal(resolveInRoot(root, '/sbin/init'), join(root, 'bin/busybox'), 'an absolute link resolves inside the root')
  t.equal(resolveInRoot(root, '/etc/up/bin/sh'), join(root, 'bin/busybox'), '.. stops at the root')
  t.equal(resolveInRoot(root, '/nope/x'), undefined)
  symlinkSync('loop', join(root, 'loop'))
  t.equal(resolveInRoot(root, '/loop'), undefined, 'a link loop ends')
})

t.test('a busybox root directory and its tarball give the same, reproducible squashfs', async (t) => {
  const dir = tempDir(t)
  const root = busyboxRoot(dir)
  const initrd = assets.initrd
  const b1 = await netboot(['image', 'build', 'tiny', '--root', root, '--initrd', initrd, '--no-register', '--output', join(dir, 'o1')])
  t.equal(b1.code, 0, b1.stderr)
  t.match(b1.stderr, /image build: mksquashfs .* \(zstd\)/, 'progress on stderr')
  t.match(b1.stderr, /image build: rootfs [\d.]+ MiB in [\d.]+ s/)
  t.notMatch(b1.stderr, /warning/)
  t.match(b1.stdout, new RegExp(`rootfs  ${join(dir, 'o1', 'rootfs.squashfs')}`))
  const sq = join(dir, 'o1', 'rootfs.squashfs')
  const files = listing(sq)
  for (const f of ['R/bin/busybox', 'R/bin/sh', 'R/sbin/init', 'R/etc/hostname', `R/boot/vmlinuz-${assets.kernelVersion}`, 'R/proc', 'R/sys', 'R/run']) t.ok(files.includes(f), `${f} in the image`)
  t.notOk(files.includes('R/run/stale'), 'the contents of run/ are left out')
  t.equal(sha256(join(dir, 'o1', 'vmlinuz')), assets.kernelSha256, 'the kernel is the root\'s')
  t.equal(sha256(join(dir, 'o1', 'initrd.img')), assets.initrdSha256, 'the initrd is the one given')
  const super0 = readFileSync(sq).subarray(0, 96)
  t.equal(super0.readUInt32LE(0), 0x73717368, 'squashfs magic "hsqs"')
  t.equal(super0.readUInt16LE(20), 6, 'compression id 6: zstd')

  const b2 = await netboot(['image', 'build', 'tiny', '--root', root, '--initrd', initrd, '--no-register', '--output', join(dir, 'o2')])
  t.equal(b2.code, 0, b2.stderr)
  t.equal(sha256(join(dir, 'o2', 'rootfs.squashfs')), sha256(sq), 'a second build gives the same bytes')

  const tarball = join(dir, 'root.tar.gz')
  execFileSync('tar', ['-c', '-z', '-f', tarball, '--numeric-owner', '-C', root, '.'])
  const b3 = await netboot(['image', 'build', 'tiny', '--root', tarball, '--initrd', initrd, '--no-register', '--output', join(dir, 'o3')])
  t.equal(b3.code, 0, b3.stderr)
  t.match(b3.stderr, /image build: unpacking .*root\.tar\.gz/)
  t.same(listing(join(dir, 'o3', 'rootfs.squashfs')), files, 'the tarball gives the same tree')
  t.equal(sha256(join(dir, 'o3', 'rootfs.squashfs')), sha256(sq), 'and the same bytes')
  t.same(execFileSync('ls', ['-A', join(dir, 'o3')], { encoding: 'utf8' }).split('\n').filter(Boolean).sort(), ['initrd.img', 'rootfs.squashfs', 'vmlinuz'], 'the unpacked root is removed')

  const b4 = await netboot(['image', 'build', 'tiny', '--root', root, '--initrd', initrd, '--no-register', '--compression', 'xz', '--output', join(dir, 'o4')])
  t.equal(b4.code, 0, b4.stderr)
  t.equal(readFileSync(join(dir, 'o4', 'rootfs.squashfs')).readUInt16LE(20), 4, 'compression id 4: xz')
})

t.test('registered through the admin API: image show has the built files', async (t) => {
  const dir = tempDir(t)
  const root = busyboxRoot(dir)
  const [adminPort, httpPort] = [await freePort(), await freePort()]
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, `data_dir: ${dir}/data\nadmin: {port: ${adminPort}}\nhttp: {listen: 127.0.0.1, port: ${httpPort}}\nlog: {level: warn}\ntftp: {enabled: false}\n`)
  const c = ['-c', cfg]
  const created = await netboot([...c, 'token', 'create', '--local', 'builder', '--json'])
  t.equal(created.code, 0, created.stderr)
  const env = { NETBOOT_TOKEN: JSON.parse(created.stdout).value as string }

  const down = await netboot([...c, 'image', 'build', 'tiny', '--root', root, '--initrd', assets.initrd], env)
  t.equal(down.code, 1)
  t.match(down.stderr, /cannot reach the netboot server/, 'a stopped server is found before the build')
  t.notMatch(down.stderr, /mksquashfs/)

  await serve(t, cfg, `http://127.0.0.1:${adminPort}`)
  const b = await netboot([...c, 'image', 'build', 'tiny', '--root', root, '--initrd', assets.initrd, '--image-version', '1', '--params', 'console=ttyS0,115200', '--uki', '--output', join(dir, 'out')], env)
  t.equal(b.code, 0, b.stderr)
  t.match(b.stdout, /^NAME\s+VERSION.*\ntiny\s+1\s/)
  const show = await netboot([...c, 'image', 'show', 'tiny'], env)
  t.equal(show.code, 0, show.stderr)
  t.match(show.stdout, `kernel  sha256:${assets.kernelSha256}`)
  t.match(show.stdout, `initrd  sha256:${assets.initrdSha256}`)
  t.match(show.stdout, `rootfs  sha256:${sha256(join(dir, 'out', 'rootfs.squashfs'))}`)
  t.match(show.stdout, 'params  console=ttyS0,115200')
  const uki = readFileSync(join(dir, 'out', 'uki.efi'))
  t.equal(uki.subarray(0, 2).toString('latin1'), 'MZ', '--uki: a PE file')
  t.match(show.stdout, `uki     sha256:${createHash('sha256').update(uki).digest('hex')}`, 'registered with the image')
  t.match(b.stderr, /image build: UKI .*uki\.efi: [\d.]+ MiB, Authenticode sha256:[0-9a-f]{64}/)

  // the same root again, without --output: built in a scratch directory that is removed
  const again = await netboot([...c, '--json', 'image', 'build', 'tiny', '--root', root, '--initrd', assets.initrd, '--image-version', '2'], env)
  t.equal(again.code, 0, again.stderr)
  const j = JSON.parse(again.stdout) as { image: { version: string; rootfsSha256: string }; built?: unknown }
  t.equal(j.image.version, '2')
  t.equal(j.image.rootfsSha256, sha256(join(dir, 'out', 'rootfs.squashfs')), 'the same root, the same rootfs digest')
  t.equal(j.built, undefined)
  t.notOk(readdirSync(tmpdir()).some((n) => n.startsWith('netboot-build-tiny-')), 'no scratch directory left')
})

t.test('errors name what is wrong', async (t) => {
  const dir = tempDir(t)
  const build = async (root: string, ...more: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    await netboot(['image', 'build', 'x', '--root', root, '--initrd', assets.initrd, '--no-register', '--output', join(dir, 'out'), ...more])

  let r = await build(join(dir, 'missing'))
  t.equal(r.code, 1)
  t.match(r.stderr, `netboot: IMAGE_BUILD_INPUT: ${join(dir, 'missing')} does not exist`)

  const noKernel = busyboxRoot(join(dir, 'a'), { kernels: [] })
  r = await build(noKernel)
  t.equal(r.code, 1)
  t.match(r.stderr, `IMAGE_BUILD_INPUT: no kernel in the root: ${noKernel}/boot/vmlinuz-* does not exist`)
  t.notOk(existsSync(join(dir, 'out', 'rootfs.squashfs')), 'nothing built')

  const two = busyboxRoot(join(dir, 'b'), { kernels: ['6.1.0-1-amd64', '6.1.0-2-amd64'] })
  r = await build(two)
  t.equal(r.code, 1)
  t.match(r.stderr, `several kernels in ${two}/boot (6.1.0-1-amd64, 6.1.0-2-amd64): choose one with --kver`)
  r = await build(two, '--kver', '6.1.0-2-amd64')
  t.equal(r.code, 0, r.stderr)
  r = await build(two, '--kver', '6.1.0-3-amd64')
  t.match(r.stderr, 'no kernel 6.1.0-3-amd64')

  const notKernel = busyboxRoot(join(dir, 'c'), { kernels: [] })
  copyFileSync(join(notKernel, 'bin/busybox'), join(notKernel, 'boot/vmlinuz-9.9'))
  r = await build(notKernel)
  t.equal(r.code, 1)
  t.match(r.stderr, `${notKernel}/boot/vmlinuz-9.9 is not an x86 Linux kernel image`)

  const noInit = busyboxRoot(join(dir, 'd'), { init: false })
  r = await build(noInit)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, `image build: warning: ${noInit} has no /sbin/init`, 'no init: a warning, and the build goes on')

  r = await build(noKernel, '--compression', 'lz4')
  t.equal(r.code, 2)
  t.match(r.stderr, /argument 'lz4' is invalid/)

  // without --initrd the initrd is built from ROOT/lib/modules/<kver>, which this root lacks
  r = await netboot(['image', 'build', 'x', '--root', busyboxRoot(join(dir, 'e')), '--no-register', '--output', join(dir, 'out')])
  t.equal(r.code, 1)
  t.match(r.stderr, `IMAGE_BUILD_INPUT: no modules for kernel ${assets.kernelVersion}: ${join(dir, 'e', 'root')}/lib/modules/${assets.kernelVersion} does not exist`)
})

t.test("without --initrd: dracut builds the netboot initrd from the root's own modules", async (t) => {
  // The kernel's modules as scripts/e2e-assets.sh extracted them (depmod'd), hard-linked
  // into the root under usrmerge's layout (/lib → usr/lib), as Debian has it.
  const mods = join(assets.dir, 'modules', 'lib', 'modules', assets.kernelVersion)
  if (!existsSync(join(mods, 'modules.dep'))) t.fail(`no modules.dep under ${mods}: scripts/e2e-assets.sh extracts the kernel's modules`)
  for (const [tool, pkg] of [['dracut', 'dracut-core'], ['lsinitrd', 'dracut-core']] as const) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`]) } catch { t.fail(`${tool} is missing: install the Debian package ${pkg} (scripts/setup.sh does)`) }
  }
  const dir = tempDir(t)
  const root = busyboxRoot(dir)
  mkdirSync(join(root, 'usr', 'lib', 'modules'), { recursive: true })
  symlinkSync('usr/lib', join(root, 'lib'))
  execFileSync('cp', ['-al', mods, join(root, 'usr', 'lib', 'modules', assets.kernelVersion)])
  const out = join(dir, 'out')
  // gzip: the modules make the tree ~400 MB, and zstd's default level is slow on a busy machine
  const r = await slowNetboot(['image', 'build', 'x', '--root', root, '--no-register', '--compression', 'gzip', '--output', out])
  t.equal(r.code, 0, r.stderr.slice(-3000))
  t.match(r.stderr, `image build: building the netboot initrd for ${assets.kernelVersion} from ${root}/lib/modules/${assets.kernelVersion} (dracut)`)
  t.match(r.stderr, /image build: initrd [\d.]+ MiB in [\d.]+ s/)
  const listed = execFileSync('lsinitrd', [join(out, 'initrd.img')], { encoding: 'utf8', maxBuffer: 64 << 20 })
  t.match(listed, /usr\/lib\/netboot\/netboot-agent\.mjs/, 'the initrd carries the agent')
  t.match(listed, new RegExp(`usr/lib/modules/${assets.kernelVersion.replace(/\./g, '\\.')}/kernel/fs/squashfs/squashfs\\.ko`), "and the root's squashfs module for that kernel")
  t.ok(listing(join(out, 'rootfs.squashfs')).includes(`R/usr/lib/modules/${assets.kernelVersion}/modules.dep`), 'the modules stay in the root image')
})
