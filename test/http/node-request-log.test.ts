/**
 * Request log lines on the node server: the hot routes (attestation, health,
 * JWKS) log their fastify request lines only at debug; the boot timeline routes
 * (/boot/, /images/, /ipxe/) keep 'incoming request' and 'request completed' at
 * info, because test/e2e/timeline.ts builds a machine's boot from them.
 */
import { Writable } from 'node:stream'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { buildNodeApp, quietRequestLog } from '../../server/http/node/app.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { BlobStore } from '../../server/images/blobs.js'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import { tempDir } from '../helpers/tmp.js'

const system = { kind: 'system' as const, id: 'test' }

async function setup (t: Test, level: 'info' | 'debug') {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  const blobs = new BlobStore(join(dir, 'images'))
  await blobs.init()
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>); cb() } })
  const log = pino({ level }, sink)
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: 'http://10.0.0.1:8080', unknown: { action: 'reboot' } }, log)
  const node = await buildNodeApp({ store, log, metrics: createMetrics({ processMetrics: false }), bodyLimit: 1 << 20, boot: { boot, blobs, ipxeDir: '/usr/lib/ipxe' } })
  t.teardown(async () => { await node.close(); await store.close() })
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: '02:00:00:00:10:01', ip: '10.0.0.11' }] }, system)
  const requestLines = (url: string): string[] => lines
    .filter((l) => l.msg === 'incoming request' ? (l.req as { url?: string }).url === url : false)
    .map((l) => String(l.msg))
  const completed = (): number => lines.filter((l) => l.msg === 'request completed').length
  return { node, lines, requestLines, completed }
}

t.test('quiet routes', async (t) => {
  for (const u of ['/attest/v1/start', '/attest/v1/finish', '/healthz', '/.well-known/jwks.json']) t.ok(quietRequestLog(u), u)
  for (const u of ['/boot/02:00:00:00:10:01', '/images/00/rootfs.squashfs', '/ipxe/ipxe.efi', '/cloud-init/nid001/user-data', '/healthzz']) t.notOk(quietRequestLog(u), u)
})

t.test('at info: no request lines for /healthz, both for /boot/<mac>', async (t) => {
  const s = await setup(t, 'info')
  t.equal((await s.node.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(s.requestLines('/healthz'), [], 'no incoming request line for /healthz')
  t.equal(s.completed(), 0, 'no request completed line')

  const r = await s.node.inject({ method: 'GET', url: '/boot/02:00:00:00:10:01', remoteAddress: '10.0.0.11' })
  t.equal(r.statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(s.requestLines('/boot/02:00:00:00:10:01'), ['incoming request'], 'the timeline sees the boot script request')
  t.equal(s.completed(), 1, 'and its status')
  // nid001 has no image: a reboot script, logged at info with the node
  t.ok(s.lines.some((l) => l.msg === 'boot: script served' && l.node === 'nid001' && l.kind === 'reboot'))
})

t.test('at debug: every request is logged', async (t) => {
  const s = await setup(t, 'debug')
  t.equal((await s.node.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(s.requestLines('/healthz'), ['incoming request'])
  t.equal(s.completed(), 1)
})
