/**
 * The PCR 4 rule for images with a unified kernel image (server/attest/uki-rule.ts,
 * docs/uki.md).
 *
 * 1. The rule as a pure function: synthetic logs, and the real Ubuntu log from
 *    reference/eventlogs (UEFI firmware, shim then GRUB as boot applications).
 * 2. End to end: a real UKI built with objcopy and Debian's stub and registered in
 *    the store; swtpm extended the way the firmware would (PCR 4 extended with the
 *    digest `pesign --hash` computes, an independent Authenticode implementation);
 *    the tpm2-tools agent attests against the node server with a crypto-agile log
 *    written here. Accepted with the right digest; refused (ATTEST_UKI_MISMATCH,
 *    audited with expected and actual digests) for a swapped UKI, a relabelled
 *    event, no event log, something started after the UKI, and PCR 4 not quoted.
 *    A BIOS node (no UEFI boot-option action in PCR 4) with the same image passes.
 *
 * Needs swtpm, tpm2-tools, binutils, systemd-boot-efi, pesign and the e2e kernel.
 */
import { X509Certificate, createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { AttestationService, type AttestationConfig } from '../../server/attest/service.js'
import { bootApplications, plannedBoot } from '../../server/attest/setup.js'
import { BOOT_APPLICATION_PCR, UEFI_BOOT_OPTION_ACTION, checkUkiCmdline, checkUkiMeasurement } from '../../server/attest/uki-rule.js'
import { EV, parseEventLog, type TcgEvent } from '../../server/attest/eventlog/index.js'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import { buildNodeApp } from '../../server/http/node/app.js'
import { buildUki, measureUki } from '../../server/images/uki.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { AuthenticodeDigests } from '../../server/store/store.js'
import { KeyRing } from '../../server/tokens/keys.js'
import { NodeTokens } from '../../server/tokens/node-token.js'
import { PROTOBUF_CONTENT_TYPE } from '../../proto/index.js'
import { tempDir } from '../helpers/tmp.js'
import { e2eAssets, need, needStub, pesignHash } from '../images/pe-helpers.js'
import { reference } from './helpers.js'
import { missingTools, startSwtpm, type Swtpm } from './swtpm-harness.js'
import { attestOnce, bootKey, makeKeys, type Keys, type Post } from './tools-agent.js'

/** Debian's ipxe package (scripts/debian-packages.txt): what netboot serves UEFI PXE nodes by default. */
const IPXE_DIR = '/usr/lib/ipxe'

const SHA256 = TPM_ALG.SHA256
const h256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest()
const system = { kind: 'system' as const, id: 'test' }

// ---- 1. the rule, pure ------------------------------------------------------

function ev (index: number, pcr: number, type: number, digest: Buffer, data = Buffer.alloc(0)): TcgEvent {
  return { index, offset: 0, pcr, type, digests: new Map([[SHA256, digest]]), data }
}

t.test('rule: UEFI told by the boot-option action digest; the UKI must be the last boot application', async (t) => {
  const uki = h256('uki')
  const linux = h256('kernel inside')
  const action = ev(1, 4, EV.EFI_ACTION, h256(UEFI_BOOT_OPTION_ACTION), Buffer.from(UEFI_BOOT_OPTION_ACTION))
  const sep = ev(2, 4, EV.SEPARATOR, h256(Buffer.alloc(4)))
  const ipxe = ev(3, 4, EV.EFI_BOOT_SERVICES_APPLICATION, h256('ipxe.efi'))
  const app = (d: Buffer, i = 4): TcgEvent => ev(i, 4, EV.EFI_BOOT_SERVICES_APPLICATION, d)
  const expect = { uki, linux }
  t.same(checkUkiMeasurement([action, sep, ipxe, app(uki)], SHA256, expect), { ok: true, basis: 'uki-measured' })
  t.same(checkUkiMeasurement([action, sep, app(uki), app(linux, 5)], SHA256, expect), { ok: true, basis: 'uki-measured' }, 'a stub that LoadImages its kernel')
  t.same(checkUkiMeasurement([ev(0, 4, EV.ACTION, h256('Calling INT 19h'))], SHA256, expect), { ok: true, basis: 'not-uefi' }, 'BIOS firmware')
  t.same(checkUkiMeasurement([], SHA256, expect), { ok: true, basis: 'not-uefi' })

  const swapped = checkUkiMeasurement([action, sep, ipxe, app(h256('other uki'))], SHA256, expect)
  t.match(swapped, { ok: false, expected: uki.toString('hex'), actual: [h256('ipxe.efi').toString('hex'), h256('other uki').toString('hex')], why: /no sha256 EV_EFI_BOOT_SERVICES_APPLICATION event with the served UKI's Authenticode digest/ })
  t.match(checkUkiMeasurement([action, sep, app(uki), app(h256('evil'), 5)], SHA256, expect), { ok: false, why: /1 more time\(s\) after the UKI/ }, 'something else started after the UKI')
  t.match(checkUkiMeasurement([action, sep, app(uki), app(linux, 5)], SHA256, { uki }), { ok: false }, 'the kernel event is allowed only when the image names it')
  t.match(checkUkiMeasurement([action, sep, app(uki), app(linux, 5), app(linux, 6)], SHA256, expect), { ok: false }, 'only one kernel event')
  t.match(checkUkiMeasurement([action, sep, ev(4, 4, EV.IPL, uki)], SHA256, expect), { ok: false }, 'the digest under another event type does not count')

  // what ran before the UKI, when the server knows what it serves
  const known = { ...expect, before: [h256('ipxe.efi')] }
  t.same(checkUkiMeasurement([action, sep, ipxe, app(uki), app(linux, 5)], SHA256, known), { ok: true, basis: 'uki-measured' }, 'UEFI PXE: the served ipxe.efi, then the UKI')
  t.same(checkUkiMeasurement([action, sep, app(uki)], SHA256, known), { ok: true, basis: 'uki-measured' }, 'iPXE from the NIC ROM: no application before the UKI')
  // OVMF + iPXE ROM, as the attested e2e boot logged it: iPXE's efi_image_probe() LoadImages the
  // UKI (no device path) and unloads it, then loads it again with its path and starts it
  t.same(checkUkiMeasurement([action, sep, app(uki, 2), app(uki, 3), app(linux, 5)], SHA256, known), { ok: true, basis: 'uki-measured' }, "iPXE probing the UKI before starting it: the UKI's digest twice")
  t.match(checkUkiMeasurement([action, sep, app(uki, 2), app(h256('evil'), 3), app(uki, 4)], SHA256, known), { ok: false, why: /1 boot application\(s\) before the UKI/ }, 'but not something else between the two')
  const returned = ev(2, 4, EV.EFI_ACTION, h256('Returning from EFI Application from Boot Device'))
  t.same(checkUkiMeasurement([action, returned, action, sep, ipxe, app(uki)], SHA256, known), { ok: true, basis: 'uki-measured' }, 'a boot option that returned, then the next')
  t.match(checkUkiMeasurement([action, sep, app(h256('evil loader')), app(uki)], SHA256, known),
    { ok: false, why: /1 boot application\(s\) before the UKI that netboot does not serve/ }, 'an unknown application before the UKI')
  t.match(checkUkiMeasurement([action, sep, ev(3, 4, EV.SEPARATOR, h256('evil loader')), app(uki)], SHA256, known),
    { ok: false }, 'relabelled as a separator: the digest, not the type, decides')
  t.same(checkUkiMeasurement([action, sep, app(h256('evil loader')), app(uki)], SHA256, expect), { ok: true, basis: 'uki-measured' }, 'without a list, not checked')
  t.same(checkUkiMeasurement([{ ...action, type: EV.ACTION }, app(uki)], SHA256, expect), { ok: true, basis: 'uki-measured' }, 'UEFI is recognised by digest even when the action is relabelled')
  t.match(checkUkiMeasurement([{ ...action, type: EV.ACTION }, ev(4, 4, EV.IPL, h256('evil'))], SHA256, expect), { ok: false }, 'relabelling every event does not make a UEFI log pass as BIOS')
  t.same(checkUkiMeasurement([action, ev(5, 5, EV.EFI_ACTION, h256('Exit Boot Services Invocation')), app(uki)], SHA256, expect), { ok: true, basis: 'uki-measured' }, 'other PCRs do not matter')
  t.same(checkUkiMeasurement([action, ev(9, 4, EV.NO_ACTION, h256('x')), app(uki), ev(10, 4, EV.NO_ACTION, h256('y'))], SHA256, expect), { ok: true, basis: 'uki-measured' }, 'EV_NO_ACTION extends nothing')
})

t.test('rule on a real UEFI log (reference/eventlogs/ubuntu2104.evlog: shim, then GRUB)', async (t) => {
  const log = parseEventLog(reference('ubuntu2104.evlog'))
  if (!log.ok) throw log.error
  const apps = log.value.events.filter((e) => e.pcr === BOOT_APPLICATION_PCR && e.type === EV.EFI_BOOT_SERVICES_APPLICATION).map((e) => e.digests.get(SHA256)!)
  t.equal(apps.length, 2)
  t.ok(log.value.events.some((e) => e.pcr === 4 && e.digests.get(SHA256)!.equals(h256(UEFI_BOOT_OPTION_ACTION))), 'the firmware measured the boot-option action string, as PFP §10.4.4 says')
  t.same(checkUkiMeasurement(log.value.events, SHA256, { uki: apps[1]! }), { ok: true, basis: 'uki-measured' }, 'the last application (GRUB) as the expected image')
  t.match(checkUkiMeasurement(log.value.events, SHA256, { uki: apps[0]! }), { ok: false, why: /after the UKI/ }, 'shim as the expected image: GRUB ran after it')
  t.match(checkUkiMeasurement(log.value.events, SHA256, { uki: h256('not there') }), { ok: false, actual: apps.map((a) => a.toString('hex')) })
  t.same(checkUkiMeasurement(log.value.events, TPM_ALG.SHA1, { uki: log.value.events.filter((e) => e.pcr === 4 && e.type === EV.EFI_BOOT_SERVICES_APPLICATION).at(-1)!.digests.get(TPM_ALG.SHA1)! }), { ok: true, basis: 'uki-measured' }, 'the sha1 bank too')
})

t.test('command line rule (PCR 12): one event with the served LoadOptions, or none', async (t) => {
  const served = 'uki.efi console=ttyS0 netboot.node=nid001'
  const d = (s: string): Buffer => h256(Buffer.from(`${s}\0`, 'utf16le'))
  const ipl = (s: string, i = 20): TcgEvent => ev(i, 12, EV.IPL, d(s), Buffer.from(`${s}\0`, 'utf16le'))
  t.same(checkUkiCmdline([ipl(served)], SHA256, served), { ok: true, basis: 'matches' })
  t.same(checkUkiCmdline([], SHA256, served), { ok: true, basis: 'built-in' }, 'Secure Boot on: the stub used .cmdline, which PCR 4 covers')
  t.match(checkUkiCmdline([ipl('uki.efi console=ttyS0 netboot.node=nid001 netboot.server=http://evil')], SHA256, served), { ok: false, expected: d(served).toString('hex'), why: /another kernel command line/ })
  t.match(checkUkiCmdline([ipl(served), ipl('init=/bin/sh', 21)], SHA256, served), { ok: false }, 'a second PCR 12 event')
  t.match(checkUkiCmdline([ipl(served.slice(8))], SHA256, served), { ok: false }, 'without the image name iPXE puts first')

  // the real thing: OVMF's shell started a UKI with a command line (test/fixtures/uki/ovmf-shell-cmdline.*)
  const rec = JSON.parse(readFileSync(new URL('../fixtures/uki/ovmf-shell-cmdline.json', import.meta.url), 'utf8')) as { loadOptions: string; uki: { sha256: string; sha1: string }; linux: { sha256: string; sha1: string } }
  const log = parseEventLog(readFileSync(new URL('../fixtures/uki/ovmf-shell-cmdline.evlog', import.meta.url)))
  if (!log.ok) throw log.error
  for (const [alg, bank] of [[SHA256, 'sha256'], [TPM_ALG.SHA1, 'sha1']] as const) {
    t.same(checkUkiMeasurement(log.value.events, alg, { uki: Buffer.from(rec.uki[bank], 'hex'), linux: Buffer.from(rec.linux[bank], 'hex') }), { ok: true, basis: 'uki-measured' }, `real log, PCR 4 (${bank}): the shell, then the UKI, then its kernel`)
    t.same(checkUkiCmdline(log.value.events, alg, rec.loadOptions), { ok: true, basis: 'matches' }, `real log, PCR 12 (${bank}): systemd-stub measured H(UTF-16LE line ‖ NUL)`)
    t.match(checkUkiCmdline(log.value.events, alg, `${rec.loadOptions} rd.shell`), { ok: false }, `real log, another line (${bank})`)
  }
})

// ---- 2. end to end ----------------------------------------------------------

/** A crypto-agile (TCG PFP §10.2.2) event log with one bank, sha256, written independently of the parser. */
function encodeLog (events: readonly { pcr: number; type: number; digest: Buffer; data: Buffer }[]): Buffer {
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
  const u16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b }
  const specId = Buffer.concat([Buffer.from('Spec ID Event03\0', 'latin1'), u32(0), Buffer.from([0, 2, 0, 2]), u32(1), u16(SHA256), u16(32), Buffer.from([0])])
  const parts = [u32(0), u32(EV.NO_ACTION), Buffer.alloc(20), u32(specId.length), specId]
  for (const e of events) parts.push(u32(e.pcr), u32(e.type), u32(1), u16(SHA256), e.digest, u32(e.data.length), e.data)
  return Buffer.concat(parts)
}

/** A machine's firmware: extends swtpm and keeps the matching log. */
class Firmware {
  readonly events: { pcr: number; type: number; digest: Buffer; data: Buffer }[] = []
  constructor (private readonly tpm: Swtpm) {}
  async measure (pcr: number, type: number, digest: Buffer, data: Buffer = Buffer.alloc(0)): Promise<void> {
    await this.tpm.tool('tpm2_pcrextend', [`${pcr}:sha256=${digest.toString('hex')}`])
    this.events.push({ pcr, type, digest, data })
  }

  async action (pcr: number, type: number, text: string): Promise<void> { await this.measure(pcr, type, h256(text), Buffer.from(text)) }
  log (edit: (e: Firmware['events']) => Firmware['events'] = (e) => e): Buffer { return encodeLog(edit(this.events.map((e) => ({ ...e })))) }
}

interface Env { post: Post; store: SqliteStore; boot: BootService; service: (cfg?: Partial<AttestationConfig>, before?: readonly AuthenticodeDigests[]) => Post }

async function env (t: Test, anchors: Swtpm[]): Promise<Env> {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  const log = pino({ level: 'silent' })
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: 'http://10.0.0.1:8080', unknown: { action: 'reboot' } }, log)
  const ring = await KeyRing.open({ dir: join(dir, 'keys'), rotateAfterMs: 30 * 86_400_000, maxTokenTtlMs: 900_000 })
  const tokens = new NodeTokens(ring, 'http://10.0.0.1:8080', 900)
  const apps: Array<{ close: () => Promise<unknown> }> = []
  t.teardown(async () => { for (const a of apps) await a.close(); await store.close() })
  const service = (cfg: Partial<AttestationConfig> = {}, before?: readonly AuthenticodeDigests[]): Post => {
    const s = new AttestationService({
      enrollment: 'tofu', requireEkCert: false, anchors: anchors.flatMap((a) => [new X509Certificate(readFileSync(a.issuerCert)), new X509Certificate(readFileSync(a.rootCert))]),
      pcrs: [0, 1, 2, 3, 4, 5, 6, 7], bank: 'sha256', pcrPolicy: 'off', discover: false, sessionTtlMs: 60_000, maxSessions: 100, ...cfg,
    }, store, tokens, log, async (node) => plannedBoot(await boot.plan(node), before))
    let app: Awaited<ReturnType<typeof buildNodeApp>> | undefined
    return async (path, body) => {
      if (app === undefined) {
        app = await buildNodeApp({ store, log, metrics: createMetrics({ processMetrics: false }), bodyLimit: 1 << 20, attestation: { service: s, keys: ring, tokens, publicUrl: 'http://10.0.0.1:8080' } })
        apps.push(app)
      }
      const r = await app.inject({ method: 'POST', url: path, headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, payload: Buffer.from(body) })
      return { status: r.statusCode, body: r.rawPayload, ...(r.statusCode !== 200 ? { json: r.json() } : {}) }
    }
  }
  return { post: service(), store, boot, service }
}

t.test('end to end: swtpm measured like OVMF starting a UKI; swapped, hidden, relabelled and followed UKIs are refused', async (t) => {
  const missing = missingTools()
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: install Debian's swtpm, swtpm-tools and tpm2-tools (scripts/setup.sh)`)
  need('objcopy', 'binutils')
  needStub()
  const { vmlinuz, initrd } = e2eAssets()
  const dir = tempDir(t, 'netboot-uki-attest-')
  const real = await buildUki({ kernel: vmlinuz, initrd, cmdline: 'console=ttyS0', output: join(dir, 'real.efi') })
  writeFileSync(join(dir, 'evil-initrd'), Buffer.concat([readFileSync(initrd), Buffer.from('an agent that lies')]))
  const evil = await buildUki({ kernel: vmlinuz, initrd: join(dir, 'evil-initrd'), cmdline: 'console=ttyS0', output: join(dir, 'evil.efi') })
  // what the firmware extends: computed by pesign, not by netboot
  const realPcr4 = Buffer.from(pesignHash(real.path), 'hex')
  const evilPcr4 = Buffer.from(pesignHash(evil.path), 'hex')
  t.not(realPcr4.toString('hex'), evilPcr4.toString('hex'))

  const uefiTpm = await startSwtpm()
  t.teardown(async () => { await uefiTpm.stop() })
  const biosTpm = await startSwtpm()
  t.teardown(async () => { await biosTpm.stop() })
  const pxeTpm = await startSwtpm()
  t.teardown(async () => { await pxeTpm.stop() })
  const uefiKeys: Keys = await makeKeys(uefiTpm)
  const biosKeys: Keys = await makeKeys(biosTpm)
  const pxeKeys: Keys = await makeKeys(pxeTpm)
  const e = await env(t, [uefiTpm, biosTpm, pxeTpm])
  await e.store.createNode({ name: 'uefi1', groups: [], interfaces: [{ mac: '02:00:00:00:20:01' }] }, system)
  await e.store.createNode({ name: 'bios1', groups: [], interfaces: [{ mac: '02:00:00:00:20:02' }] }, system)
  const register = async (version: string, uki: typeof real): Promise<void> => {
    const m = measureUki(readFileSync(uki.path))
    await e.store.addImage({ name: 'compute', version, kernelSha256: 'a'.repeat(64), initrdSha256: 'b'.repeat(64), ukiSha256: uki.sha256, ukiAuthenticode: m.authenticode, ...(m.linux !== undefined ? { ukiLinuxAuthenticode: m.linux } : {}), params: '' }, system)
  }
  await register('1', real)
  await e.store.setBootConfig('default', '', { image: 'compute@1' }, system)

  const uefi = new Firmware(uefiTpm)
  await uefi.action(4, EV.EFI_ACTION, UEFI_BOOT_OPTION_ACTION)
  for (let pcr = 0; pcr <= 7; pcr++) await uefi.measure(pcr, EV.SEPARATOR, h256(Buffer.alloc(4)), Buffer.alloc(4))
  await uefi.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, realPcr4, Buffer.from('device path of uki.efi'))
  // Debian's stub starts its .linux with LoadImage: the firmware measures the kernel too (test/fixtures/uki/)
  await uefi.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, Buffer.from(pesignHash(vmlinuz), 'hex'), Buffer.from('memory device path of .linux'))

  const attest = async (post: Post, tpm: Swtpm, keys: Keys, mac: string, eventLog?: Buffer) => await attestOnce(tpm, keys, post, [mac], await bootKey(), eventLog !== undefined ? { eventLog } : {})
  const last = async () => (await e.store.listAudit({ action: 'attest.finish', limit: 1000 })).at(-1)!

  const ok = await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log())
  t.match(ok, { ok: true, node: 'uefi1' }, 'the served UKI, measured by the firmware: accepted')
  t.match((await last()).detail, { uki: { sha256: real.sha256, bank: 'sha256', expected: real.authenticode.sha256, basis: 'uki-measured' } })

  const relabelled = await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log((evs) => evs.map((x) => x.type === EV.EFI_BOOT_SERVICES_APPLICATION ? { ...x, type: EV.IPL } : x)))
  t.match(relabelled, { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'the UKI event relabelled (replays, since types are not extended)')

  const hidden = await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log((evs) => evs.filter((x) => !x.digest.equals(realPcr4))))
  t.match(hidden, { ok: false, code: 'ATTEST_EVENTLOG_MISMATCH' }, 'a log without the UKI event does not replay')

  const noLog = await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01')
  t.match(noLog, { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'no event log at all')
  t.match((await last()).detail, { reason: 'ATTEST_UKI_MISMATCH', why: /sent no event log/, uki: { expected: real.authenticode.sha256, actual: [] } })

  const noPcr4 = await attest(e.service({ pcrs: [0, 1, 2, 3, 5, 6, 7] }), uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log())
  t.match(noPcr4, { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'PCR 4 not quoted: the log\'s PCR 4 is unproven')
  t.match((await last()).detail, { why: /PCR 4 is not among attestation.pcrs/ })

  // PCR 12 quoted: the command line systemd-stub measured must be the one served (iPXE puts `uki.efi ` first)
  const withPcr12 = e.service({ pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 12] })
  t.match(await attest(withPcr12, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log()), { ok: true }, 'PCR 12 quoted and empty: the built-in command line (Secure Boot on)')
  t.match((await last()).detail, { uki: { basis: 'uki-measured', cmdline: 'built-in' } })
  const plan = await e.boot.plan((await e.store.getNode('uefi1'))!)
  const served = `uki.efi ${plan.cmdline}`
  await uefi.measure(12, EV.IPL, h256(Buffer.from(`${served}\0`, 'utf16le')), Buffer.from(`${served}\0`, 'utf16le'))
  t.match(await attest(withPcr12, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log()), { ok: true }, 'PCR 12 holds the served command line')
  t.match((await last()).detail, { uki: { cmdline: 'matches' } })
  t.match(await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log()), { ok: true }, 'PCR 12 not quoted: not checked')
  t.match((await last()).detail, { uki: { cmdline: 'not-quoted' } })
  const tampered = `uki.efi ${plan.cmdline} init=/bin/sh`
  await uefi.measure(12, EV.IPL, h256(Buffer.from(`${tampered}\0`, 'utf16le')), Buffer.from(`${tampered}\0`, 'utf16le'))
  t.match(await attest(withPcr12, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log()), { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'another command line in PCR 12: refused')
  t.match((await last()).detail, { why: /another kernel command line/, uki: { cmdline: { expected: h256(Buffer.from(`${served}\0`, 'utf16le')).toString('hex') } } })

  // UEFI PXE: the firmware chainloads an iPXE binary netboot serves, which starts the UKI
  const { digests: known, files } = bootApplications(IPXE_DIR, [])
  t.ok(files.includes(join(IPXE_DIR, 'ipxe.efi')), `ipxe_dir's EFI binaries are known: ${files.join(', ')}`)
  t.equal(known.find((d) => d.sha256 === pesignHash(join(IPXE_DIR, 'ipxe.efi'))) !== undefined, true, "ipxe.efi's digest is pesign's")
  await e.store.createNode({ name: 'uefi2', groups: [], interfaces: [{ mac: '02:00:00:00:20:03' }] }, system)
  const pxe = new Firmware(pxeTpm)
  await pxe.action(4, EV.EFI_ACTION, UEFI_BOOT_OPTION_ACTION)
  for (let pcr = 0; pcr <= 7; pcr++) await pxe.measure(pcr, EV.SEPARATOR, h256(Buffer.alloc(4)), Buffer.alloc(4))
  await pxe.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, Buffer.from(pesignHash(join(IPXE_DIR, 'ipxe.efi')), 'hex'), Buffer.from('device path of ipxe.efi'))
  await pxe.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, realPcr4, Buffer.from('device path of uki.efi'))
  await pxe.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, Buffer.from(pesignHash(vmlinuz), 'hex'), Buffer.from('memory device path of .linux'))
  t.match(await attest(e.service({}, known), pxeTpm, pxeKeys, '02:00:00:00:20:03', pxe.log()), { ok: true }, 'the served ipxe.efi before the UKI: accepted')
  t.match(await attest(e.service({}, []), pxeTpm, pxeKeys, '02:00:00:00:20:03', pxe.log()), { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'an application netboot does not serve before the UKI: refused')
  t.match((await last()).detail, { reason: 'ATTEST_UKI_MISMATCH', why: /before the UKI that netboot does not serve/ })
  t.match(await attest(e.service({}, known), uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log()), { ok: true }, 'iPXE from the NIC ROM (nothing before the UKI): accepted')

  // the server now serves version 2 (the other UKI), but the firmware measured version 1's
  await register('2', evil)
  await e.store.setBootConfig('default', '', { image: 'compute@2' }, system)
  const swapped = await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log())
  t.match(swapped, { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'the firmware started another UKI than the one served')
  const entry = await last()
  t.equal(entry.outcome, 'denied')
  t.match(entry.detail, { reason: 'ATTEST_UKI_MISMATCH', uki: { sha256: evil.sha256, expected: evil.authenticode.sha256, actual: [realPcr4.toString('hex'), pesignHash(vmlinuz)] } }, 'audited with the expected and the actual digests')

  await e.store.setBootConfig('default', '', { image: 'compute@1' }, system)
  await uefi.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, evilPcr4, Buffer.from('device path of evil.efi'))
  const after = await attest(e.post, uefiTpm, uefiKeys, '02:00:00:00:20:01', uefi.log())
  t.match(after, { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'the served UKI started, then returned, then another image ran')
  t.match((await last()).detail, { why: /after the UKI/ })

  // a BIOS machine booting the same image: SeaBIOS-style PCR 4, no UEFI boot-option action
  const bios = new Firmware(biosTpm)
  await bios.action(4, EV.ACTION, 'Calling INT 19h')
  for (let pcr = 0; pcr <= 7; pcr++) await bios.measure(pcr, EV.SEPARATOR, h256(Buffer.alloc(4)), Buffer.alloc(4))
  t.match(await attest(e.post, biosTpm, biosKeys, '02:00:00:00:20:02', bios.log()), { ok: true, node: 'bios1' }, 'BIOS: kernel + initrd, nothing in PCR 4 to check')
  t.match((await last()).detail, { uki: { basis: 'not-uefi' } })
  t.match(await attest(e.post, biosTpm, biosKeys, '02:00:00:00:20:02'), { ok: false, code: 'ATTEST_UKI_MISMATCH' }, 'BIOS without an event log: refused too (it could be a UEFI node hiding its log)')
})

t.test('bootApplications: ipxe_dir EFI files, listed files, and a listed file that is not a PE image', async (t) => {
  const dir = tempDir(t, 'netboot-bootapps-')
  writeFileSync(join(dir, 'notes.efi'), 'not a PE image')
  const none = bootApplications(dir, [])
  t.same(none.files, [], 'a non-PE .efi in ipxe_dir is skipped')
  const listed = bootApplications(dir, [join(IPXE_DIR, 'snponly.efi')])
  t.same(listed.files, [join(IPXE_DIR, 'snponly.efi')])
  t.equal(listed.digests[0]!.sha256, pesignHash(join(IPXE_DIR, 'snponly.efi')))
  t.throws(() => bootApplications(dir, [join(dir, 'notes.efi')]), { code: 'CONFIG_INVALID', message: /attestation\.boot_applications\[0\]: .*notes\.efi is not a PE image/ })
  t.throws(() => bootApplications(dir, [join(dir, 'missing.efi')]), { code: 'CONFIG_INVALID', message: /attestation\.boot_applications\[0\]: .*missing\.efi: ENOENT/ })
  t.same(bootApplications(join(dir, 'no-such-dir'), []).files, [], 'no ipxe_dir: nothing known (TFTP setup reports it)')
})
