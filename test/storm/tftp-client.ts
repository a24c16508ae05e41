/**
 * TFTP read as a PXE ROM does it: RRQ with blksize 1432 and tsize (RFC 2348,
 * RFC 2349), OACK acknowledged with ACK 0 (RFC 2347), then lock-step: one ACK per
 * DATA block, no windowsize (RFC 7440 is not in PXE ROMs), the transfer ends on
 * the first block shorter than blksize (RFC 1350 §6).
 *
 * Retransmission: the last packet sent (RRQ or ACK) again after a timeout that
 * starts at 1 s and doubles, at most `retries` times, like the PXE ROMs we boot in
 * QEMU (iPXE's core/retry.c also doubles from a small minimum). A duplicate DATA
 * block is acknowledged again and otherwise ignored (RFC 1123 §4.2.3.1: only the
 * sender must not answer duplicates). Every transfer is bounded in time.
 *
 * Checking the bytes: with `expect` (the file's bytes, verified once against its
 * digest by the caller) every block is compared with the same range of it as it
 * arrives, a memcmp instead of SHA-256 per byte; without, the bytes are hashed.
 * Either way every byte this node received is checked.
 */
import { createHash } from 'node:crypto'
import dgram from 'node:dgram'
import net from 'node:net'

/**
 * Every destination here is an IP literal; dgram would pass each one through
 * dns.lookup (option handling and a nextTick per datagram) otherwise.
 */
export const literalLookup: NonNullable<dgram.SocketOptions['lookup']> = (hostname, options, callback) => {
  const family = net.isIP(hostname)
  if (family === 0) throw new Error(`the simulator sends to IP literals only, not ${hostname}`)
  callback(null, hostname, family)
}

export const TFTP = { RRQ: 1, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const

/** RRQ `file` octet with options, as a pure encoding. */
export function encodeRrq (file: string, options: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, TFTP.RRQ]), Buffer.from(`${file}\0octet\0`, 'latin1')]
  for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'))
  return Buffer.concat(parts)
}

export function encodeAck (block: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt16BE(TFTP.ACK, 0)
  b.writeUInt16BE(block & 0xffff, 2)
  return b
}

export type TftpPacket =
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'oack'; options: Record<string, string> }
  | { op: 'error'; code: number; message: string }
  | { op: 'other'; why: string }

export function decodePacket (b: Buffer): TftpPacket {
  if (b.length < 4) return { op: 'other', why: `short packet (${b.length} bytes)` }
  const op = b.readUInt16BE(0)
  if (op === TFTP.DATA) return { op: 'data', block: b.readUInt16BE(2), data: b.subarray(4) }
  if (op === TFTP.ERROR) return { op: 'error', code: b.readUInt16BE(2), message: b.subarray(4).toString('latin1').replace(/\0.*$/s, '') }
  if (op === TFTP.OACK) {
    const f = b.subarray(2).toString('latin1').split('\0')
    const options: Record<string, string> = {}
    for (let i = 0; i + 1 < f.length; i += 2) if (f[i] !== '') options[f[i]!.toLowerCase()] = f[i + 1]!
    return { op: 'oack', options }
  }
  return { op: 'other', why: `opcode ${op}` }
}

export interface TftpGet {
  server: string
  port: number
  file: string
  blksize: number
  /** retransmissions allowed per packet before the transfer fails */
  retries: number
  firstTimeoutMs: number
  /** the whole transfer, ms */
  deadlineMs: number
  /** the file's verified bytes: each block is compared with them (TFTP_MISMATCH on a difference) instead of hashed */
  expect?: Buffer
}

/** `sha256` of the received bytes when no `expect` was given; with one, `matched` (always true: a mismatch fails). */
export interface TftpResult { bytes: number; sha256?: string; matched?: true; blocks: number; retransmits: number }

export class TftpFailure extends Error {
  constructor (readonly code: string, message: string, readonly retransmits: number) { super(message) }
}

/** One read, on its own socket (its own TID, RFC 1350 §4). */
export async function tftpGet (g: TftpGet): Promise<TftpResult> {
  const sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup })
  await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(0, () => { sock.off('error', reject); resolve() }) })
  const expect = g.expect
  const hash = expect === undefined ? createHash('sha256') : undefined
  let bytes = 0
  let blocks = 0
  let retransmits = 0
  let want = 1
  let blksize = 512
  let peerPort: number | undefined
  let last = encodeRrq(g.file, { blksize: String(g.blksize), tsize: '0' })
  let lastTo = g.port
  let tries = 0
  let timer: NodeJS.Timeout | undefined
  let armedMs = -1
  const started = Date.now()
  try {
    return await new Promise<TftpResult>((resolve, reject) => {
      const fail = (code: string, why: string): void => reject(new TftpFailure(code, `${g.file}: ${why}`, retransmits))
      const onTimeout = (): void => {
        timer = undefined
        if (tries >= g.retries) { fail('TFTP_TIMEOUT', `no answer after ${tries} retransmissions (block ${want})`); return }
        if (Date.now() - started > g.deadlineMs) { fail('TFTP_DEADLINE', `not done within ${g.deadlineMs} ms`); return }
        tries++
        retransmits++
        sock.send(last, lastTo, g.server)
        arm()
      }
      // one timer per transfer, re-armed with refresh() while its delay is unchanged (every block in lock-step)
      const arm = (): void => {
        const ms = g.firstTimeoutMs * 2 ** tries
        if (timer !== undefined && ms === armedMs) { timer.refresh(); return }
        clearTimeout(timer)
        timer = setTimeout(onTimeout, ms)
        armedMs = ms
      }
      const send = (b: Buffer, port: number): void => { last = b; lastTo = port; tries = 0; sock.send(b, port, g.server); arm() }
      sock.on('error', (e) => fail('TFTP_SOCKET', e.message))
      sock.on('message', (msg, rinfo) => {
        if (rinfo.address !== g.server) return
        if (peerPort === undefined) peerPort = rinfo.port
        else if (rinfo.port !== peerPort) return // another TID (RFC 1350 §4): not ours
        const p = decodePacket(msg)
        if (p.op === 'error') { fail('TFTP_ERROR', `server error ${p.code}: ${p.message}`); return }
        if (p.op === 'oack') {
          if (want !== 1) return
          const bs = Number(p.options.blksize ?? 512)
          if (!Number.isInteger(bs) || bs < 8 || bs > g.blksize) { fail('TFTP_OACK', `blksize ${p.options.blksize} not what was asked`); return }
          blksize = bs
          send(encodeAck(0), peerPort)
          return
        }
        if (p.op !== 'data') return
        if (p.block !== (want & 0xffff)) {
          if (p.block === ((want - 1) & 0xffff)) sock.send(encodeAck(p.block), peerPort, g.server)
          return
        }
        const len = p.data.length
        if (hash !== undefined) hash.update(p.data)
        else if (bytes + len > expect!.length || expect!.compare(p.data, 0, len, bytes, bytes + len) !== 0) {
          fail('TFTP_MISMATCH', `block ${want} (octets ${bytes}..${bytes + len}) differs from the file's verified bytes`)
          return
        }
        bytes += len
        blocks++
        want++
        if (len < blksize) {
          clearTimeout(timer)
          if (expect !== undefined && bytes !== expect.length) { fail('TFTP_MISMATCH', `${bytes} octets received, the file has ${expect.length}`); return }
          const result: TftpResult = hash !== undefined ? { bytes, sha256: hash.digest('hex'), blocks, retransmits } : { bytes, matched: true, blocks, retransmits }
          sock.send(encodeAck(p.block), peerPort, g.server, () => resolve(result))
          return
        }
        send(encodeAck(p.block), peerPort)
      })
      send(last, g.port)
    })
  } finally {
    clearTimeout(timer)
    sock.close()
  }
}
