/**
 * Boot and discovery scripts for an image with a unified kernel image: a golden
 * script, and runs in ipxe-sim with iPXE's `platform` setting as each build sets it
 * (efi for ipxe.efi, pcbios for undionly.kpxe): UEFI boots the UKI with the node's
 * command line and no initrd, BIOS boots kernel + initrd, both with bounded retries.
 * Regenerate the golden after an intended template change:
 *   UPDATE_GOLDEN=1 npx tap test/boot/uki-script.test.ts
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { IpxeScripts, type BootScriptInput, type DiscoverScriptInput } from '../../server/boot/script.js'
import { bootCases, discoverCases, DIGEST, SERVER } from './cases.js'
import { runScript } from './ipxe-sim.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/boot/', import.meta.url))
const scripts = await IpxeScripts.load()
const UKI = `${SERVER}/images/${DIGEST}/uki.efi`
const input: BootScriptInput = { ...bootCases['boot-bss']!, uki: UKI, retry: { attempts: 3, delaySeconds: 2, jitterSeconds: 0, rebootDelaySeconds: 30 } }
const script = scripts.boot(input)

t.test('golden: boot-uki.ipxe', async (t) => {
  const file = join(FIXTURES, 'boot-uki.ipxe')
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI !== undefined) t.fail('boot-uki.ipxe is missing')
    writeFileSync(file, script)
  }
  t.equal(script, readFileSync(file, 'utf8'))
  t.equal(scripts.boot({ ...input, uki: undefined } as BootScriptInput).includes('boot_uki'), false, 'no UKI: no UEFI branch at all')
})

t.test('UEFI iPXE boots the UKI; BIOS iPXE boots kernel + initrd', async (t) => {
  const efi = runScript(script, { settings: { platform: 'efi' } })
  if (efi.end.kind !== 'boot') throw new Error(`efi: ${efi.end.kind}`)
  t.same({ name: efi.end.kernel.name, url: efi.end.kernel.url }, { name: 'uki.efi', url: UKI })
  t.equal(efi.end.kernel.cmdline, input.cmdline, 'the composed command line, without initrd=')
  t.same(efi.end.initrds, [])
  t.same(efi.fetches, [UKI], 'only the UKI is downloaded')

  const bios = runScript(script, { settings: { platform: 'pcbios' } })
  if (bios.end.kind !== 'boot') throw new Error(`bios: ${bios.end.kind}`)
  t.equal(bios.end.kernel.url, input.kernel)
  t.equal(bios.end.kernel.cmdline, `initrd=initrd.img ${input.cmdline}`)
  t.same(bios.end.initrds.map((i) => i.url), input.initrds.map((i) => i.url))
  t.notOk(bios.fetches.includes(UKI), 'BIOS never fetches the UKI')
})

t.test('UEFI: the UKI download retries a bounded number of times, then the node reboots', async (t) => {
  let r = runScript(script, { settings: { platform: 'efi' }, downloads: { [UKI]: Array(20).fill(false) } })
  t.equal(r.end.kind, 'reboot')
  t.equal(r.fetches.filter((u) => u === UKI).length, 3)
  t.same(r.sleeps, [2, 2, 30])
  t.match(r.echoes, ['netboot: node nid001 boots image compute-slurm@sha256:5f0b6e2d2c7b', 'netboot: unified kernel image download failed (try 1 of 3), retrying in 2 s',
    'netboot: unified kernel image download failed (try 2 of 3), retrying in 2 s', /could not boot image .*rebooting in 30 s/])
  t.notOk(r.fetches.includes(input.kernel), 'a failing UKI never falls back to the unmeasured kernel + initrd')
  r = runScript(script, { settings: { platform: 'efi' }, downloads: { [UKI]: [false] } })
  t.equal(r.end.kind, 'boot', 'a transient failure recovers')
  r = runScript(script, { settings: { platform: 'efi' }, bootFails: true })
  t.equal(r.end.kind, 'reboot', 'the UKI returns: reboot, not the BIOS path')
  t.notOk(r.fetches.includes(input.kernel))
})

t.test('discovery scripts take the same UEFI branch', async (t) => {
  const d: DiscoverScriptInput = { ...discoverCases['discover-unknown-mac']!, uki: `${SERVER}/discovery/uki.efi` }
  const s = scripts.discover(d)
  const efi = runScript(s, { settings: { platform: 'efi' } })
  t.match(efi.end, { kind: 'boot', kernel: { url: `${SERVER}/discovery/uki.efi`, cmdline: d.cmdline }, initrds: [] })
  const bios = runScript(s, { settings: { platform: 'pcbios' } })
  t.match(bios.end, { kind: 'boot', kernel: { url: d.kernel } })
})

t.test('a hostile UKI URL is refused like any other value', async (t) => {
  for (const bad of ['http://s/u ; shell', 'http://s/${net0/ip}', 'http://s/u\nshell', 'ftp://s/u']) {
    t.throws(() => scripts.boot({ ...input, uki: bad }), { code: 'BOOT_VALUE_INVALID' }, JSON.stringify(bad))
  }
})
