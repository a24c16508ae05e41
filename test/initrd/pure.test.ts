/**
 * server/initrd/build.ts pure parts: the x86 boot header's version string, the
 * dracut.conf(5) text for the module (read back by a real bash, as dracut sources
 * it), dracut's argument list. Under a second.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { bzImageVersion, dracutArgs, DRACUT_MODULES, KVER, moduleConf, ZSTD } from '../../server/initrd/build.js'
import { tempDir } from '../helpers/tmp.js'

/** A minimal bzImage head: boot_flag, "HdrS", kernel_version → the string at ptr + 0x200. */
function head (version: string | undefined, ptr = 0x300, size = 0x1000): Buffer {
  const b = Buffer.alloc(size)
  b[0x1fe] = 0x55; b[0x1ff] = 0xaa
  b.write('HdrS', 0x202, 'latin1')
  if (version !== undefined) {
    b.writeUInt16LE(ptr, 0x20e)
    if (ptr + 0x200 + version.length < size) b.write(`${version}\0`, ptr + 0x200, 'latin1')
  }
  return b
}

t.test('bzImageVersion (Documentation/arch/x86/boot.rst, kernel_version at 0x20E)', async (t) => {
  t.equal(bzImageVersion(head('6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP')), '6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP')
  t.equal(bzImageVersion(head(undefined)), undefined, 'pointer 0: no version')
  t.equal(bzImageVersion(head('x', 0x7000)), undefined, 'pointer past the bytes read')
  t.equal(bzImageVersion(head('6.1').subarray(0, 0x20f)), undefined, 'truncated header')
  const noMagic = head('6.1'); noMagic.write('HdrX', 0x202, 'latin1')
  t.equal(bzImageVersion(noMagic), undefined, 'no HdrS')
  const noFlag = head('6.1'); noFlag[0x1fe] = 0
  t.equal(bzImageVersion(noFlag), undefined, 'no 0xAA55')
  const unterminated = head(undefined); unterminated.writeUInt16LE(0x300, 0x20e); unterminated.fill(0x41, 0x500)
  t.equal(bzImageVersion(unterminated), undefined, 'no NUL within 256 bytes or the buffer')
})

t.test('KVER: plain version strings only', async (t) => {
  for (const ok of ['6.1.0-28-amd64', '6.12.9+bpo-amd64', '5.15.0-1~rc1']) t.ok(KVER.test(ok), ok)
  for (const bad of ['', '../x', '6.1 0', '-6.1', '6.1/x', "6.1'"]) t.notOk(KVER.test(bad), JSON.stringify(bad))
})

t.test('moduleConf: bash reads back exactly the paths given, quotes and spaces included', async (t) => {
  const dir = tempDir(t, 'netboot-conf-')
  const conf = join(dir, 'c.conf')
  const values = { agentBundle: "/opt/it's here/netboot-agent.mjs", tpmAddon: '/a b/$(touch pwned)/x.node', caBundle: '/etc/ssl/"ca".crt', node: '/usr/bin/node' }
  writeFileSync(conf, moduleConf(values))
  const r = spawnSync('bash', ['-c', '. "$1"; printf "%s\\n" "$netboot_agent_bundle" "$netboot_tpm_addon" "$netboot_ca_bundle" "$netboot_node"', 'bash', conf], { cwd: dir, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.same(r.stdout.split('\n').slice(0, 4), [values.agentBundle, values.tpmAddon, values.caBundle, values.node])
  t.notOk(existsSync(join(dir, 'pwned')), 'nothing in the values was executed')
  t.notMatch(moduleConf({ agentBundle: '/a', tpmAddon: '/b', node: '/n' }), /netboot_ca_bundle/, 'no CA line unless given: the module\'s default applies')
})

t.test('dracutArgs: no host-only, host conf ignored, the three modules, zstd level 3, the kernel last', async (t) => {
  const a = dracutArgs({ kver: '6.1.0-28-amd64', kmoddir: '/k/lib/modules/6.1.0-28-amd64', conf: 'c.conf', confdir: 'conf.d', tmpdir: 'tmp', compress: 'zstd', extraDrivers: ['nvme', 'ixgbe'], output: 'initrd.img' })
  t.same(a.slice(0, 5), ['--force', '--no-hostonly', '--no-hostonly-cmdline', '--no-early-microcode', '--reproducible'])
  t.same(a.slice(a.indexOf('-m'), a.indexOf('-m') + 2), ['-m', 'base network-legacy netboot'])
  t.same(DRACUT_MODULES, ['base', 'network-legacy', 'netboot'])
  t.same(a.slice(a.indexOf('--conf'), a.indexOf('--conf') + 4), ['--conf', 'c.conf', '--confdir', 'conf.d'])
  t.same(a.slice(a.indexOf('--add-drivers'), a.indexOf('--add-drivers') + 2), ['--add-drivers', 'nvme ixgbe'])
  t.same(a.slice(a.indexOf('--compress'), a.indexOf('--compress') + 2), ['--compress', ZSTD])
  t.match(ZSTD, /^zstd /, 'starts with zstd: dracut then checks CONFIG_RD_ZSTD and finds the program')
  t.same(a.slice(-2), ['initrd.img', '6.1.0-28-amd64'])
  const g = dracutArgs({ kver: 'v', kmoddir: '/k', conf: 'c', confdir: 'd', tmpdir: 't', compress: 'gzip', extraDrivers: [], output: 'o' })
  t.ok(g.includes('--gzip') && !g.includes('--compress') && !g.includes('--add-drivers'))
})
