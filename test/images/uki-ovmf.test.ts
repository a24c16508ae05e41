/**
 * What real UEFI firmware measures when it starts a netboot UKI: OVMF (QEMU, TCG)
 * with a TPM 2.0 (swtpm, SHA-1 and SHA-256 banks) boots a UKI built by buildUki from
 * Debian's kernel and a tiny initrd (test/fixtures/uki/evlog-init) that prints the
 * kernel's copy of the firmware event log on the serial console. No network: the
 * UKI is EFI/BOOT/BOOTX64.EFI on a read-only FAT disk.
 *
 * Proves, against firmware netboot did not write:
 *  - PCR 4 holds the UKI's Authenticode digest, in both banks, as authenticode.ts
 *    computes it, followed only by the embedded kernel's (the stub LoadImages it);
 *  - the PCR 4 rule (uki-rule.ts) accepts the log;
 *  - the initrd inside is measured (PCR 11 by systemd-stub, PCR 9 by the kernel).
 * The second test checks the same on the log kept from such a run
 * (test/fixtures/uki/ovmf-uki.evlog, regenerated with UPDATE_FIXTURE=1), without QEMU.
 *
 * Needs qemu-system-x86, ovmf, swtpm, swtpm-tools, cpio, binutils, systemd-boot-efi
 * and the e2e kernel; about a minute under TCG.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { EV, dumpEventLog, parseEventLog, type TcgEvent } from '../../server/attest/eventlog/index.js'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { checkUkiMeasurement } from '../../server/attest/uki-rule.js'
import { authenticodeDigests } from '../../server/images/authenticode.js'
import { buildUki, measureUki } from '../../server/images/uki.js'
import { tempDir } from '../helpers/tmp.js'
import { e2eAssets, need, needStub } from './pe-helpers.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/uki/', import.meta.url))
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
const BOOT_TIMEOUT_S = 300
const SHA1 = TPM_ALG.SHA1
const SHA256 = TPM_ALG.SHA256

interface Recorded {
  kernelVersion: string
  cmdline: string
  uki: { sha1: string; sha256: string }
  linux: { sha1: string; sha256: string }
  initrdSha256: string
}

/** The checks both tests make on a log and what was booted. */
function checkLog (t: Test, events: readonly TcgEvent[], r: Recorded): void {
  const pcr4 = events.filter((e) => e.pcr === 4 && e.type === EV.EFI_BOOT_SERVICES_APPLICATION)
  t.same(pcr4.map((e) => e.digests.get(SHA256)!.toString('hex')), [r.uki.sha256, r.linux.sha256], 'PCR 4 boot applications: the UKI, then its kernel (sha256)')
  t.same(pcr4.map((e) => e.digests.get(SHA1)!.toString('hex')), [r.uki.sha1, r.linux.sha1], 'and in the sha1 bank')
  for (const [alg, bank] of [[SHA256, 'sha256'], [SHA1, 'sha1']] as const) {
    t.same(checkUkiMeasurement(events, alg, { uki: Buffer.from(r.uki[bank], 'hex'), linux: Buffer.from(r.linux[bank], 'hex') }), { ok: true, basis: 'uki-measured' }, `the PCR 4 rule accepts it (${bank})`)
    t.match(checkUkiMeasurement(events, alg, { uki: Buffer.from(r.uki[bank], 'hex') }), { ok: false }, `without the kernel's digest the LoadImage of .linux is refused (${bank})`)
  }
  const label = (e: TcgEvent): string => e.data.toString('utf16le').replace(/\0+$/, '')
  const pcr11 = events.filter((e) => e.pcr === 11)
  t.same(pcr11.filter((_, i) => i % 2 === 0).map(label), ['.linux', '.osrel', '.cmdline', '.initrd'], 'systemd-stub measures each section name and contents into PCR 11')
  const initrd11 = pcr11.at(-1)!
  t.equal(initrd11.digests.get(SHA256)!.toString('hex'), r.initrdSha256, 'PCR 11: the initrd contents')
  const initrd9 = events.find((e) => e.pcr === 9 && e.type === EV.EVENT_TAG && e.data.includes(Buffer.from('Linux initrd')))
  t.equal(initrd9?.digests.get(SHA256)?.toString('hex'), r.initrdSha256, 'PCR 9: the kernel measured the initrd the stub handed it')
}

t.test('OVMF + swtpm boot a UKI: PCR 4 holds its Authenticode digest', async (t) => {
  const missing = [['qemu-system-x86_64', 'qemu-system-x86'], ['swtpm', 'swtpm'], ['swtpm_setup', 'swtpm-tools'], ['cpio', 'cpio'], ['gzip', 'gzip'], ['timeout', 'coreutils']]
    .filter(([c]) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0).map(([c, p]) => `${c} (Debian package ${p})`)
  for (const f of [OVMF_CODE, OVMF_VARS]) if (!existsSync(f)) missing.push(`${f} (Debian package ovmf)`)
  if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')}`)
  need('objcopy', 'binutils')
  needStub()
  const assets = e2eAssets()
  const dir = tempDir(t, 'netboot-uki-ovmf-')

  // the initrd: static busybox + the init that prints the event log
  const root = join(dir, 'root')
  mkdirSync(join(root, 'bin'), { recursive: true })
  copyFileSync(assets.busybox, join(root, 'bin/busybox'))
  copyFileSync(join(FIXTURES, 'evlog-init'), join(root, 'init'))
  spawnSync('chmod', ['0755', join(root, 'init'), join(root, 'bin/busybox')])
  const cpio = spawnSync('sh', ['-c', 'find . | cpio -o -H newc --quiet | gzip -1'], { cwd: root, maxBuffer: 64 << 20 })
  if (cpio.status !== 0) throw new Error(`cpio: ${cpio.stderr.toString()}`)
  const initrd = join(dir, 'initrd.img')
  writeFileSync(initrd, cpio.stdout)
  const esp = join(dir, 'esp')
  mkdirSync(join(esp, 'EFI/BOOT'), { recursive: true })
  const cmdline = 'console=ttyS0 panic=1 netboot.uki-test=1' // panic=1: a failing /init ends the VM (with -no-reboot)
  const uki = await buildUki({ kernel: assets.vmlinuz, initrd, cmdline, output: join(esp, 'EFI/BOOT/BOOTX64.EFI') })
  const m = measureUki(readFileSync(uki.path))
  const kernel = authenticodeDigests(readFileSync(assets.vmlinuz), ['sha1', 'sha256'])
  if (!kernel.ok) throw kernel.error
  t.equal(m.linux?.sha256, kernel.value.sha256.toString('hex'))

  // the TPM: both banks, so the sha1 digest is checked too
  const tpmState = join(dir, 'tpm')
  mkdirSync(tpmState)
  const setup = spawnSync('swtpm_setup', ['--tpm2', '--tpm-state', tpmState, '--pcr-banks', 'sha1,sha256', '--overwrite'], { encoding: 'utf8', timeout: 120_000 })
  if (setup.status !== 0) throw new Error(`swtpm_setup: ${setup.stderr}${setup.stdout}`)
  const sock = join(dir, 'swtpm.sock')
  const swtpm = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${tpmState}`, '--ctrl', `type=unixio,path=${sock}`, '--terminate'], { stdio: 'ignore' })
  t.teardown(() => { if (swtpm.exitCode === null && swtpm.signalCode === null && swtpm.pid !== undefined) process.kill(swtpm.pid, 'SIGKILL') })
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50))
  if (!existsSync(sock)) throw new Error('swtpm did not create its socket within 5 s')

  const vars = join(dir, 'OVMF_VARS.fd')
  copyFileSync(OVMF_VARS, vars)
  const args = ['-k', '5', String(BOOT_TIMEOUT_S), 'qemu-system-x86_64',
    '-machine', 'q35,accel=tcg', '-m', '512', '-nographic', '-nodefaults', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
    '-drive', `if=virtio,readonly=on,format=raw,file=fat:${esp}`,
    '-chardev', `socket,id=chrtpm,path=${sock}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-crb,tpmdev=tpm0']
  const qemu = spawn('timeout', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (qemu.exitCode === null && qemu.signalCode === null && qemu.pid !== undefined) process.kill(qemu.pid, 'SIGTERM') })
  let serial = ''
  qemu.stdout.on('data', (d: Buffer) => { serial += d.toString('latin1') })
  qemu.stderr.on('data', (d: Buffer) => { serial += d.toString('latin1') })
  const started = Date.now()
  const code = await new Promise<number | null>((resolve) => qemu.once('exit', (c) => resolve(c)))
  writeFileSync(join(dir, 'serial.log'), serial)
  // a kernel message printed straight to the UART can still land inside a base64 line
  const lines = serial.replace(/\r/g, '').replace(/\[\s*\d+\.\d+\] [^\n]*\n?/g, '').split('\n')
  const begin = lines.indexOf('UKI-EVLOG-BEGIN')
  const end = lines.indexOf('UKI-EVLOG-END')
  if (code !== 0 || begin < 0 || end < begin) throw new Error(`the VM printed no event log (exit ${code}, ${Math.round((Date.now() - started) / 1000)} s); serial tail:\n${lines.slice(-40).join('\n')}`)
  t.comment(`OVMF boot of the UKI: ${Math.round((Date.now() - started) / 1000)} s under TCG`)
  const log = Buffer.from(lines.slice(begin + 1, end).join(''), 'base64')
  const printed = lines.find((l) => l.startsWith('UKI-EVLOG-SHA256 '))?.slice('UKI-EVLOG-SHA256 '.length)
  const got = createHash('sha256').update(log).digest('hex')
  if (printed !== got) throw new Error(`the event log read from the serial console is garbled (sha256 ${got}, the VM printed ${printed ?? 'none'}); first odd line: ${lines.slice(begin + 1, end).find((l) => !/^[A-Za-z0-9+/=]*$/.test(l)) ?? 'none'}`)
  const parsed = parseEventLog(log)
  if (!parsed.ok) throw parsed.error
  t.equal(lines.find((l) => l.startsWith('UKI-CMDLINE '))?.slice('UKI-CMDLINE '.length), cmdline, 'no load options from the firmware: the stub used the built-in .cmdline')

  const recorded: Recorded = {
    kernelVersion: assets.kernelVersion,
    cmdline,
    uki: { sha1: uki.authenticode.sha1, sha256: uki.authenticode.sha256 },
    linux: { sha1: kernel.value.sha1.toString('hex'), sha256: kernel.value.sha256.toString('hex') },
    initrdSha256: createHash('sha256').update(readFileSync(initrd)).digest('hex'),
  }
  checkLog(t, parsed.value.events, recorded)

  if (process.env.UPDATE_FIXTURE === '1') {
    writeFileSync(join(FIXTURES, 'ovmf-uki.evlog'), log)
    writeFileSync(join(FIXTURES, 'ovmf-uki.json'), JSON.stringify(recorded, null, 2) + '\n')
    writeFileSync(join(FIXTURES, 'ovmf-uki.evlog.txt'), dumpEventLog(parsed.value))
  }
})

t.test('the kept OVMF log (test/fixtures/uki/ovmf-uki.evlog) passes the same checks', async (t) => {
  const recorded = JSON.parse(readFileSync(join(FIXTURES, 'ovmf-uki.json'), 'utf8')) as Recorded
  const parsed = parseEventLog(readFileSync(join(FIXTURES, 'ovmf-uki.evlog')))
  if (!parsed.ok) throw parsed.error
  if (process.env.UPDATE_FIXTURE === '1') writeFileSync(join(FIXTURES, 'ovmf-uki.evlog.txt'), dumpEventLog(parsed.value))
  t.equal(dumpEventLog(parsed.value), readFileSync(join(FIXTURES, 'ovmf-uki.evlog.txt'), 'utf8'), 'the readable dump beside it is current (UPDATE_FIXTURE=1 rewrites it)')
  checkLog(t, parsed.value.events, recorded)
})
