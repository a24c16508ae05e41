/**
 * Unified kernel images (server/images/uki.ts): the section layout as a pure
 * function, a real build with objcopy and Debian's systemd stub checked with
 * binutils' own objdump/objcopy, the measurements taken on registration, and the
 * image store + admin API + node server path (POST /api/v1/images with ukiSha256,
 * the boot script names the UKI, /images serves it).
 *
 * Needs binutils, systemd-boot-efi, pesign (scripts/debian-packages.txt) and the
 * e2e kernel (scripts/e2e-assets.sh); a missing one fails naming its package.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import t from 'tap'
import { authenticodeDigest, parsePe } from '../../server/images/authenticode.js'
import { buildUki, checkUki, DEFAULT_OS_RELEASE, measureUki, measureUkiFile, peSectionBytes, ukiLayout, type BuiltUki } from '../../server/images/uki.js'
import { BlobStore } from '../../server/images/blobs.js'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import { buildAdminApp } from '../../server/http/admin/app.js'
import { createAdminToken } from '../../server/http/admin/tokens.js'
import { buildNodeApp } from '../../server/http/node/app.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { migrations } from '../../server/store/sqlite/migrations.js'
import { tempDir } from '../helpers/tmp.js'
import { runScript } from '../boot/ipxe-sim.js'
import { buildPe, e2eAssets, need, needStub, pesignHash } from './pe-helpers.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const system = { kind: 'system' as const, id: 'test' }

t.test('layout: after the stub, aligned to its SectionAlignment, in order, ImageBase added', async (t) => {
  const sections = [{ name: '.text', virtualSize: 0x2ff0, virtualAddress: 0x1000, sizeOfRawData: 0x3000, pointerToRawData: 0x400, characteristics: 0 }]
  const stub = { imageBase: 0, sectionAlignment: 0x1000, sizeOfImage: 0x4000, sections }
  t.same(ukiLayout(stub, [{ name: '.osrel', size: 10 }, { name: '.cmdline', size: 0x1000 }, { name: '.linux', size: 0x1001 }]), [
    { name: '.osrel', vma: 0x4000, size: 10 },
    { name: '.cmdline', vma: 0x5000, size: 0x1000 },
    { name: '.linux', vma: 0x6000, size: 0x1001 },
  ])
  t.same(ukiLayout({ ...stub, sizeOfImage: 0x1000 }, [{ name: '.osrel', size: 1 }]), [{ name: '.osrel', vma: 0x4000, size: 1 }], 'a SizeOfImage short of the last section: the section end wins')
  t.same(ukiLayout({ ...stub, imageBase: 0x140000000, sectionAlignment: 0x200, sizeOfImage: 0x4001 }, [{ name: '.osrel', size: 1 }, { name: '.linux', size: 1 }]),
    [{ name: '.osrel', vma: 0x140004200, size: 1 }, { name: '.linux', vma: 0x140004400, size: 1 }], 'ImageBase and a 512-byte alignment')
  t.throws(() => ukiLayout({ ...stub, sectionAlignment: 0x300 }, [{ name: '.osrel', size: 1 }]), { code: 'UKI_BUILD_FAILED', message: /power of two/ })
  t.throws(() => ukiLayout(stub, [{ name: '.text', size: 1 }]), { code: 'UKI_BUILD_FAILED', message: /already has a \.text/ })
  t.throws(() => ukiLayout(stub, [{ name: '.linux', size: 0xffffffff }]), { code: 'UKI_BUILD_FAILED', message: /4 GiB/ })
})

t.test('layout of the real stub equals the objdump recipe (Arch wiki: last section VMA + size, aligned)', async (t) => {
  need('objdump', 'binutils')
  const stub = needStub()
  const pe = parsePe(readFileSync(stub))
  if (!pe.ok) throw pe.error
  const p = execFileSync('objdump', ['-p', stub], { encoding: 'utf8' })
  const align = parseInt(/^SectionAlignment\s+([0-9a-f]+)/m.exec(p)![1]!, 16)
  const h = execFileSync('objdump', ['-h', stub], { encoding: 'utf8' })
  let end = 0
  for (const m of h.matchAll(/^\s*\d+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s/gm)) end = Math.max(end, parseInt(m[1]!, 16) + parseInt(m[2]!, 16))
  // The recipe's end is the last section's VMA + VirtualSize; SizeOfImage can reach
  // further (this stub's last section has 0x200 bytes of raw data past its 0x34 of
  // VirtualSize): starting past both overlaps nothing whichever size a loader maps.
  const sizeOfImage = parseInt(/^SizeOfImage\s+([0-9a-f]+)/m.exec(p)![1]!, 16)
  const first = Math.ceil(Math.max(end, sizeOfImage) / align) * align
  t.ok(first >= Math.ceil(end / align) * align, 'never before the recipe\'s address')
  t.equal(ukiLayout(pe.value, [{ name: '.osrel', size: 1 }])[0]!.vma, first, `first added section at 0x${first.toString(16)}`)
})

/** One real UKI for the tests below, built on first use in a directory removed at the end. */
let built: { uki: BuiltUki; vmlinuz: string; initrd: string; dir: string } | undefined
async function realUki (): Promise<NonNullable<typeof built>> {
  if (built !== undefined) return built
  need('objcopy', 'binutils')
  needStub()
  const { vmlinuz, initrd } = e2eAssets()
  const dir = tempDir(t, 'netboot-uki-')
  const uki = await buildUki({ kernel: vmlinuz, initrd, cmdline: 'console=ttyS0 netboot.built-in=1', output: join(dir, 'netboot.efi') })
  built = { uki, vmlinuz, initrd, dir }
  return built
}

t.test('build: objcopy + the systemd stub; binutils sees each section where the layout put it, with the input bytes', async (t) => {
  const { uki, vmlinuz, initrd, dir } = await realUki()
  t.same(readdirSync(dir), ['netboot.efi'], 'no temporary files left beside the output')
  const bytes = readFileSync(uki.path)
  t.equal(uki.size, bytes.length)
  t.equal(uki.sha256, sha(bytes))
  t.equal(checkUki(bytes, uki.sections), undefined)
  t.same(uki.sections.map((s) => s.name), ['.osrel', '.cmdline', '.initrd', '.linux'], '.linux last')
  const h = execFileSync('objdump', ['-h', uki.path], { encoding: 'utf8' })
  for (const s of uki.sections) {
    const m = new RegExp(`^\\s*\\d+\\s+${s.name.replace('.', '\\.')}\\s+([0-9a-f]+)\\s+([0-9a-f]+)\\s`, 'm').exec(h)
    t.ok(m !== null, `objdump lists ${s.name}`)
    t.equal(parseInt(m![2]!, 16), s.vma, `${s.name} VMA`)
    t.equal(parseInt(m![1]!, 16), s.size, `${s.name} size`)
  }
  const section = (name: string): Buffer => {
    const out = join(dir, `section${name}`)
    execFileSync('objcopy', ['-O', 'binary', `--only-section=${name}`, uki.path, out])
    const b = readFileSync(out)
    execFileSync('rm', ['-f', out])
    return b
  }
  t.ok(section('.linux').equals(readFileSync(vmlinuz)), '.linux is the kernel, byte for byte')
  t.ok(section('.initrd').equals(readFileSync(initrd)), '.initrd is the initrd, byte for byte')
  t.equal(section('.cmdline').toString(), 'console=ttyS0 netboot.built-in=1')
  t.equal(section('.osrel').toString(), DEFAULT_OS_RELEASE)
  t.ok(peSectionBytes(bytes, '.initrd')!.equals(readFileSync(initrd)), 'peSectionBytes reads the same')
  t.equal(uki.authenticode.sha256, pesignHash(uki.path), 'the reported PCR 4 digest is what pesign computes')

  const m = measureUki(bytes)
  t.same(m.authenticode, uki.authenticode, 'measureUki agrees with buildUki')
  t.equal(m.linux?.sha256, pesignHash(vmlinuz), "the .linux digest is the kernel's own Authenticode hash")
  t.same(await measureUkiFile(uki.path), m, 'measureUkiFile (a worker thread) gives the same')
  const notPe = join(dir, 'not-pe')
  writeFileSync(notPe, 'not a PE at all')
  await t.rejects(measureUkiFile(notPe), { code: 'IMAGE_UKI_INVALID', message: /not a PE image/ }, 'its refusal keeps the code')
  await t.rejects(measureUkiFile(join(dir, 'missing')), { message: /ENOENT/ })
})

t.test('build errors name the input at fault', async (t) => {
  const dir = tempDir(t, 'netboot-uki-err-')
  const kernel = join(dir, 'k')
  const initrd = join(dir, 'i')
  writeFileSync(kernel, 'k')
  writeFileSync(initrd, 'i')
  const base = { kernel, initrd, cmdline: 'x', output: join(dir, 'out.efi') }
  await t.rejects(buildUki({ ...base, stub: join(dir, 'nostub') }), { code: 'UKI_BUILD_FAILED', message: /nostub: ENOENT/ })
  await t.rejects(buildUki({ ...base, stub: kernel }), { code: 'UKI_BUILD_FAILED', message: /not a PE image/ })
  const stub = join(dir, 'stub.efi')
  writeFileSync(stub, buildPe().bytes)
  await t.rejects(buildUki({ ...base, stub, kernel: join(dir, 'nokernel') }), { code: 'UKI_BUILD_FAILED', message: /kernel .*nokernel: ENOENT/ })
  writeFileSync(join(dir, 'empty'), '')
  await t.rejects(buildUki({ ...base, stub, initrd: join(dir, 'empty') }), { code: 'UKI_BUILD_FAILED', message: /initrd .*empty is empty/ })
  await t.rejects(buildUki({ ...base, stub, objcopy: join(dir, 'no-objcopy') }), { code: 'UKI_BUILD_FAILED', message: /not found \(install Debian's binutils\)/ })
  await t.rejects(buildUki({ ...base, stub, cmdline: 'a\0b' }), { code: 'UKI_BUILD_FAILED', message: /NUL/ })
  t.same(readdirSync(dir).sort(), ['empty', 'i', 'k', 'stub.efi'], 'nothing left behind')
})

t.test('measureUki refuses what is not a UKI', async (t) => {
  t.throws(() => measureUki(Buffer.from('not a PE at all, just text')), { code: 'IMAGE_UKI_INVALID', message: /not a PE image/ })
  t.throws(() => measureUki(buildPe().bytes), { code: 'IMAGE_UKI_INVALID', message: /no \.linux section/ })
  const withText = measureUki(buildPe({ sections: [{ name: '.linux', data: Buffer.from('not a PE inside') }] }).bytes)
  t.equal(withText.linux, undefined, 'a .linux that is no PE has no digest of its own')
  const d = authenticodeDigest(buildPe({ sections: [{ name: '.linux', data: Buffer.from('not a PE inside') }] }).bytes)
  t.equal(withText.authenticode.sha256, d.ok ? d.value.toString('hex') : '')
})

t.test('store, admin API and node server: register with ukiSha256, UEFI iPXE boots it, BIOS iPXE boots kernel + initrd', async (t) => {
  const { uki, vmlinuz, initrd } = await realUki()
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  t.equal(store.schemaVersion, migrations.at(-1)!.version)
  t.ok(migrations.some((m) => m.version === 4 && /uki_sha256/.test(m.sql)), 'migration 4 adds the UKI columns')
  const blobs = new BlobStore(join(dir, 'images'))
  await blobs.init()
  const log = pino({ level: 'silent' })
  const PUBLIC = 'http://10.0.0.1:8080'
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: PUBLIC, unknown: { action: 'reboot' } }, log)
  const metrics = createMetrics({ processMetrics: false })
  const admin = await buildAdminApp({ store, log, metrics, bodyLimit: 1 << 20, metricsPublic: true, version: 't', images: { blobs, boot } })
  const node = await buildNodeApp({ store, log, metrics, bodyLimit: 1 << 20, publicUrl: PUBLIC, boot: { boot, blobs, ipxeDir: '/usr/lib/ipxe' } })
  t.teardown(async () => { await admin.close(); await node.close(); await store.close() })
  const token = (await createAdminToken(store, { name: 'ops', role: 'operator' }, system)).value
  const call = async (method: string, url: string, payload?: unknown) => await admin.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(payload !== undefined ? { payload: payload as string } : {}) })
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: '02:00:00:00:10:01', ip: '10.0.0.11' }] }, system)

  const k = readFileSync(vmlinuz)
  const i = readFileSync(initrd)
  const u = readFileSync(uki.path)
  const notPe = Buffer.from('this is not a PE image '.repeat(10))
  for (const b of [k, i, notPe]) await blobs.addStream([b])
  const early = await call('POST', '/api/v1/images', { name: 'compute', version: '0', kernelSha256: sha(k), initrdSha256: sha(i), ukiSha256: sha(u) })
  t.equal(early.json().error?.code, 'BLOB_NOT_FOUND', 'the UKI must be uploaded first')
  t.match(early.json().error.message, /UKI/)
  await blobs.addStream([u])
  const bad = await call('POST', '/api/v1/images', { name: 'compute', version: '0', kernelSha256: sha(k), initrdSha256: sha(i), ukiSha256: sha(notPe) })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error, { code: 'IMAGE_UKI_INVALID', message: new RegExp(`${sha(notPe)}: not a PE image`) })
  t.same(await store.listImages(), [], 'nothing registered')

  const ok = await call('POST', '/api/v1/images', { name: 'compute', version: '1', kernelSha256: sha(k), initrdSha256: sha(i), ukiSha256: sha(u), params: 'console=ttyS0' })
  t.equal(ok.statusCode, 201, ok.body)
  t.match(ok.json(), { ukiSha256: sha(u), ukiAuthenticode: uki.authenticode, ukiLinuxAuthenticode: { sha256: pesignHash(vmlinuz) } })
  t.match((await call('GET', '/api/v1/images/compute')).json().images[0], { ukiSha256: sha(u), ukiAuthenticode: { sha256: uki.authenticode.sha256 } })
  t.match((await store.listAudit({ action: 'image.add' })).at(-1)?.detail, { uki: sha(u), ukiAuthenticodeSha256: uki.authenticode.sha256 })
  t.equal((await call('PUT', '/api/v1/boot', { scope: 'default', image: 'compute' })).statusCode, 200)

  const script = (await node.inject({ method: 'GET', url: '/boot/02:00:00:00:10:01' })).body
  const ukiUrl = `${PUBLIC}/images/${sha(u)}/uki.efi`
  t.match(script, `kernel --name uki.efi ${ukiUrl} `)
  t.match((await call('GET', '/api/v1/nodes/nid001/boot')).json(), { uki: ukiUrl })
  const efi = runScript(script, { settings: { platform: 'efi' } })
  if (efi.end.kind !== 'boot') throw new Error(`efi run ended in ${efi.end.kind}`)
  t.equal(efi.end.kernel.url, ukiUrl, 'UEFI: the UKI')
  t.same(efi.end.initrds, [], 'UEFI: no separate initrd')
  t.match(efi.end.kernel.cmdline, /netboot\.node=nid001/, 'UEFI: the per-node parameters are on the command line iPXE passes')
  t.notMatch(efi.end.kernel.cmdline, /initrd=/)
  const bios = runScript(script, { settings: { platform: 'pcbios' } })
  if (bios.end.kind !== 'boot') throw new Error(`bios run ended in ${bios.end.kind}`)
  t.equal(bios.end.kernel.url, `${PUBLIC}/images/${sha(k)}/vmlinuz`, 'BIOS: the kernel')
  t.same(bios.end.initrds.map((x) => x.url), [`${PUBLIC}/images/${sha(i)}/initrd.img`], 'BIOS: the initrd')
  t.equal(bios.end.kernel.cmdline.replace(/^initrd=initrd\.img /, ''), efi.end.kernel.cmdline, 'the same command line either way')

  const served = await node.inject({ method: 'GET', url: `/images/${sha(u)}/uki.efi` })
  t.equal(served.statusCode, 200)
  t.ok(served.rawPayload.equals(u), 'the node server serves the UKI by its digest')
})
