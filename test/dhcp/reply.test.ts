/** newReply (RFC 2131 Table 3), encodeReply layout and the client's size limit (option 57). */
import t from 'tap'
import {
  decodePacket,
  encodeReply,
  FLAG_BROADCAST,
  MessageType,
  newReply,
  replySizeLimit,
  type DhcpPacket,
} from '../../server/dhcp/codec/index.js'
import { bytes, opt, raw } from './helpers.js'

function request(options: number[], init: Parameters<typeof raw>[0] = {}): DhcpPacket {
  const r = decodePacket(raw({ ...init, options: [...options, 255], padTo: 300 }))
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

const relay82 = opt(82, [...opt(1, bytes('ge-0/0/1')), ...opt(2, [1, 2, 3])])
const cid61 = opt(61, [1, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc])

t.test('newReply follows RFC 2131 §4.3.1 Table 3', async (t) => {
  const req = request([53, 1, 3, ...cid61, ...relay82], {
    xid: 0xcafe0001,
    secs: 9,
    hops: 1,
    flags: 0x8000,
    ciaddr: [10, 1, 2, 3],
    giaddr: [10, 1, 2, 1],
  })
  const ack = newReply(req, MessageType.ACK, '10.0.0.1')
  t.same(
    { op: ack.op, xid: ack.xid, secs: ack.secs, hops: ack.hops, flags: ack.flags, ciaddr: ack.ciaddr, giaddr: ack.giaddr, yiaddr: ack.yiaddr },
    { op: 2, xid: 0xcafe0001, secs: 0, hops: 0, flags: 0x8000, ciaddr: '10.1.2.3', giaddr: '10.1.2.1', yiaddr: '0.0.0.0' },
  )
  t.same(ack.chaddr, req.chaddr)
  t.not(ack.chaddr, req.chaddr, 'chaddr is copied, not shared')
  t.same([...ack.options.codes()], [53, 54, 61, 82])
  t.same(ack.options.get(82), req.options.get(82), '82 echoed byte for byte (RFC 3046 §2.2)')
  t.same(ack.options.get(61), req.options.get(61), '61 echoed (RFC 6842 §3)')

  const offer = newReply(req, MessageType.OFFER, '10.0.0.1')
  t.equal(offer.ciaddr, '0.0.0.0', 'OFFER ciaddr is 0')
})

t.test('NAK through a relay sets the broadcast bit (RFC 2131 §4.3.2)', async (t) => {
  const viaRelay = newReply(request([53, 1, 3], { giaddr: [10, 1, 2, 1] }), MessageType.NAK, '10.0.0.1')
  t.equal(viaRelay.flags & FLAG_BROADCAST, FLAG_BROADCAST)
  const direct = newReply(request([53, 1, 3]), MessageType.NAK, '10.0.0.1')
  t.equal(direct.flags, 0)
})

t.test('encodeReply layout: 53 and 54 first, 82 last, END, padded to 300', async (t) => {
  const req = request([53, 1, 1, ...relay82])
  const offer = newReply(req, MessageType.OFFER, '10.0.0.1')
  offer.yiaddr = '10.0.0.50'
  offer.options.delete(53)
  offer.options.set(1, Uint8Array.of(255, 255, 255, 0))
  offer.options.set(53, Uint8Array.of(2)) // appended after 82 and 1 in the list on purpose
  offer.options.set(51, Uint8Array.of(0, 0, 0x0e, 0x10))
  const r = encodeReply(offer, { request: req })
  t.ok(r.ok)
  if (!r.ok) return
  const w = r.value
  t.equal(w.length, 300)
  t.same([...w.subarray(240, 246)], [53, 1, 2, 54, 4, 10], 'message type, then server id')
  const d = decodePacket(w)
  t.ok(d.ok)
  if (!d.ok) return
  t.same([...d.value.options.codes()], [53, 54, 1, 51, 82])
  const end = w.indexOf(255, 240 + 3 + 6 + 6 + 6)
  t.same([...w.subarray(end - relay82.length, end)], relay82, '82 is the last option before END')
})

t.test('encodeReply preconditions', async (t) => {
  const req = request([53, 1, 1])
  const offer = newReply(req, MessageType.OFFER, '10.0.0.1')
  const notReply = encodeReply({ ...offer, op: 1 })
  t.equal(notReply.ok ? 'ok' : notReply.error.code, 'not-bootreply')
  offer.options.delete(53)
  const no53 = encodeReply(offer)
  t.equal(no53.ok ? 'ok' : no53.error.code, 'missing-message-type')
})

t.test('replySizeLimit (RFC 2132 §9.10, RFC 2131 §2)', async (t) => {
  const table: [string, number[], number | undefined, number][] = [
    ['no option 57', [], undefined, 548],
    ['57 = 576', opt(57, [0x02, 0x40]), undefined, 548],
    ['57 = 1472 (iPXE)', opt(57, [0x05, 0xc0]), undefined, 1444],
    ['57 = 1500', opt(57, [0x05, 0xdc]), undefined, 1472],
    ['57 = 9000 capped by MTU', opt(57, [0x23, 0x28]), undefined, 1472],
    ['57 = 9000, jumbo link', opt(57, [0x23, 0x28]), 9000, 8972],
    ['57 = 300 is illegal → 576', opt(57, [0x01, 0x2c]), undefined, 548],
    ['57 malformed → 576', opt(57, [5]), undefined, 548],
  ]
  for (const [name, o, mtu, want] of table) t.equal(replySizeLimit(request([53, 1, 1, ...o]), mtu), want, name)
  t.equal(replySizeLimit(undefined), 548, 'no request')
})

t.test('encodeReply honours the client limit with overload', async (t) => {
  const big = (req: DhcpPacket): DhcpPacket => {
    const offer = newReply(req, MessageType.OFFER, '10.0.0.1')
    offer.options.set(43, new Uint8Array(200).fill(1))
    offer.options.set(119, new Uint8Array(120).fill(2))
    return offer
  }
  const small = request([53, 1, 1])
  const r1 = encodeReply(big(small), { request: small })
  t.ok(r1.ok)
  if (!r1.ok) return
  t.ok(r1.value.length <= 548, `within 548 bytes (${r1.value.length})`)
  const d1 = decodePacket(r1.value)
  t.ok(d1.ok && d1.value.overload === 1, 'spilled into file')

  const large = request([53, 1, 1, ...opt(57, [0x05, 0xc0])])
  const r2 = encodeReply(big(large), { request: large })
  t.ok(r2.ok)
  if (!r2.ok) return
  const d2 = decodePacket(r2.value)
  t.ok(d2.ok && d2.value.overload === 0, 'fits the options field when the client allows 1472')

  const withFile = big(small)
  withFile.file = 'undionly.kpxe'
  withFile.sname = '10.0.0.1'
  const r3 = encodeReply(withFile, { request: small })
  t.equal(r3.ok ? 'ok' : r3.error.code, 'reply-too-large', 'file and sname in use: typed error')
})
