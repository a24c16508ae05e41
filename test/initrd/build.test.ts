/**
 * `netboot initrd build` with the real dracut against Debian's kernel and its modules
 * (scripts/e2e-assets.sh: extracted from the linux-image .deb, depmod'd, cached in
 * .cache/e2e), then the image itself is examined:
 * - lsinitrd: node, the agent bundle, the TPM addon, the tpm2-tss libraries with the
 *   dlopened device TCTI, both hooks, the kernel modules (squashfs, overlay, loop, NIC
 *   drivers; the TPM drivers, built into Debian's kernel, in modules.builtin);
 * - unpacked and entered with chroot: the image's own node runs the bundle; the addon
 *   loads with the image's libraries and talks to a real swtpm through the swtpm TCTI;
 *   the device TCTI is found by tctildr's dlopen (an absent device is an I/O failure,
 *   not "not supported"); the cmdline hooks, with the image's dracut-lib.sh, claim the
 *   root and ask for the network;
 * - the UKI (--uki): its .initrd section is the initrd, byte for byte.
 * A second build of the same inputs gives the same bytes. Errors: missing
 * modules.dep, a kernel of another version, dracut failing (its lines surfaced). Needs root (chroot), dracut-core, dracut-network, zstd, cpio, swtpm,
 * binutils, systemd-boot-efi; a missing one fails the test naming the package.
 * About 60-120 s (three dracut runs, one failing early) on a 2-core machine; no VM is booted.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { EXIT_CODES } from '../../agent/errors.js'
import { isNetbootError } from '../../server/errors.js'
import { peSectionBytes, DEFAULT_STUB } from '../../server/images/uki.js'
import { buildInitrd } from '../../server/initrd/build.js'
import { startSwtpm } from '../attest/swtpm-harness.js'
import { netboot } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'

const ROOT = resolve('.')

const NEEDS: [string, string][] = [
  ['/usr/bin/dracut', 'dracut-core'], ['/usr/bin/lsinitrd', 'dracut-core'], ['/usr/lib/dracut/modules.d/35network-legacy/module-setup.sh', 'dracut-network'],
  ['/usr/bin/zstd', 'zstd'], ['/usr/bin/cpio', 'cpio'], ['/usr/bin/swtpm', 'swtpm'], ['/usr/bin/swtpm_setup', 'swtpm-tools'], ['/usr/bin/objcopy', 'binutils'], [DEFAULT_STUB, 'systemd-boot-efi'],
  ['/usr/sbin/chroot', 'coreutils'],
]
const problems = [
  ...NEEDS.filter(([f]) => !existsSync(f)).map(([f, p]) => `${f} missing (Debian package ${p}; scripts/setup.sh installs it)`),
  ...(process.getuid?.() === 0 ? [] : ['needs root: chroot into the unpacked initrd (CI runs the tests as root)']),
  ...[join(ROOT, 'agent/tpm/build/Release/netboot_tpm.node')].filter((f) => !existsSync(f)).map((f) => `${f} missing: npm run build:agent`),
]
if (problems.length > 0) {
  t.fail(`cannot run the initrd build test:\n  ${problems.join('\n  ')}`)
  t.end()
} else {
  await main()
}

async function main (): Promise<void> {
  const cache = execFileSync('bash', [join(ROOT, 'scripts/e2e-assets.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim().split('\n').at(-1)!
  const kver = readFileSync(join(cache, 'kernel-version'), 'utf8').trim()
  const kmoddir = join(cache, 'modules', 'lib', 'modules', kver)
  const vmlinuz = join(cache, 'vmlinuz')
  // The bundle the module installs: built fresh, as `npm run build:agent` does.
  execFileSync('node', [join(ROOT, 'scripts/bundle-agent.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  const bundle = join(ROOT, 'dist/agent/netboot-agent.mjs')
  const exitCodes = Object.entries(EXIT_CODES).map(([k, v]) => `${v} ${k}\n`).join('')

  const dir = tempDir(t, 'netboot-initrd-')
  const initrd = join(dir, 'initrd.img')
  const uki = join(dir, 'netboot.efi')
  const t0 = Date.now()
  const r = await netboot(['--json', 'initrd', 'build', '--kver', kver, '--kmoddir', kmoddir, '--kernel', vmlinuz, '--output', initrd, '--uki', uki])
  const seconds = (Date.now() - t0) / 1000
  if (r.code !== 0) {
    t.fail(`netboot initrd build exited ${r.code}:\n${r.stderr}`)
    return
  }
  const built = JSON.parse(r.stdout) as { initrd: { path: string; size: number; sha256: string; kver: string; compress: string; seconds: number }; uki: { path: string; size: number; sha256: string } }
  t.comment(`initrd ${(built.initrd.size / 1048576).toFixed(1)} MiB (${built.initrd.compress}), dracut ${built.initrd.seconds.toFixed(1)} s, whole command ${seconds.toFixed(1)} s; UKI ${(built.uki.size / 1048576).toFixed(1)} MiB`)

  t.test('the command: progress on stderr, the result on stdout, a readable file', async (t) => {
    t.match(r.stderr, /netboot: dracut: \*\*\* Including module: netboot \*\*\*/, 'dracut\'s progress is passed through')
    t.match(r.stderr, new RegExp(`netboot: initrd ${initrd}: [\\d.]+ MiB in [\\d.]+ s, sha256:${built.initrd.sha256}`))
    t.equal(built.initrd.path, initrd)
    t.equal(built.initrd.kver, kver)
    t.equal(built.initrd.compress, 'zstd')
    const st = statSync(initrd)
    t.equal(st.mode & 0o777, 0o644, 'mode 0644 (dracut writes 0600; the file is served over HTTP)')
    t.equal(st.size, built.initrd.size)
    t.equal(execFileSync('sha256sum', [initrd], { encoding: 'utf8' }).split(' ')[0], built.initrd.sha256)
    t.same(readFileSync(initrd).subarray(0, 4), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd frame magic (RFC 8878 §3.1.1)')
    t.same(readdirSync(dir).filter((n) => n.includes('.tmp-')), [], 'no work directory left beside the output')
  })

  const listing = execFileSync('lsinitrd', [initrd], { encoding: 'utf8', maxBuffer: 16 << 20 })
  const files = new Set(listing.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 9 && /^[-dlcbps]/.test(f[0]!)).map((f) => f[8]!))

  t.test('lsinitrd: what the module installs is in the image', async (t) => {
    for (const f of [
      'usr/bin/node', 'usr/lib/netboot/netboot-agent.mjs', 'usr/lib/netboot/netboot_tpm.node', 'usr/lib/netboot/exit-codes', 'usr/lib/netboot-lib.sh',
      'usr/lib/dracut/hooks/cmdline/20-netboot-cmdline.sh', 'usr/lib/dracut/hooks/pre-mount/50-netboot-agent.sh',
      'usr/lib/x86_64-linux-gnu/libtss2-esys.so.0', 'usr/lib/x86_64-linux-gnu/libtss2-tctildr.so.0', 'usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0',
      'etc/ssl/certs/ca-certificates.crt', 'usr/sbin/dhclient', 'usr/bin/mount',
    ]) t.ok(files.has(f), f)
    for (const m of ['fs/squashfs/squashfs.ko', 'fs/overlayfs/overlay.ko', 'drivers/block/loop.ko', 'drivers/net/ethernet/intel/e1000/e1000.ko', 'drivers/net/ethernet/intel/e1000e/e1000e.ko', 'drivers/net/virtio_net.ko']) {
      t.ok(files.has(`usr/lib/modules/${kver}/kernel/${m}`), m)
    }
    // Debian builds the TPM core, TIS and CRB into the kernel: dracut's instmods accepts them from modules.builtin.
    const builtin = execFileSync('lsinitrd', ['-f', `usr/lib/modules/${kver}/modules.builtin`, initrd], { encoding: 'utf8', maxBuffer: 16 << 20 })
    for (const m of ['tpm_tis.ko', 'tpm_crb.ko', 'tpm_tis_core.ko']) {
      const inImage = [...files].some((f) => f.endsWith(`/${m}`))
      t.ok(inImage || builtin.split('\n').some((l) => l.endsWith(`/${m}`)), `${m}: a module in the image or built into the kernel`)
    }
    const mods = execFileSync('lsinitrd', ['-m', initrd], { encoding: 'utf8' })
    for (const m of ['netboot', 'network-legacy', 'network', 'base', 'kernel-network-modules']) t.match(mods, new RegExp(`^${m}$`, 'm'), `dracut module ${m}`)
    t.notMatch(mods, /^systemd/m, 'no systemd in the initramfs: shell init')
    t.equal(execFileSync('lsinitrd', ['-f', 'usr/lib/netboot/exit-codes', initrd], { encoding: 'utf8' }), exitCodes, 'the exit-code table saved for the hook is the agent\'s')
  })

  // The image, unpacked, for chroot.
  const root = join(dir, 'root')
  mkdirSync(root)
  execFileSync('sh', ['-c', `/usr/lib/dracut/skipcpio "$1" | zstd -dc | (cd "$2" && cpio -idm --quiet)`, 'sh', initrd, root], { stdio: ['ignore', 'ignore', 'inherit'] })
  // `env -u NODE_OPTIONS`: tap's process tracking puts an --import of its own into every child's NODE_OPTIONS.
  const chroot = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', 'chroot', root, ...args], { encoding: 'utf8', timeout: 60_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TSS2_LOG: 'all+none', ...env } })

  t.test('chroot: the image\'s node runs the image\'s bundle', async (t) => {
    const codes = chroot(['/usr/bin/node', '/usr/lib/netboot/netboot-agent.mjs', 'exit-codes'])
    t.equal(codes.status, 0, codes.stderr)
    t.equal(codes.stdout, exitCodes)
    const help = chroot(['/usr/bin/node', '/usr/lib/netboot/netboot-agent.mjs', '--help'])
    t.equal(help.status, 0)
    t.match(help.stdout, /^usage: netboot-agent run/)
    // A boot command line without the node and image: the agent refuses it (exit 2) with one line.
    const bad = chroot(['/usr/bin/node', '/usr/lib/netboot/netboot-agent.mjs', 'run', '--cmdline', 'netboot.server=http://10.0.0.1:8080 netboot.mode=boot'])
    t.equal(bad.status, EXIT_CODES.usage)
    t.match(bad.stderr, /netboot\.node: missing.*AGENT_CMDLINE_INVALID/)
    t.equal(readFileSync(join(root, 'usr/lib/netboot/netboot-agent.mjs'), 'utf8'), readFileSync(bundle, 'utf8'), 'the bundle in the image is the one built')
  })

  t.test('chroot: the TPM addon loads with the image\'s tpm2-tss and reaches a real swtpm; the device TCTI is found', async (t) => {
    const tpm = await startSwtpm()
    t.teardown(() => tpm.stop())
    writeFileSync(join(root, 'probe.mjs'), `
const m = { exports: {} }
process.dlopen(m, process.env.NETBOOT_TPM_ADDON)
const out = {}
const h = await m.exports.open(process.argv[2])
const ek = await m.exports.readEk(h, 'rsa')
out.ekPublic = ek.public.length
out.random = (await m.exports.getRandom(h, 8)).length
await m.exports.close(h)
try { await m.exports.open('device:/dev/tpmrm0') } catch (e) { out.device = e.code }
try { await m.exports.open('nosuchtcti:x') } catch (e) { out.unknown = e.code }
console.log(JSON.stringify(out))
`)
    const p = chroot(['/usr/bin/node', '/probe.mjs', `swtpm:host=127.0.0.1,port=${tpm.port}`], { NETBOOT_TPM_ADDON: '/usr/lib/netboot/netboot_tpm.node' })
    t.equal(p.status, 0, p.stderr)
    const o = JSON.parse(p.stdout) as { ekPublic: number; random: number; device: string; unknown: string }
    t.ok(o.ekPublic > 256, `RSA EK public read through the swtpm TCTI (${o.ekPublic} bytes)`)
    t.equal(o.random, 8)
    // TSS2_TCTI_RC_IO_ERROR: libtss2-tcti-device was loaded and could not open the (absent) device.
    t.equal(o.device, '0x000a000a', 'device TCTI present (I/O error on the missing /dev/tpmrm0)')
    // TSS2_TCTI_RC_NOT_SUPPORTED: what tctildr says when it finds no such TCTI library.
    t.equal(o.unknown, '0x000a0015', 'an absent TCTI library reads differently')
    const ld = chroot(['/lib64/ld-linux-x86-64.so.2', '--list', '/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0'])
    t.equal(ld.status, 0, ld.stderr)
    t.notMatch(ld.stdout, /not found/, 'the device TCTI\'s own libraries are in the image')
  })

  t.test('chroot: the cmdline hooks with the image\'s dracut-lib.sh claim the root and ask for the network', async (t) => {
    const hooks = (cmdline: string) => {
      writeFileSync(join(root, 'etc/cmdline'), `${cmdline}\n`)
      spawnSync('rm', ['-f', join(root, 'etc/cmdline.d/90-netboot.conf')])
      // As dracut's init does: every cmdline hook, in order, sourced by one shell.
      const p = chroot(['/bin/sh', '-c', '. /lib/dracut-lib.sh; for f in /usr/lib/dracut/hooks/cmdline/*.sh; do . "$f"; done; echo "root=$root rootok=$rootok"; cat /etc/cmdline.d/90-netboot.conf 2>/dev/null; true'])
      return { status: p.status, out: p.stdout, err: p.stderr }
    }
    const a = hooks('console=ttyS0 netboot.server=http://10.0.0.1:8080 netboot.mode=discover')
    t.equal(a.status, 0, a.err)
    t.equal(a.out, 'root=netboot rootok=1\nroot=netboot\nrd.neednet=1\nip=dhcp\n')
    const b = hooks('netboot.server=http://10.0.0.1:8080 ip=eth0:dhcp rd.neednet=1 BOOTIF=01-52-54-00-12-34-56')
    t.equal(b.out, 'root=netboot rootok=1\nroot=netboot\n', 'ip= and rd.neednet= given: kept')
    const c = hooks('console=ttyS0 root=/dev/sda1')
    t.equal(c.out, 'root=/dev/sda1 rootok=\n', 'no netboot.server=: the module stays out of the way')
    const d = hooks('root=/dev/sda1 netboot.server=http://10.0.0.1:8080')
    t.match(d.out, /^root=netboot rootok=1\n/)
    t.match(d.err, /netboot\.server= is set: ignoring root=\/dev\/sda1/)
    spawnSync('rm', ['-f', join(root, 'etc/cmdline')])
  })

  t.test('--uki: the unified kernel image carries this initrd and this kernel', async (t) => {
    const bytes = readFileSync(uki)
    t.equal(built.uki.path, uki)
    t.equal(bytes.length, built.uki.size)
    const sec = peSectionBytes(bytes, '.initrd')
    t.ok(sec !== undefined && sec.subarray(0, built.initrd.size).equals(readFileSync(initrd)), '.initrd is the initrd')
    const linux = peSectionBytes(bytes, '.linux')
    t.ok(linux !== undefined && linux.subarray(0, statSync(vmlinuz).size).equals(readFileSync(vmlinuz)), '.linux is the kernel')
  })

  t.test('reproducible: the same inputs built again, elsewhere, give the same bytes', async (t) => {
    const again = join(tempDir(t, 'netboot-initrd-again-'), 'other-name.img')
    const r2 = await buildInitrd({ kver, kmoddir, output: again })
    t.equal(r2.sha256, built.initrd.sha256)
    t.equal(r2.size, built.initrd.size)
  })

  t.test('errors name the input; dracut\'s failure is surfaced', async (t) => {
    const work = tempDir(t, 'netboot-initrd-err-')
    const noDep = join(work, 'lib', 'modules', kver)
    mkdirSync(noDep, { recursive: true })
    await t.rejects(buildInitrd({ kver, kmoddir: noDep, output: join(work, 'x.img') }), { code: 'IMAGE_BUILD_INPUT', message: /has no modules\.dep: run depmod/ })
    await t.rejects(buildInitrd({ kver, kmoddir: join(work, 'nope'), output: join(work, 'x.img') }), { code: 'IMAGE_BUILD_INPUT', message: /no kernel modules at/ })
    await t.rejects(buildInitrd({ kver: '../etc', output: join(work, 'x.img') }), { code: 'IMAGE_BUILD_INPUT', message: /not a plain version string/ })
    // Another version's (empty) module tree, and the real kernel: the versions disagree.
    const misplaced = join(work, 'mods', kver)
    mkdirSync(misplaced, { recursive: true })
    writeFileSync(join(misplaced, 'modules.dep'), '')
    await t.rejects(buildInitrd({ kver, kmoddir: misplaced, output: join(work, 'x.img') }), { code: 'IMAGE_BUILD_INPUT', message: /is not a <root>\/lib\/modules\/.* directory/ })
    const other = join(work, 'other', 'lib', 'modules', '9.9.9-1-amd64')
    mkdirSync(other, { recursive: true })
    writeFileSync(join(other, 'modules.dep'), '')
    await t.rejects(buildInitrd({ kver: '9.9.9-1-amd64', kmoddir: other, kernel: vmlinuz, output: join(work, 'x.img') }), { code: 'IMAGE_BUILD_INPUT', message: new RegExp(`is kernel ${kver.replace(/\./g, '\\.')}, not 9\\.9\\.9-1-amd64`) })
    await t.rejects(buildInitrd({ kver: '9.9.9-1-amd64', kmoddir: other, kernel: initrd, output: join(work, 'x.img') }), { code: 'IMAGE_BUILD_INPUT', message: /not an x86 kernel image/ })
    // An empty module tree gets past the checks: dracut itself fails (the module's installkernel finds no tpm_tis).
    const lines: string[] = []
    const e = await buildInitrd({ kver: '9.9.9-1-amd64', kmoddir: other, output: join(work, 'x.img'), log: (l) => lines.push(l) }).catch((err: unknown) => err)
    t.ok(isNetbootError(e, 'IMAGE_BUILD_FAILED'), 'IMAGE_BUILD_FAILED')
    if (isNetbootError(e)) {
      t.match(e.message, /^dracut exited \d+: .*netboot: kernel module tpm_tis not found for kernel 9\.9\.9-1-amd64/, e.message)
      t.ok(e.details.length > 0, 'dracut\'s last lines in the details')
    }
    t.ok(lines.length > 0, 'progress lines came while it ran')
    t.notOk(existsSync(join(work, 'x.img')), 'no output on failure')
    t.same(readdirSync(work).filter((n) => n.includes('.tmp-')), [], 'the work directory is removed')
  })
}
