/**
 * The image store and boot configuration through the admin API, and the chainload
 * path on the node server: boot scripts by MAC, images by digest with ranges.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { buildAdminApp } from '../../server/http/admin/app.js'
import { createAdminToken } from '../../server/http/admin/tokens.js'
import { buildNodeApp } from '../../server/http/node/app.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { BlobStore } from '../../server/images/blobs.js'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import { tempDir } from '../helpers/tmp.js'

const PUBLIC = 'http://10.0.0.1:8080'
const system = { kind: 'system' as const, id: 'test' }
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const KERNEL = Buffer.from('MZ kernel bytes '.repeat(1000))
const INITRD = Buffer.from('initrd bytes '.repeat(500))
const ROOTFS = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i & 255))

async function setup (t: Test, discoveryImage?: string) {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  const blobs = new BlobStore(join(dir, 'images'))
  await blobs.init()
  const log = pino({ level: 'silent' })
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: PUBLIC, unknown: { action: 'discover', ...(discoveryImage !== undefined ? { discoveryImage } : {}) } }, log)
  const metrics = createMetrics({ processMetrics: false })
  const admin = await buildAdminApp({ store, log, metrics, bodyLimit: 1 << 20, metricsPublic: true, version: 't', images: { blobs, boot } })
  const node = await buildNodeApp({ store, log, metrics, bodyLimit: 1 << 20, publicUrl: PUBLIC, boot: { boot, blobs, ipxeDir: '/usr/lib/ipxe' } })
  t.teardown(async () => { await admin.close(); await node.close(); await store.close() })
  const token = (await createAdminToken(store, { name: 'ops', role: 'operator' }, system)).value
  const call = async (method: string, url: string, payload?: unknown, contentType?: string) => await admin.inject({
    method: method as 'GET', url, headers: { authorization: `Bearer ${token}`, ...(contentType !== undefined ? { 'content-type': contentType } : {}) },
    ...(payload !== undefined ? { payload: payload as string } : {}),
  })
  await store.createGroup('compute', '', system)
  await store.createNode({ name: 'nid001', groups: ['compute'], interfaces: [{ mac: '02:00:00:00:10:01', ip: '10.0.0.11' }] }, system)
  return { store, admin, node, call }
}

async function addImage (s: Awaited<ReturnType<typeof setup>>, name: string, version?: string) {
  for (const b of [KERNEL, INITRD, ROOTFS]) {
    const r = await s.call('PUT', `/api/v1/blobs/${sha(b)}`, b, 'application/octet-stream')
    if (r.statusCode !== 200) throw new Error(r.body)
  }
  return await s.call('POST', '/api/v1/images', { name, ...(version !== undefined ? { version } : {}), kernelSha256: sha(KERNEL), initrdSha256: sha(INITRD), rootfsSha256: sha(ROOTFS), params: 'console=ttyS0,115200 ip=dhcp rd.neednet=1' })
}

t.test('upload, register, configure, and the node boots it', async (t) => {
  const s = await setup(t)
  t.equal((await s.call('HEAD', `/api/v1/blobs/${sha(KERNEL)}`)).statusCode, 404)
  const wrong = await s.call('PUT', `/api/v1/blobs/${sha(INITRD)}`, KERNEL, 'application/octet-stream')
  t.equal(wrong.json().error.code, 'BLOB_DIGEST_MISMATCH', 'an upload must hash to its name')
  const missing = await s.call('POST', '/api/v1/images', { name: 'compute', kernelSha256: sha(KERNEL), initrdSha256: sha(INITRD) })
  t.equal(missing.json().error.code, 'BLOB_NOT_FOUND')
  const img = await addImage(s, 'compute', '1')
  t.equal(img.statusCode, 201, img.body)
  t.equal((await s.call('HEAD', `/api/v1/blobs/${sha(KERNEL)}`)).statusCode, 200)
  t.equal((await addImage(s, 'compute', '1')).json().error.code, 'IMAGE_EXISTS')

  // nothing configured yet: the node reboots rather than drop to a shell
  let script = (await s.node.inject({ method: 'GET', url: '/boot/02-00-00-00-10-01' })).body
  t.match(script, /^#!ipxe/)
  t.match(script, /has no image to boot/)

  t.equal((await s.call('PUT', '/api/v1/boot', { scope: 'default', image: 'compute', params: 'quiet' })).statusCode, 200)
  t.equal((await s.call('PUT', '/api/v1/boot', { scope: 'group', target: 'compute', params: 'console=tty0' })).statusCode, 200)
  t.equal((await s.call('PUT', '/api/v1/boot', { scope: 'node', target: 'nid001', params: '-quiet loglevel=7' })).statusCode, 200)
  const bad = await s.call('PUT', '/api/v1/boot', { scope: 'node', target: 'nid001', params: 'initrd=evil.img' })
  t.equal(bad.json().error.code, 'BOOT_PARAMS_INVALID')
  t.equal((await s.call('PUT', '/api/v1/boot', { scope: 'default', image: 'nosuch' })).json().error.code, 'IMAGE_NOT_FOUND')

  script = (await s.node.inject({ method: 'GET', url: '/boot/02:00:00:00:10:01.ipxe' })).body
  t.match(script, new RegExp(`kernel --name vmlinuz ${PUBLIC}/images/${sha(KERNEL)}/vmlinuz `))
  t.match(script, new RegExp(`initrd --name initrd\\.img ${PUBLIC}/images/${sha(INITRD)}/initrd\\.img`))
  t.match(script, /console=ttyS0,115200 ip=dhcp rd\.neednet=1 console=tty0 loglevel=7/, 'image, group and node layers; -quiet removed quiet')
  t.notMatch(script, / quiet/)
  t.match(script, new RegExp(`netboot\\.server=${PUBLIC} netboot\\.node=nid001 netboot\\.image=compute@sha256:${sha(ROOTFS)}`))
  const shown = await s.call('GET', '/api/v1/nodes/nid001/boot')
  t.equal(shown.json().script, script, 'boot show prints exactly what the node gets')

  // images by digest, with HTTP semantics
  const k = await s.node.inject({ method: 'GET', url: `/images/${sha(KERNEL)}/vmlinuz` })
  t.equal(k.statusCode, 200)
  t.ok(k.rawPayload.equals(KERNEL))
  t.equal(k.headers.etag, `"${sha(KERNEL)}"`)
  const part = await s.node.inject({ method: 'GET', url: `/images/${sha(ROOTFS)}`, headers: { range: 'bytes=1000-1999' } })
  t.equal(part.statusCode, 206)
  t.ok(part.rawPayload.equals(ROOTFS.subarray(1000, 2000)))
  t.equal((await s.node.inject({ method: 'GET', url: `/images/${sha(ROOTFS)}`, headers: { 'if-none-match': `"${sha(ROOTFS)}"` } })).statusCode, 304)
  t.equal((await s.node.inject({ method: 'GET', url: '/images/../../etc/passwd' })).statusCode, 404)
  t.equal((await s.node.inject({ method: 'GET', url: `/images/${'0'.repeat(64)}` })).json().error.code, 'BLOB_NOT_FOUND')
  t.equal((await s.node.inject({ method: 'GET', url: '/images/nothex' })).json().error.code, 'IMAGE_DIGEST_INVALID')
  const ipxe = await s.node.inject({ method: 'GET', url: '/ipxe/ipxe.efi' })
  t.equal(ipxe.statusCode, 200, 'iPXE binaries over HTTP (UEFI HTTP boot)')
  t.equal((await s.node.inject({ method: 'GET', url: '/ipxe/..%2F..%2Fetc%2Fpasswd' })).statusCode, 404)
  t.equal((await s.node.inject({ method: 'GET', url: '/boot/not-a-mac' })).json().error.code, 'INVALID_MAC')

  // an image in use cannot be removed
  t.equal((await s.call('DELETE', '/api/v1/images/compute')).json().error.code, 'IMAGE_IN_USE')
  t.same((await s.store.listAudit({ action: 'boot' })).map((e) => e.action), ['boot.set', 'boot.set', 'boot.set'])
  t.ok((await s.store.listAudit({ action: 'image.add' })).length === 1)
})

t.test('unknown MACs: discovery image or reboot', async (t) => {
  const s = await setup(t, 'discovery')
  t.match((await s.node.inject({ method: 'GET', url: '/boot/02:00:00:00:99:99' })).body, /^#!ipxe[\s\S]*02:00:00:00:99:99 is not in the inventory[\s\S]*reboot/, 'no discovery image yet: the reboot script')
  await addImage(s, 'discovery')
  const d = (await s.node.inject({ method: 'GET', url: '/boot/02:00:00:00:99:99' })).body
  t.match(d, /is not enrolled; booting discovery image discovery@/)
  t.match(d, /netboot\.mode=discover/)
  t.notMatch(d, /netboot\.node=/)
})

t.test('boot scripts are cached per MAC until the configuration changes', async (t) => {
  const s = await setup(t)
  await addImage(s, 'compute', '1')
  await s.call('PUT', '/api/v1/boot', { scope: 'default', image: 'compute', params: 'loglevel=3' })
  const first = (await s.node.inject({ method: 'GET', url: '/boot/02:00:00:00:10:01' })).body
  t.equal((await s.node.inject({ method: 'GET', url: '/boot/02-00-00-00-10-01' })).body, first, 'the same script again')
  await s.call('PUT', '/api/v1/boot', { scope: 'node', target: 'nid001', params: 'debug' })
  const after = (await s.node.inject({ method: 'GET', url: '/boot/02:00:00:00:10:01' })).body
  t.match(after, /loglevel=3 debug/, 'a change is seen at once')
})
