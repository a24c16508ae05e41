/** The socket server driven by a scripted node:dgram client on loopback. */

import path from 'node:path'
import { writeFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import { NetbootError } from '../../server/errors.js'
import { encodeAck, encodeError, encodeRequest, netasciiEncode, type DataPacket } from '../../server/tftp/codec.js'
import { createTftpServer, type FailureReason, type RefusalReason, type TftpServer, type TftpServerOptions } from '../../server/tftp/server.js'
import { createTftpWorker } from '../../server/tftp/worker-host.js'
import { fetchWithClient, memoryLogger, MODES, waitFor, pseudoRandomBytes, ScriptedClient, sha256, startServer, tempDir, writeFiles } from './helpers.js'
import pino from 'pino'

const FILE = pseudoRandomBytes(512 * 20 + 100, 42) // 21 blocks at 512

async function setup(t: Test, opts: Partial<Omit<TftpServerOptions, 'root'>> & { worker?: boolean } = {}) {
  const root = await tempDir(t)
  await writeFiles(root, { 'f.bin': FILE, 'empty': Buffer.alloc(0), 'text.txt': 'line one\nline two\r\nend' })
  const refused: RefusalReason[] = []
  const failed: FailureReason[] = []
  const done: Array<[number, number]> = []
  let started = 0
  const { server, port } = await startServer(t, {
    root,
    events: {
      onTransferStart: () => started++,
      onTransferDone: (bytes, ms) => done.push([bytes, ms]),
      onTransferFailed: (reason) => failed.push(reason),
      onRequestRefused: (reason) => refused.push(reason),
    },
    ...opts,
  })
  return { root, server, port, refused, failed, done, started: () => started }
}

async function client(t: Test): Promise<ScriptedClient> {
  const c = await ScriptedClient.open()
  t.teardown(() => c.close())
  return c
}

const isData = (p: unknown): p is DataPacket => (p as { op?: string } | null)?.op === 'DATA'

/** The engine in-process or in its worker thread, for the tests that build the server themselves. */
const creator = (worker: boolean) => (o: Omit<TftpServerOptions, 'virtualFiles'>): TftpServer => (worker ? createTftpWorker(o) : createTftpServer(o))

for (const mode of MODES) {
  const create = creator(mode.worker)
  t.test(mode.name, async (t) => {
    t.test('download with options; OACK carries tsize, clamped blksize, windowsize', async (t) => {
      const { port, done, started } = await setup(t, { worker: mode.worker })
      const r = await fetchWithClient(port, '/f.bin', [
        { name: 'tsize', value: '0' },
        { name: 'blksize', value: '9000' },
        { name: 'windowsize', value: '100' },
        { name: 'x-unknown', value: '1' },
      ])
      t.equal(sha256(r.data), sha256(FILE))
      t.same(r.oack, [
        { name: 'tsize', value: String(FILE.length) },
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '64' },
      ])
      t.equal(started(), 1)
      await waitFor(() => done.length === 1)
      t.equal(done[0]?.[0], FILE.length)
    })

    t.test('plain RFC 1350 download, empty file, netascii', async (t) => {
      const { port } = await setup(t, { worker: mode.worker })
      t.equal(sha256((await fetchWithClient(port, 'f.bin')).data), sha256(FILE))
      t.equal((await fetchWithClient(port, 'empty')).data.length, 0)
      const c = await client(t)
      c.rrq(port, 'text.txt', [], 'NETASCII')
      const r = await c.next()
      t.ok(isData(r?.packet))
      if (isData(r?.packet)) t.same(r.packet.data, netasciiEncode(Buffer.from('line one\nline two\r\nend')))
      c.send(encodeAck(1), r!.from.port)
    })

    t.test('refusals: WRQ, not found, traversal, mail mode', async (t) => {
      const { root, port, refused } = await setup(t, { worker: mode.worker })
      const c = await client(t)
      const ask = async (buf: Buffer): Promise<unknown> => {
        c.send(buf, port)
        const r = await c.next()
        t.equal(r?.from.port, port, 'refusals come from the server port')
        return r?.packet
      }
      t.same(await ask(encodeRequest({ op: 'WRQ', filename: 'f.bin', mode: 'octet', options: [] })), {
        op: 'ERROR',
        code: 2,
        message: 'read-only server',
      })
      t.match(await ask(encodeRequest({ op: 'RRQ', filename: 'nope', mode: 'octet', options: [] })), { op: 'ERROR', code: 1 })
      t.match(await ask(encodeRequest({ op: 'RRQ', filename: '../etc/passwd', mode: 'octet', options: [] })), { op: 'ERROR', code: 2 })
      t.match(await ask(encodeRequest({ op: 'RRQ', filename: '//etc/passwd', mode: 'octet', options: [] })), { op: 'ERROR', code: 2 })
      t.match(await ask(encodeRequest({ op: 'RRQ', filename: '/etc/passwd', mode: 'octet', options: [] })), { op: 'ERROR', code: 1 })
      t.match(await ask(encodeRequest({ op: 'RRQ', filename: 'f.bin', mode: 'mail', options: [] })), { op: 'ERROR', code: 4 })
      t.match(await ask(encodeRequest({ op: 'RRQ', filename: 'f.bin', mode: 'image', options: [] })), { op: 'ERROR', code: 4 })
      // in worker mode the hooks run a turn of the worker's loop after the reply left
      t.ok(await waitFor(() => refused.length === 7), 'seven refusal events')
      t.same(refused, ['write-request', 'not-found', 'traversal', 'traversal', 'not-found', 'unsupported-mode', 'unsupported-mode'])
      t.ok(root)
    })

    t.test('malformed datagrams are dropped with a log line naming the peer', async (t) => {
      const { log, lines } = memoryLogger()
      const { port, refused } = await setup(t, { worker: mode.worker, log })
      const c = await client(t)
      c.send(Buffer.from([0, 1, 0x66]), port) // unterminated filename
      c.send(Buffer.from([0, 9]), port)
      t.same(await c.drain(150), [], 'no reply to malformed requests')
      const drops = lines.filter((l) => l.msg === 'tftp malformed packet dropped')
      t.equal(drops.length, 2)
      t.equal(drops[0]!.peer, `127.0.0.1:${c.port}`)
      t.equal(drops[0]!.code, 'unterminated-field')
      t.equal(drops[1]!.code, 'unknown-opcode')
      t.same(refused, ['malformed', 'malformed'])
      t.equal(sha256((await fetchWithClient(port, 'f.bin')).data), sha256(FILE), 'still serving')
    })

    t.test('a packet from a wrong TID gets ERROR 5 and the transfer goes on (RFC 1350 §4)', async (t) => {
      const { port, done } = await setup(t, { worker: mode.worker, timeoutMs: 2000 })
      const c = await client(t)
      const intruder = await client(t)
      c.rrq(port, 'f.bin')
      const first = await c.next()
      t.ok(isData(first?.packet))
      const tid = first!.from.port
      t.not(tid, port, 'data comes from a fresh port')
      intruder.send(encodeAck(1), tid)
      const reply = await intruder.next()
      t.same(reply?.packet, { op: 'ERROR', code: 5, message: 'unknown transfer ID' })
      t.equal(reply?.from.port, tid)
      // The genuine client finishes the download.
      const chunks = [(first!.packet as DataPacket).data]
      c.send(encodeAck(1), tid)
      for (let block = 2; block < 100; block++) {
        const r = await c.next()
        if (!isData(r?.packet)) throw new Error('expected DATA')
        t.equal(r.packet.block, block)
        chunks.push(r.packet.data)
        c.send(encodeAck(block), tid)
        if (r.packet.data.length < 512) break
      }
      t.equal(sha256(Buffer.concat(chunks)), sha256(FILE))
      await c.drain(50)
      t.equal(done.length, 1)
    })

    t.test('lost ACKs force retransmission; duplicate ACKs never resend a window', async (t) => {
      const { port, done } = await setup(t, { worker: mode.worker, timeoutMs: 800 })
      const c = await client(t)
      c.rrq(port, 'f.bin', [{ name: 'windowsize', value: '4' }])
      const oack = await c.next()
      t.same(oack?.packet, { op: 'OACK', options: [{ name: 'windowsize', value: '4' }] })
      const tid = oack!.from.port
      // Our first ACK 0 is "lost": the OACK must come again after the timeout.
      const again = await c.next(3000)
      t.same(again?.packet, oack?.packet, 'OACK retransmitted')
      c.send(encodeAck(0), tid)
      const w1 = await c.take(4)
      t.same(w1.map((r) => (r.packet as DataPacket).block), [1, 2, 3, 4])
      // The ACK of the first window is "lost" too: the window is resent as a whole.
      const w1again = await c.take(4, 3000)
      t.same(w1again.map((r) => (r.packet as DataPacket).block), [1, 2, 3, 4], 'window resent from last acked + 1')
      c.send(encodeAck(4), tid)
      const w2 = await c.take(4)
      t.same(w2.map((r) => (r.packet as DataPacket).block), [5, 6, 7, 8])
      // Duplicates of ACK 4 and a stale ACK 2 arrive late: nothing may be sent for them.
      c.send(encodeAck(4), tid)
      c.send(encodeAck(4), tid)
      c.send(encodeAck(2), tid)
      t.same(await c.drain(150), [], 'no packets for duplicate or stale ACKs')
      // Partial window: block 7 "lost", receiver acknowledges 6 → continue from 7.
      c.send(encodeAck(6), tid)
      const w3 = await c.take(4)
      t.same(w3.map((r) => (r.packet as DataPacket).block), [7, 8, 9, 10])
      const data: Buffer[] = [...w1, ...w2.slice(0, 2), ...w3].map((r) => (r.packet as DataPacket).data)
      let acked = 10
      for (let i = 0; i < 20 && acked < 21; i++) {
        c.send(encodeAck(acked), tid)
        const w = await c.take(Math.min(4, 21 - acked))
        for (const r of w) data.push((r.packet as DataPacket).data)
        acked = (w.at(-1)!.packet as DataPacket).block
      }
      c.send(encodeAck(21), tid)
      t.equal(sha256(Buffer.concat(data)), sha256(FILE))
      t.ok(await waitFor(() => done.length === 1))
    })

    t.test('a silent client fails the transfer after bounded retries', async (t) => {
      const { log, lines } = memoryLogger()
      const { port, failed, server } = await setup(t, { worker: mode.worker, timeoutMs: 40, retries: 2, log })
      const c = await client(t)
      c.rrq(port, 'f.bin')
      const got = [...(await c.take(4, 3000)), ...(await c.drain(100))]
      t.same(
        got.map((r) => r.packet?.op),
        ['DATA', 'DATA', 'DATA', 'ERROR'],
        'first send, two retransmissions, then ERROR',
      )
      t.same(failed, ['timeout'])
      t.equal(server.activeTransfers(), 0)
      const end = lines.find((l) => l.msg === 'tftp transfer failed')
      t.match(end, { peer: `127.0.0.1:${c.port}`, file: 'f.bin', reason: 'timeout' })
    })

    t.test('ERROR from the client mid-transfer ends it', async (t) => {
      const { port, failed, server } = await setup(t, { worker: mode.worker })
      const c = await client(t)
      c.rrq(port, 'f.bin')
      const r = await c.next()
      c.send(encodeError(0, 'user abort'), r!.from.port)
      await c.drain(100)
      t.same(failed, ['peer-error'])
      t.equal(server.activeTransfers(), 0)
    })

    t.test('a repeated RRQ from the same port does not start a second transfer', async (t) => {
      const { port, started } = await setup(t, { worker: mode.worker, timeoutMs: 2000 })
      const c = await client(t)
      c.rrq(port, 'f.bin')
      c.rrq(port, 'f.bin')
      const got = await c.drain(200)
      t.equal(got.length, 1)
      t.equal(started(), 1)
    })

    t.test('a different RRQ from the same port replaces the running transfer silently (PXE tsize probe)', async (t) => {
      const { port, failed, done, started } = await setup(t, { worker: mode.worker, timeoutMs: 2000 })
      const c = await client(t)
      await c.rrq(port, 'f.bin', [{ name: 'tsize', value: '0' }])
      const probe = await c.next()
      t.same(probe?.packet, { op: 'OACK', options: [{ name: 'tsize', value: String(FILE.length) }] })
      // The ROM got its size and asks again, from the same port, without aborting first.
      await c.rrq(port, 'f.bin', [{ name: 'blksize', value: '1024' }])
      const second = await c.next()
      t.same(second?.packet, { op: 'OACK', options: [{ name: 'blksize', value: '1024' }] })
      t.not(second?.from.port, probe?.from.port, 'a new TID')
      t.ok(await waitFor(() => failed.length === 1))
      t.same(failed, ['superseded'])
      const tid = second!.from.port
      const chunks: Buffer[] = []
      await c.send(encodeAck(0), tid)
      for (let block = 1; block < 20; block++) {
        const r = await c.next()
        if (!isData(r?.packet)) throw new Error(`expected DATA, got ${JSON.stringify(r?.packet)}`)
        t.equal(r.from.port, tid, 'nothing from the superseded TID')
        chunks.push(r.packet.data)
        await c.send(encodeAck(block), tid)
        if (r.packet.data.length < 1024) break
      }
      t.equal(sha256(Buffer.concat(chunks)), sha256(FILE))
      t.ok(await waitFor(() => done.length === 1))
      t.equal(started(), 2)
      // An identical request while the peer is still acknowledging is a late copy: dropped, the transfer goes on.
      await c.rrq(port, 'f.bin')
      const a = await c.next()
      await c.send(encodeAck(1), a!.from.port)
      const data2 = await c.next()
      t.match(data2?.packet, { op: 'DATA', block: 2 })
      await c.rrq(port, 'f.bin')
      const late = await c.drain(300)
      t.same(late, [], 'a late copy of the running request starts nothing')
      t.equal(failed.length, 1, 'and ends nothing')
      // Once the peer stopped acknowledging (the server retransmitted), an identical request means it restarted.
      const again = await c.next(5000)
      t.match(again?.packet, { op: 'DATA', block: 2 }, 'the server retransmits the unacknowledged window')
      t.equal(again?.from.port, a?.from.port)
      await c.rrq(port, 'f.bin')
      const b = await c.next()
      t.match(b?.packet, { op: 'DATA', block: 1 })
      t.not(b?.from.port, a?.from.port)
      t.ok(await waitFor(() => failed.length === 2))
      t.same(failed, ['superseded', 'superseded'])
    })

    t.test('over maxTransfers with no queue: the RRQ is dropped unanswered, logged; the retransmitted RRQ is served once a slot frees', async (t) => {
      const { log, lines } = memoryLogger()
      const { port, refused, server } = await setup(t, { worker: mode.worker, maxTransfers: 1, maxQueued: 0, timeoutMs: 5000, log })
      const a = await client(t)
      const b = await client(t)
      a.rrq(port, 'f.bin')
      const first = await a.next()
      t.ok(isData(first?.packet))
      t.ok(await waitFor(() => server.activeTransfers() === 1), 'one transfer runs')
      b.rrq(port, 'f.bin')
      t.equal(await b.next(500), null, 'no answer at all: an ERROR would end the client\'s boot (RFC 1350 §7)')
      t.same(refused, ['too-many-transfers'])
      t.match(
        lines.find((l) => l.msg === 'tftp request dropped: at capacity, the client will retransmit'),
        { level: 40, reason: 'too-many-transfers', peer: `127.0.0.1:${b.port}`, maxTransfers: 1 },
      )
      await a.send(encodeError(0, 'done'), first!.from.port)
      t.ok(await waitFor(() => server.activeTransfers() === 0), 'the slot frees')
      b.rrq(port, 'f.bin')
      t.ok(isData((await b.next())?.packet), 'the retransmitted RRQ starts the transfer')
    })

    t.test('close() aborts running transfers with ERROR and releases everything', async (t) => {
      const root = await tempDir(t)
      await writeFile(path.join(root, 'f.bin'), FILE)
      const failed: FailureReason[] = []
      const server = create({
        root,
        address: '127.0.0.1',
        port: 0,
        timeoutMs: 5000,
        log: pino({ level: 'silent' }),
        events: { onTransferFailed: (r) => failed.push(r) },
      })
      const { port } = await server.start()
      const c = await client(t)
      c.rrq(port, 'f.bin')
      t.ok(isData((await c.next())?.packet))
      await server.close()
      t.equal(server.activeTransfers(), 0)
      t.match((await c.next(500))?.packet, { op: 'ERROR', code: 0 })
      t.same(failed, ['shutdown'])
      await server.close()
    })

    t.test('transfer start/end log lines carry peer, file, options, bytes, duration', async (t) => {
      const { log, lines } = memoryLogger('info')
      const { port } = await setup(t, { worker: mode.worker, log })
      await fetchWithClient(port, 'f.bin', [{ name: 'blksize', value: '1024' }])
      await waitFor(() => lines.some((l) => l.msg === 'tftp transfer done'))
      const start = lines.find((l) => l.msg === 'tftp transfer started')
      const end = lines.find((l) => l.msg === 'tftp transfer done')
      t.match(start, { file: 'f.bin', peer: /^127\.0\.0\.1:\d+$/, options: { blksize: '1024' }, blksize: 1024, mode: 'octet' })
      t.match(end, { file: 'f.bin', bytes: FILE.length, ms: Number, peer: /^127\.0\.0\.1:\d+$/ })
    })

    t.test('a throwing event hook is logged and ignored', async (t) => {
      const { port } = await setup(t, { worker: mode.worker,
        events: {
          onTransferStart: () => {
            throw new Error('metrics broke')
          },
        },
      })
      t.equal(sha256((await fetchWithClient(port, 'f.bin')).data), sha256(FILE))
    })

    t.test('virtual files are served', async (t) => {
      const { port } = await setup(t, { worker: mode.worker, virtualFiles: { 'autoexec.ipxe': (c) => Buffer.from(`#!ipxe\n# for ${c.peer.address}\n`) } })
      t.equal((await fetchWithClient(port, 'autoexec.ipxe')).data.toString(), '#!ipxe\n# for 127.0.0.1\n')
    })

    t.test('start() rejects when the port is taken', async (t) => {
      const { root, port } = await setup(t, { worker: mode.worker })
      const s = create({ root, address: '127.0.0.1', port, log: pino({ level: 'silent' }) })
      await t.rejects(s.start(), { code: 'EADDRINUSE' })
      await s.close()
    })

    t.test('bad configuration fails loudly, naming the key', async (t) => {
      const log = pino({ level: 'silent' })
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ maxBlksize: 7 }, 'tftp.maxBlksize'],
        [{ maxWindowsize: 0 }, 'tftp.maxWindowsize'],
        [{ port: 70000 }, 'tftp.port'],
        [{ address: 'localhost' }, 'tftp.address'],
        [{ timeoutMs: 0 }, 'tftp.timeoutMs'],
        [{ retries: -1 }, 'tftp.retries'],
        [{ maxTransfers: 0 }, 'tftp.maxTransfers'],
      ]
      for (const [opts, where] of bad) {
        try {
          create({ root: '/tmp', log, ...opts })
          t.fail(`accepted ${where}`)
        } catch (e) {
          t.ok(e instanceof NetbootError && e.code === 'CONFIG_INVALID' && e.details[0]?.where === where, where)
        }
      }
      const s = create({ root: '/nonexistent/tftp/root', address: '127.0.0.1', port: 0, log })
      await t.rejects(s.start(), { code: 'CONFIG_INVALID' })
    })
  })
}
