/**
 * The TFTP server in its worker thread (server/tftp/worker-host.ts, worker.ts):
 * what crosses the thread boundary. Through startTftp (serve's wiring, from a
 * parsed configuration, on a real Prometheus registry) both modes must give the
 * same log lines and metrics; close() must leave no thread and no socket; new
 * virtual file bytes must reach the worker; a crashed worker is restarted, and
 * given up on after too many crashes. Real sockets on loopback, real threads.
 */
import dgram from 'node:dgram'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import pino from 'pino'
import { Registry } from 'prom-client'
import { parseConfig } from '../../server/config/load.js'
import { UDP_BUFFER_BYTES } from '../../server/net/socket-buffers.js'
import { encodeAck } from '../../server/tftp/codec.js'
import { AUTOEXEC_REFRESH_MS, startTftp } from '../../server/tftp/setup.js'
import { createTftpWorker, type TftpWorkerServer } from '../../server/tftp/worker-host.js'
import type { FailureReason } from '../../server/tftp/server.js'
import { fetchWithClient, LOOPBACK, memoryLogger, pseudoRandomBytes, ScriptedClient, sha256, tempDir, waitFor, writeFiles } from './helpers.js'

const FILE = pseudoRandomBytes(1468 * 7 + 11, 5)
const isRoot = process.getuid?.() === 0
const AUTOEXEC = '#!ipxe\nchain http://10.0.0.1/boot/${mac}\n'

async function root (t: Test): Promise<string> {
  const dir = await tempDir(t)
  await writeFiles(dir, { 'undionly.kpxe': FILE })
  return dir
}

/** serve's TFTP wiring from a parsed configuration, on loopback, port 0. */
async function viaSetup (t: Test, worker: boolean, autoexec: () => Buffer) {
  const dir = await root(t)
  const loaded = parseConfig(`tftp:\n  listen: ${LOOPBACK}\n  port: 0\n  ipxe_dir: ${dir}\n  worker: ${worker}\n`, 'worker.test')
  const { log, lines } = memoryLogger('info')
  const registry = new Registry()
  const server = await startTftp(loaded, autoexec, log, registry)
  t.teardown(() => server.close())
  const serving = lines.find((l) => l.msg === 'tftp: serving')
  return { server, port: serving?.port as number, lines, registry, dir }
}

const metricValues = async (registry: Registry): Promise<Record<string, number>> => {
  const out: Record<string, number> = {}
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values as Array<{ value: number, labels?: Record<string, unknown>, metricName?: string }>) {
      const name = v.metricName ?? m.name
      if (m.name === 'netboot_tftp_transfer_seconds' && !name.endsWith('_count')) continue
      const labels = Object.entries(v.labels ?? {}).map(([k, x]) => `${k}=${String(x)}`).join(',')
      out[`${name}{${labels}}`] = v.value
    }
  }
  return out
}

t.test('config default: tftp.worker is true', async (t) => {
  t.equal(parseConfig('{}\n', 'default').config.tftp.worker, true)
})

t.test('logs and metrics come through from the worker, as in-process', async (t) => {
  const seen: Record<string, { metrics: Record<string, number>, msgs: string[] }> = {}
  for (const worker of [false, true]) {
    await t.test(worker ? 'worker thread' : 'in-process', async (t) => {
      const { server, port, lines, registry } = await viaSetup(t, worker, () => Buffer.from(AUTOEXEC))
      t.ok(port > 0, 'serving on a port')
      t.equal(sha256((await fetchWithClient(port, 'undionly.kpxe', [{ name: 'blksize', value: '1468' }])).data), sha256(FILE), 'a file')
      t.equal((await fetchWithClient(port, 'autoexec.ipxe')).data.toString(), AUTOEXEC, 'the virtual file')
      await t.rejects(fetchWithClient(port, 'missing.bin'), /^ERROR 1: file not found/, 'not found')
      t.ok(await waitFor(() => lines.filter((l) => l.msg === 'tftp transfer done').length === 2 && lines.some((l) => l.msg === 'tftp request refused'), 5000), 'the lines arrive')
      const done = lines.find((l) => l.msg === 'tftp transfer done' && l.file === 'undionly.kpxe')
      t.match(done, { level: 30, component: 'tftp', bytes: FILE.length, blksize: 1468, peer: /^127\.0\.0\.1:\d+$/, ms: Number }, 'transfer line: fields and level as in-process')
      t.match(lines.find((l) => l.msg === 'tftp file refused'), { level: 30, component: 'tftp', file: 'missing.bin', reason: 'not-found' })
      const buffers = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('udp: tftp port'))
      t.ok(buffers, 'the socket buffer line')
      // forcing past net.core.rmem_max (native addon, SO_RCVBUFFORCE) works in the worker too: root gets the whole 4 MiB
      if (isRoot) t.match(buffers, { component: 'tftp', recv: UDP_BUFFER_BYTES, send: UDP_BUFFER_BYTES }, 'root: 4 MiB each way')
      else t.match(buffers, { component: 'tftp', recv: Number }, 'not root: what the kernel granted')
      if (worker) t.ok((server as TftpWorkerServer).threadId()! > 0, 'served from another thread')
      seen[worker ? 'worker' : 'in-process'] = { metrics: await metricValues(registry), msgs: lines.map((l) => String(l.msg).replace(/\d+/g, 'N')).sort() }
      t.match(seen[worker ? 'worker' : 'in-process']!.metrics, {
        'netboot_tftp_transfers_total{result=done}': 2,
        'netboot_tftp_refused_total{reason=not-found}': 1,
        'netboot_tftp_bytes_total{}': FILE.length + Buffer.byteLength(AUTOEXEC),
        'netboot_tftp_transfer_seconds_count{}': 2,
      })
    })
  }
  t.same(seen.worker?.metrics, seen['in-process']?.metrics, 'the same metrics in both modes')
  t.same(seen.worker?.msgs, seen['in-process']?.msgs, 'the same log lines in both modes')
})

t.test('close() ends the thread and every socket: the ports bind again', async (t) => {
  const dir = await root(t)
  const failed: FailureReason[] = []
  const server = createTftpWorker({ root: dir, address: LOOPBACK, port: 0, timeoutMs: 5000, log: pino({ level: 'silent' }), events: { onTransferFailed: (r) => failed.push(r) } })
  const { port } = await server.start()
  const id = server.threadId()
  t.ok(id !== undefined && id > 0, 'a thread runs')
  const c = await ScriptedClient.open()
  t.teardown(() => c.close())
  c.rrq(port, 'undionly.kpxe')
  const first = await c.next()
  t.match(first?.packet, { op: 'DATA', block: 1 })
  const transferPort = first!.from.port
  t.ok(await waitFor(() => server.activeTransfers() === 1), 'one transfer counted')
  await server.close()
  t.equal(server.threadId(), undefined, 'no thread')
  t.equal(server.activeTransfers(), 0)
  t.match((await c.next(1000))?.packet, { op: 'ERROR', code: 0 }, 'the running transfer was told')
  t.same(failed, ['shutdown'], 'its failure event arrived before close() resolved')
  for (const p of [port, transferPort]) {
    const s = dgram.createSocket('udp4')
    const bound = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false))
      s.bind({ address: LOOPBACK, port: p, exclusive: true }, () => resolve(true))
    })
    t.ok(bound, `port ${p} is free again`)
    s.close()
  }
  await server.close()
  t.pass('a second close() is harmless')
})

t.test('start() failures cross the boundary: port taken, unusable root', async (t) => {
  const dir = await root(t)
  const a = createTftpWorker({ root: dir, address: LOOPBACK, port: 0, log: pino({ level: 'silent' }) })
  const { port } = await a.start()
  t.teardown(() => a.close())
  const b = createTftpWorker({ root: dir, address: LOOPBACK, port, log: pino({ level: 'silent' }) })
  await t.rejects(b.start(), { code: 'EADDRINUSE' })
  t.equal(b.threadId(), undefined, 'its thread ended')
  await b.close()
  const c = createTftpWorker({ root: path.join(dir, 'nope'), address: LOOPBACK, port: 0, log: pino({ level: 'silent' }) })
  await t.rejects(c.start(), { code: 'CONFIG_INVALID', name: 'NetbootError' })
  t.throws(() => createTftpWorker({ root: dir, maxBlksize: 7, log: pino({ level: 'silent' }) }), { code: 'CONFIG_INVALID' }, 'bad options throw at once, in the calling thread')
})

t.test('a file change reaches the worker: virtual bytes by message, ipxe_dir from disk', async (t) => {
  const dir = await root(t)
  const server = createTftpWorker({ root: dir, address: LOOPBACK, port: 0, log: pino({ level: 'silent' }), virtualFiles: { 'autoexec.ipxe': Buffer.from('one\n') } })
  const { port } = await server.start()
  t.teardown(() => server.close())
  t.equal((await fetchWithClient(port, 'autoexec.ipxe')).data.toString(), 'one\n')
  server.setVirtualFile('autoexec.ipxe', Buffer.from('two, longer\n'))
  let got = ''
  for (let i = 0; i < 50 && got !== 'two, longer\n'; i++) got = (await fetchWithClient(port, 'autoexec.ipxe')).data.toString()
  t.equal(got, 'two, longer\n', 'the new bytes are served')
  t.throws(() => server.setVirtualFile('other.ipxe', Buffer.from('x')), /not a virtual file/, 'names are fixed at start')
  const changed = pseudoRandomBytes(3000, 99)
  await writeFile(path.join(dir, 'undionly.kpxe'), changed)
  t.equal(sha256((await fetchWithClient(port, 'undionly.kpxe')).data), sha256(changed), 'a changed file on disk is served as it is now')
})

t.test('serve wiring: a changed autoexec.ipxe reaches the worker within the refresh period', async (t) => {
  let text = '#!ipxe\necho first\n'
  const { port } = await viaSetup(t, true, () => Buffer.from(text))
  t.equal((await fetchWithClient(port, 'autoexec.ipxe')).data.toString(), text)
  text = '#!ipxe\necho second\n'
  const deadline = Date.now() + AUTOEXEC_REFRESH_MS * 3
  let got = ''
  while (got !== text && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    got = (await fetchWithClient(port, 'autoexec.ipxe')).data.toString()
  }
  t.equal(got, text, `served within ${AUTOEXEC_REFRESH_MS * 3} ms`)
})

t.test('a crashed worker is logged at error and restarted on its port; too many crashes and it stays down', async (t) => {
  const dir = await root(t)
  const { log, lines } = memoryLogger('info')
  const server = createTftpWorker({ root: dir, address: LOOPBACK, port: 0, log, restarts: { max: 2, windowMs: 60_000 } })
  const { port } = await server.start()
  t.teardown(() => server.close())
  const before = server.threadId()
  server.crashForTest('engine bug 1')
  t.ok(await waitFor(() => server.restartCount() === 1, 90_000), 'restarted')
  t.match(lines.find((l) => l.msg === 'tftp worker crashed'), { level: 50, err: 'engine bug 1' })
  t.match(lines.find((l) => l.msg === 'tftp worker restarted'), { level: 40, port, restarts: 1 })
  t.not(server.threadId(), before, 'a new thread')
  t.equal(sha256((await fetchWithClient(port, 'undionly.kpxe')).data), sha256(FILE), 'served again, same port')
  server.crashForTest('engine bug 2')
  t.ok(await waitFor(() => server.restartCount() === 2, 90_000), 'restarted again')
  server.crashForTest('engine bug 3')
  t.ok(await waitFor(() => lines.some((l) => l.msg === 'tftp worker crashed too often; not restarted: TFTP is not served'), 90_000), 'gave up')
  t.match(lines.find((l) => l.msg === 'tftp worker crashed too often; not restarted: TFTP is not served'), { level: 50, crashes: 3 })
  t.equal(server.threadId(), undefined, 'no thread')
  await t.rejects(fetchWithClient(port, 'undionly.kpxe', [], { silenceMs: 500 }), /silence after 0 DATA/, 'nothing answers')
  await server.close()
  t.pass('close() after giving up resolves')
})

t.test('a lost ACK in worker mode: the window is sent again from the worker', async (t) => {
  const dir = await root(t)
  const server = createTftpWorker({ root: dir, address: LOOPBACK, port: 0, timeoutMs: 200, log: pino({ level: 'silent' }) })
  const { port } = await server.start()
  t.teardown(() => server.close())
  const c = await ScriptedClient.open()
  t.teardown(() => c.close())
  c.rrq(port, 'undionly.kpxe')
  const d1 = await c.next()
  t.match(d1?.packet, { op: 'DATA', block: 1 })
  const again = await c.next(2000)
  t.match(again?.packet, { op: 'DATA', block: 1 }, 'block 1 again after the timeout')
  c.send(encodeAck(1), again!.from.port)
  t.match((await c.next())?.packet, { op: 'DATA', block: 2 })
})
