/**
 * The simulator's two TFTP clients (test/storm/tftp-client.ts): a BIOS node's PXE
 * ROM (lock-step) and a UEFI node's EDK2 (size probe, then RFC 7440 windowsize 4,
 * blksize 1468, an ACK per window). Against netboot's own TFTP server on loopback,
 * whose log shows what was asked; and against a scripted peer that loses a block,
 * to see EDK2's answer to a gap (the ACK of the last in-order block, at once).
 */
import dgram from 'node:dgram'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { EDK2_TFTP, PXE_ROM_TFTP, TFTP, decodePacket, tftpGet, type TftpGet } from './tftp-client.js'
import { memoryLogger, pseudoRandomBytes, startServer, tempDir, waitFor } from '../tftp/helpers.js'

const SIZE = 850_528 // Debian's ipxe.efi

t.test('UEFI (EDK2): size probe refused with ERROR 8, then the read with windowsize 4, one ACK per window', async (t) => {
  const root = await tempDir(t)
  const data = pseudoRandomBytes(SIZE, 9)
  await writeFile(path.join(root, 'ipxe.efi'), data)
  const { log, lines } = memoryLogger('info')
  const { port } = await startServer(t, { root, log })
  const r = await tftpGet({ server: '127.0.0.1', port, file: 'ipxe.efi', ...EDK2_TFTP, retries: 3, firstTimeoutMs: 1000, deadlineMs: 30_000, expect: data })
  const blocks = Math.floor(SIZE / 1468) + 1
  t.same([r.matched, r.bytes, r.blocks, r.windowsize, r.probedSize], [true, SIZE, blocks, 4, SIZE])
  t.equal(r.acks, 1 + Math.floor((blocks - 1) / 4) + 1, `ACK 0, one per 4 blocks, the last (${r.acks} for ${blocks} blocks)`)
  const started = lines.filter((l) => l.msg === 'tftp transfer started').map((l) => l.requested)
  t.same(started, [{ tsize: '0', blksize: '1468', windowsize: '4' }, { blksize: '1468', windowsize: '4' }], 'the two requests OVMF makes')
  t.ok(lines.some((l) => l.msg === 'tftp transfer failed' && /ERROR 8: User aborted the transfer/.test(String(l.message))), 'the probe ended by the client with ERROR 8')
  t.ok(await waitFor(() => lines.some((l) => l.msg === 'tftp transfer done' && l.bytes === SIZE && l.windowsize === 4)), 'the read done in windows of 4')
})

t.test('BIOS (PXE ROM): one request with tsize, lock-step', async (t) => {
  const root = await tempDir(t)
  const data = pseudoRandomBytes(70_000, 3)
  await writeFile(path.join(root, 'undionly.kpxe'), data)
  const { log, lines } = memoryLogger('info')
  const { port } = await startServer(t, { root, log })
  const r = await tftpGet({ server: '127.0.0.1', port, file: 'undionly.kpxe', ...PXE_ROM_TFTP, deadlineMs: 30_000, expect: data })
  const blocks = Math.floor(70_000 / 1432) + 1
  t.same([r.matched, r.blocks, r.windowsize, r.acks, r.probedSize], [true, blocks, 1, blocks + 1, undefined])
  t.same(lines.filter((l) => l.msg === 'tftp transfer started').map((l) => l.requested), [{ blksize: '1432', tsize: '0' }])
})

t.test('EDK2 refuses an OACK with a larger window than asked; a wrong tsize fails the probe', async (t) => {
  const peer = await scripted(t, (rrq, reply) => { if (rrq.options.tsize !== undefined) reply(oack({ tsize: '10', blksize: '1468', windowsize: '8' })) })
  const e = await tftpGet({ ...base(peer.port), expect: Buffer.alloc(10) }).then(() => null, (x: unknown) => x as { code?: string })
  t.equal(e?.code, 'TFTP_OACK')
  const peer2 = await scripted(t, (rrq, reply) => { if (rrq.options.tsize !== undefined) reply(oack({ tsize: '11', blksize: '1468', windowsize: '4' })) })
  const e2 = await tftpGet({ ...base(peer2.port), expect: Buffer.alloc(10) }).then(() => null, (x: unknown) => x as { code?: string })
  t.equal(e2?.code, 'TFTP_TSIZE')
})

t.test('EDK2 answers a gap in a window with the ACK of the last in-order block, and the server resends from there', async (t) => {
  const blk = 1468
  const data = pseudoRandomBytes(blk * 9 + 100, 5) // 10 blocks
  const blockOf = (n: number): Buffer => Buffer.concat([Buffer.from([0, TFTP.DATA, n >> 8, n & 0xff]), data.subarray((n - 1) * blk, n * blk)])
  const acks: number[] = []
  let dropped = false
  const answered = new Set<number>()
  const peer = await scripted(t, (rrq, reply) => {
    if (rrq.options.tsize !== undefined) { reply(oack({ tsize: String(data.length), blksize: String(blk), windowsize: '4' })); return }
    reply(oack({ blksize: String(blk), windowsize: '4' }))
  }, (ack, reply) => {
    acks.push(ack)
    // as a server does (RFC 7440 §4): a duplicate ACK is not answered with the window again
    if (answered.has(ack)) return
    answered.add(ack)
    // a window of 4 after each ACK; block 6 is lost once
    for (let n = ack + 1; n <= Math.min(ack + 4, 10); n++) {
      if (n === 6 && !dropped) { dropped = true; continue }
      reply(blockOf(n))
    }
  })
  const r = await tftpGet({ ...base(peer.port), expect: data })
  t.same([r.matched, r.blocks, r.retransmits], [true, 10, 0], 'no timeout: the gap was repaired by the ACK')
  // ACK 0; ACK 4 (window 1-4); blocks 5, 7, 8 → ACK 5 at once on 7, again on 8; then 6-9 → ACK 9; 10 (last) → ACK 10
  await waitFor(() => acks.length >= 6)
  t.same(acks, [0, 4, 5, 5, 9, 10])
})

function base (port: number): TftpGet {
  return { server: '127.0.0.1', port, file: 'ipxe.efi', ...EDK2_TFTP, retries: 2, firstTimeoutMs: 500, deadlineMs: 10_000 }
}

function oack (o: Record<string, string>): Buffer {
  return Buffer.concat([Buffer.from([0, TFTP.OACK]), ...Object.entries(o).map(([k, v]) => Buffer.from(`${k}\0${v}\0`, 'latin1'))])
}

/**
 * A scripted TFTP peer on loopback: RRQs on its listening port are answered from
 * a per-request socket (a new TID, RFC 1350 §4) by `onRrq`; ACKs there go to `onAck`.
 */
async function scripted (t: Test, onRrq: (rrq: { file: string; options: Record<string, string> }, reply: (b: Buffer) => void) => void, onAck: (block: number, reply: (b: Buffer) => void) => void = () => {}): Promise<{ port: number }> {
  const open = async (): Promise<dgram.Socket> => {
    const s = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
    t.teardown(() => { try { s.close() } catch { /* closed */ } })
    return s
  }
  const listen = await open()
  listen.on('message', (msg, rinfo) => {
    if (msg.readUInt16BE(0) !== TFTP.RRQ) return
    const f = msg.subarray(2).toString('latin1').split('\0')
    const options: Record<string, string> = {}
    for (let i = 2; i + 1 < f.length; i += 2) if (f[i] !== '') options[f[i]!] = f[i + 1]!
    void open().then((tid) => {
      const reply = (b: Buffer): void => { tid.send(b, rinfo.port, rinfo.address) }
      tid.on('message', (m) => { const p = decodePacket(m); if (m.readUInt16BE(0) === TFTP.ACK) onAck(m.readUInt16BE(2), reply); else if (p.op === 'error') tid.close() })
      onRrq({ file: f[0]!, options }, reply)
    })
  })
  return { port: (listen.address()).port }
}
