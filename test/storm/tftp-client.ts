/**
 * TFTP reads as the two kinds of firmware the storm simulates do them.
 *
 * BIOS nodes: a PXE ROM (iPXE's own PXE/UNDI stack, as undionly.kpxe is chained
 * from): RRQ with blksize 1432 and tsize (RFC 2348, RFC 2349), OACK acknowledged
 * with ACK 0 (RFC 2347), then lock-step: one ACK per DATA block, no windowsize,
 * the transfer ends on the first block shorter than blksize (RFC 1350 §6).
 * Retransmission: the last packet sent (RRQ or ACK) again after a timeout that
 * starts at 1 s and doubles, at most `retries` times (iPXE's core/retry.c also
 * doubles from a small minimum).
 *
 * UEFI nodes (arch 7): EDK2's PXE base code (NetworkPkg/UefiPxeBcDxe), as OVMF does
 * it; `EDK2_TFTP` below. Per EDK2 source (tianocore/edk2):
 *  - PxeBcImpl.c EfiPxeBcMtftp reads `PcdPxeTftpWindowSize` (NetworkPkg.dec,
 *    default 4) and passes it to both requests when it is > 1;
 *  - the boot file is fetched in two requests (PxeBcBoot.c, PxeBcMtftp.c):
 *    PxeBcTftpGetFileSize (Mtftp4 GetInfo: RRQ with tsize 0, blksize, windowsize;
 *    on the OACK it answers ERROR 8 "User aborted the transfer", Mtftp4Impl.c), then
 *    PxeBcTftpReadFile (a new RRQ from a new port with blksize and windowsize, no
 *    tsize);
 *  - blksize: the link MTU less IP, UDP and TFTP headers, 1468 on Ethernet;
 *  - Mtftp4Rrq.c Mtftp4RrqHandleData: an in-order block is kept; an ACK is sent
 *    when `WindowSize` blocks arrived since the last ACK, or on the last block; an
 *    unexpected block number is answered at once with an ACK of the last in-order
 *    block (the server resends from there, RFC 7440 §4); an OACK naming a larger
 *    windowsize or blksize than asked is refused;
 *  - timer: PXEBC_MTFTP_TIMEOUT 4 s, PXEBC_MTFTP_RETRIES 6 tries (PxeBcImpl.h):
 *    the last packet again every 4 s (not doubled), 5 retransmissions.
 * The suite's QEMU/OVMF boot (test/e2e/firmware-boot.test.ts) logged the same from
 * the real firmware: `requested {tsize 0, blksize 1468, windowsize 4}`, ERROR 8
 * "User aborted the transfer", then `{blksize 1468, windowsize 4}`, 850,528 octets.
 *
 * A duplicate DATA block in lock-step is acknowledged again and otherwise ignored
 * (RFC 1123 §4.2.3.1: only the sender must not answer duplicates). Every transfer
 * is bounded in time.
 *
 * Checking the bytes: with `expect` (the file's bytes, verified once against its
 * digest by the caller) every block is compared with the same range of it as it
 * arrives, a memcmp instead of SHA-256 per byte; without, the bytes are hashed.
 * Either way every byte this node received is checked; the size probe's tsize is
 * checked against `expect`'s length.
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
  // from the shared pool: every octet is written below (one ACK per block or window, 10,000 transfers)
  const b = Buffer.allocUnsafe(4)
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
  /** RFC 7440 windowsize asked for; absent or 1: lock-step, one ACK per block */
  windowsize?: number
  /** EDK2's size probe first: RRQ with tsize, OACK answered with ERROR 8, then the read from a new port */
  sizeProbe?: boolean
  /** ask tsize in the read's RRQ (PXE ROMs do; EDK2's read does not, its probe did) */
  tsize?: boolean
  /** retransmissions allowed per packet before the transfer fails */
  retries: number
  firstTimeoutMs: number
  /** 'double' (PXE ROM, default): the timeout doubles per retransmission; 'fixed' (EDK2 Mtftp4) */
  backoff?: 'double' | 'fixed'
  /** the whole transfer, ms */
  deadlineMs: number
  /** the file's verified bytes: each block is compared with them (TFTP_MISMATCH on a difference) instead of hashed */
  expect?: Buffer
}

/** What a UEFI node's firmware asks (EDK2 defaults, see the header): merged over the storm's TFTP settings. */
export const EDK2_TFTP = { blksize: 1468, windowsize: 4, sizeProbe: true, tsize: false, retries: 5, firstTimeoutMs: 4000, backoff: 'fixed' } as const

/** A PXE ROM's (BIOS nodes): lock-step, tsize in the one RRQ. */
export const PXE_ROM_TFTP = { blksize: 1432, tsize: true, retries: 5, firstTimeoutMs: 1000, backoff: 'double' } as const

/** `sha256` of the received bytes when no `expect` was given; with one, `matched` (always true: a mismatch fails). */
export interface TftpResult { bytes: number; sha256?: string; matched?: true; blocks: number; retransmits: number; acks: number; windowsize: number; probedSize?: number }

export class TftpFailure extends Error {
  constructor (readonly code: string, message: string, readonly retransmits: number) { super(message) }
}

/** ERROR 8 as EDK2's GetInfo sends it on the OACK it asked for (Mtftp4Impl.c: EFI_MTFTP4_ERRORCODE_REQUEST_DENIED). */
export function encodeError (code: number, message: string): Buffer {
  const b = Buffer.alloc(5 + Buffer.byteLength(message, 'latin1'))
  b.writeUInt16BE(TFTP.ERROR, 0)
  b.writeUInt16BE(code, 2)
  b.write(message, 4, 'latin1')
  return b
}

async function openSocket (): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup })
  await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(0, () => { sock.off('error', reject); resolve() }) })
  return sock
}

/** One read, on its own socket (its own TID, RFC 1350 §4); EDK2's size probe first when asked. */
export async function tftpGet (g: TftpGet): Promise<TftpResult> {
  const started = Date.now()
  let probedSize: number | undefined
  let probeRetransmits = 0
  if (g.sizeProbe === true) {
    const p = await probeSize(g, started)
    probedSize = p.size
    probeRetransmits = p.retransmits
    if (g.expect !== undefined && probedSize !== undefined && probedSize !== g.expect.length) throw new TftpFailure('TFTP_TSIZE', `${g.file}: tsize ${probedSize}, the file has ${g.expect.length}`, probeRetransmits)
  }
  try {
    const r = await read(g, started)
    r.retransmits += probeRetransmits
    return probedSize !== undefined ? { ...r, probedSize } : r
  } catch (e) {
    if (e instanceof TftpFailure && probeRetransmits > 0) throw new TftpFailure(e.code, e.message, e.retransmits + probeRetransmits)
    throw e
  }
}

const timeoutOf = (g: TftpGet, tries: number): number => g.backoff === 'fixed' ? g.firstTimeoutMs : g.firstTimeoutMs * 2 ** tries

/**
 * EDK2 PxeBcTftpGetFileSize: RRQ with tsize 0, blksize and windowsize; the OACK's
 * tsize is the answer and the transfer is refused with ERROR 8. A server that
 * ignores options (DATA 1 instead of an OACK) gets the same ERROR and no size.
 */
async function probeSize (g: TftpGet, started: number): Promise<{ size?: number; retransmits: number }> {
  const sock = await openSocket()
  const opts: Record<string, string> = { tsize: '0', blksize: String(g.blksize) }
  if (g.windowsize !== undefined && g.windowsize > 1) opts.windowsize = String(g.windowsize)
  const rrq = encodeRrq(g.file, opts)
  let tries = 0
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise((resolve, reject) => {
      const fail = (code: string, why: string): void => reject(new TftpFailure(code, `${g.file} (size probe): ${why}`, tries))
      const onTimeout = (): void => {
        if (tries >= g.retries) { fail('TFTP_TIMEOUT', `no OACK after ${tries} retransmissions`); return }
        if (Date.now() - started > g.deadlineMs) { fail('TFTP_DEADLINE', `not done within ${g.deadlineMs} ms`); return }
        tries++
        sock.send(rrq, g.port, g.server)
        timer = setTimeout(onTimeout, timeoutOf(g, tries))
      }
      sock.on('error', (e) => fail('TFTP_SOCKET', e.message))
      sock.on('message', (msg, rinfo) => {
        if (rinfo.address !== g.server) return
        const p = decodePacket(msg)
        if (p.op === 'error') { fail('TFTP_ERROR', `server error ${p.code}: ${p.message}`); return }
        if (p.op !== 'oack' && p.op !== 'data') return
        clearTimeout(timer)
        let size: number | undefined
        if (p.op === 'oack') {
          const bad = oackProblem(g, p.options)
          if (bad !== undefined) { fail('TFTP_OACK', bad); return }
          if (p.options.tsize !== undefined) size = Number(p.options.tsize)
        }
        sock.send(encodeError(8, 'User aborted the transfer'), rinfo.port, g.server, () => resolve({ ...(size !== undefined ? { size } : {}), retransmits: tries }))
      })
      sock.send(rrq, g.port, g.server)
      timer = setTimeout(onTimeout, timeoutOf(g, 0))
    })
  } finally {
    clearTimeout(timer)
    sock.close()
  }
}

/** Why an OACK is refused (EDK2 Mtftp4RrqOackValid: no larger blksize or windowsize than asked, no option not asked). */
function oackProblem (g: TftpGet, o: Record<string, string>): string | undefined {
  if (o.blksize !== undefined) {
    const bs = Number(o.blksize)
    if (!Number.isInteger(bs) || bs < 8 || bs > g.blksize) return `blksize ${o.blksize} not what was asked (${g.blksize})`
  }
  if (o.windowsize !== undefined) {
    const ws = Number(o.windowsize)
    if (g.windowsize === undefined || g.windowsize <= 1) return `windowsize ${o.windowsize} was not asked`
    if (!Number.isInteger(ws) || ws < 1 || ws > g.windowsize) return `windowsize ${o.windowsize} not what was asked (${g.windowsize})`
  }
  return undefined
}

async function read (g: TftpGet, started: number): Promise<TftpResult> {
  const sock = await openSocket()
  const expect = g.expect
  const hash = expect === undefined ? createHash('sha256') : undefined
  let bytes = 0
  let blocks = 0
  let retransmits = 0
  let acks = 0
  let want = 1
  let blksize = 512
  /** negotiated window (RFC 7440 §3): 1 unless the OACK names one */
  let window = 1
  /** in-order blocks since the last ACK sent (EDK2: TotalBlock - AckedBlock) */
  let unacked = 0
  let peerPort: number | undefined
  const opts: Record<string, string> = { blksize: String(g.blksize) }
  if (g.tsize !== false) opts.tsize = '0'
  if (g.windowsize !== undefined && g.windowsize > 1) opts.windowsize = String(g.windowsize)
  let last = encodeRrq(g.file, opts)
  let lastTo = g.port
  let tries = 0
  let timer: NodeJS.Timeout | undefined
  let armedMs = -1
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
      // one timer per transfer, re-armed with refresh() while its delay is unchanged
      const arm = (): void => {
        const ms = timeoutOf(g, tries)
        if (timer !== undefined && ms === armedMs) { timer.refresh(); return }
        clearTimeout(timer)
        timer = setTimeout(onTimeout, ms)
        armedMs = ms
      }
      const send = (b: Buffer, port: number): void => { last = b; lastTo = port; tries = 0; sock.send(b, port, g.server); arm() }
      const ack = (block: number, port: number): void => { acks++; unacked = 0; send(encodeAck(block), port) }
      sock.on('error', (e) => fail('TFTP_SOCKET', e.message))
      sock.on('message', (msg, rinfo) => {
        if (rinfo.address !== g.server) return
        if (peerPort === undefined) peerPort = rinfo.port
        else if (rinfo.port !== peerPort) return // another TID (RFC 1350 §4): not ours
        // DATA, nearly every datagram, is read in place (no decoded object, no subarray): opcode, block, octets 4..
        if (msg.length >= 4 && msg.readUInt16BE(0) === TFTP.DATA) { onData(msg.readUInt16BE(2), msg); return }
        const p = decodePacket(msg)
        if (p.op === 'error') { fail('TFTP_ERROR', `server error ${p.code}: ${p.message}`); return }
        if (p.op === 'oack') {
          if (want !== 1) return
          const bad = oackProblem(g, p.options)
          if (bad !== undefined) { fail('TFTP_OACK', bad); return }
          blksize = Number(p.options.blksize ?? 512)
          window = Number(p.options.windowsize ?? 1)
          ack(0, peerPort)
          return
        }
      })
      /** DATA `block`, its octets from offset 4 of `msg` (RFC 1350 §5). */
      const onData = (block: number, msg: Buffer): void => {
        const peer = peerPort!
        if (block !== (want & 0xffff)) {
          // lock-step: a duplicate of the last block is acknowledged again, anything else ignored;
          // windowed (EDK2 Mtftp4RrqHandleData): any unexpected block gets the ACK of the last in-order one
          if (window > 1) ack((want - 1) & 0xffff, peer)
          else if (block === ((want - 1) & 0xffff)) { acks++; sock.send(encodeAck(block), peer, g.server) }
          return
        }
        const len = msg.length - 4
        if (hash !== undefined) hash.update(msg.subarray(4))
        else if (bytes + len > expect!.length || expect!.compare(msg, 4, msg.length, bytes, bytes + len) !== 0) {
          fail('TFTP_MISMATCH', `block ${want} (octets ${bytes}..${bytes + len}) differs from the file's verified bytes`)
          return
        }
        bytes += len
        blocks++
        want++
        unacked++
        if (len < blksize) {
          clearTimeout(timer)
          if (expect !== undefined && bytes !== expect.length) { fail('TFTP_MISMATCH', `${bytes} octets received, the file has ${expect.length}`); return }
          acks++
          const result: TftpResult = hash !== undefined ? { bytes, sha256: hash.digest('hex'), blocks, retransmits, acks, windowsize: window } : { bytes, matched: true, blocks, retransmits, acks, windowsize: window }
          sock.send(encodeAck(block), peer, g.server, () => resolve(result))
          return
        }
        if (unacked >= window) ack(block, peer)
      }
      send(last, g.port)
    })
  } finally {
    clearTimeout(timer)
    sock.close()
  }
}
