/** decodePacket: header fields, framing, RFC 3396, RFC 2132 §9.3 overload, and every strict-parse rejection. */
import t from 'tap'
import { decodePacket, dumpPacket, encodePacket, macOf, messageTypeOf, DHCP_MAX_PACKET_SIZE } from '../../server/dhcp/codec/index.js'
import { bytes, opt, raw } from './helpers.js'

function code(input: Uint8Array, limits?: { maxLength?: number }): string {
  const r = decodePacket(input, limits)
  return r.ok ? 'ok' : r.error.code
}

t.test('header fields', async (t) => {
  const r = decodePacket(
    raw({
      op: 1,
      hops: 2,
      xid: 0xdeadbeef,
      secs: 300,
      flags: 0x8000,
      ciaddr: [10, 0, 0, 5],
      yiaddr: [10, 0, 0, 6],
      siaddr: [10, 0, 0, 7],
      giaddr: [10, 0, 0, 8],
      sname: bytes('boot-server'),
      file: bytes('undionly.kpxe'),
      padTo: 300,
    }),
  )
  t.ok(r.ok)
  if (!r.ok) return
  const p = r.value
  t.same(
    { op: p.op, htype: p.htype, hlen: p.hlen, hops: p.hops, xid: p.xid, secs: p.secs, flags: p.flags },
    { op: 1, htype: 1, hlen: 6, hops: 2, xid: 0xdeadbeef, secs: 300, flags: 0x8000 },
  )
  t.same([p.ciaddr, p.yiaddr, p.siaddr, p.giaddr], ['10.0.0.5', '10.0.0.6', '10.0.0.7', '10.0.0.8'])
  t.equal(p.chaddr.length, 16)
  t.equal(macOf(p), '52:54:00:aa:bb:cc')
  t.equal(p.sname, 'boot-server')
  t.equal(p.file, 'undionly.kpxe')
  t.equal(p.overload, 0)
  t.equal(messageTypeOf(p), 1)
  t.match(dumpPacket(p), /flags: 0x8000 broadcast\n/)
})

t.test('the packet owns its bytes', async (t) => {
  const input = raw({ options: [...opt(12, bytes('abc')), 53, 1, 1, 255] })
  const r = decodePacket(input)
  input.fill(0xff)
  t.ok(r.ok && r.value.options.get(12)?.[0] === 0x61, 'mutating the input does not change the decoded packet')
})

t.test('a Node Buffer input is copied too (Buffer.slice is a view)', async (t) => {
  const input = Buffer.from(raw({ options: [...opt(12, bytes('abc')), 53, 1, 1, 255] }))
  const r = decodePacket(input)
  input.fill(0xff)
  t.ok(r.ok && r.value.options.get(12)?.[0] === 0x61 && r.value.chaddr[0] === 0x52)
})

t.test('PAD, END and bytes after END', async (t) => {
  const r = decodePacket(raw({ options: [0, 0, 53, 1, 3, 0, ...opt(12, bytes('x')), 255, 12, 200, 1, 2, 3] }))
  t.ok(r.ok)
  if (r.ok) t.same([...r.value.options.codes()], [53, 12], 'bytes after END are ignored, PAD skipped')
})

t.test('unknown options survive decode → encode byte for byte', async (t) => {
  const unknown1 = opt(250, [0, 255, 1, 2, 3])
  const unknown2 = [224, 0] // zero-length
  const unknown3 = opt(81, [0x03, 0, 0, ...bytes('n1')])
  const r = decodePacket(raw({ options: [53, 1, 1, ...unknown1, ...unknown2, ...unknown3, 255] }))
  t.ok(r.ok)
  if (!r.ok) return
  const e = encodePacket(r.value)
  t.ok(e.ok)
  if (!e.ok) return
  const hex = Buffer.from(e.value).toString('hex')
  for (const u of [unknown1, unknown2, unknown3]) t.ok(hex.includes(Buffer.from(u).toString('hex')), `contains ${Buffer.from(u).toString('hex')}`)
  const again = decodePacket(e.value)
  t.ok(again.ok && dumpPacket(again.value) === dumpPacket(r.value))
})

t.test('RFC 3396: instances of one code are concatenated', async (t) => {
  const r = decodePacket(raw({ options: [...opt(12, bytes('node')), 53, 1, 1, ...opt(12, bytes('-01')), ...opt(250, [1]), ...opt(250, [2]), 255] }))
  t.ok(r.ok)
  if (!r.ok) return
  t.same([...r.value.options.codes()], [12, 53, 250], 'first-appearance order')
  t.equal(Buffer.from(r.value.options.get(12)!).toString(), 'node-01')
  t.same(r.value.options.get(250), Uint8Array.of(1, 2))
})

t.test('RFC 3396: a 600-byte option is split on encode and rejoined on decode', async (t) => {
  const big = new Uint8Array(600).map((_, i) => i & 0xff)
  const r = decodePacket(raw())
  t.ok(r.ok)
  if (!r.ok) return
  r.value.options.set(250, big)
  const e = encodePacket(r.value)
  t.ok(e.ok)
  if (!e.ok) return
  const w = e.value
  t.same([w[243], w[244]], [250, 255], 'first instance 255 bytes')
  t.same([w[243 + 257], w[244 + 257]], [250, 255], 'second instance 255 bytes')
  t.same([w[243 + 514], w[244 + 514]], [250, 90], 'third instance 90 bytes')
  const d = decodePacket(w)
  t.ok(d.ok && Buffer.from(d.value.options.get(250)!).equals(Buffer.from(big)))
})

t.test('RFC 2132 §9.3 overload on decode', async (t) => {
  t.test('file (1)', async (t) => {
    const r = decodePacket(raw({ options: [53, 1, 2, 52, 1, 1, 255], file: [...opt(67, bytes('ipxe.efi')), 255], sname: bytes('srv') }))
    t.ok(r.ok)
    if (!r.ok) return
    t.equal(r.value.overload, 1)
    t.equal(r.value.file, '', 'file held options, not a name')
    t.equal(r.value.sname, 'srv')
    t.equal(Buffer.from(r.value.options.get(67)!).toString(), 'ipxe.efi')
    t.notOk(r.value.options.has(52), 'option 52 is framing, not content')
  })
  t.test('sname (2)', async (t) => {
    const r = decodePacket(raw({ options: [53, 1, 2, 52, 1, 2, 255], sname: [...opt(66, bytes('10.0.0.1')), 255], file: bytes('f') }))
    t.ok(r.ok)
    if (!r.ok) return
    t.equal(r.value.sname, '')
    t.equal(r.value.file, 'f')
    t.equal(Buffer.from(r.value.options.get(66)!).toString(), '10.0.0.1')
  })
  t.test('both (3): aggregation order is options, file, sname, RFC 3396', async (t) => {
    const r = decodePacket(
      raw({
        options: [...opt(250, [1]), 53, 1, 2, 52, 1, 3, 255],
        sname: [...opt(250, [3]), 255],
        file: [...opt(250, [2]), 0, 0, 255],
      }),
    )
    t.ok(r.ok)
    if (!r.ok) return
    t.same(r.value.options.get(250), Uint8Array.of(1, 2, 3))
    t.equal(r.value.overload, 3)
  })
  t.test('file region not overloaded is not parsed', async (t) => {
    const r = decodePacket(raw({ file: [0x35, 0x99, 1] }))
    t.ok(r.ok && r.value.file === '5\u0099\u0001')
  })
})

t.test('strict parse rejections', async (t) => {
  const base = raw({ padTo: 300 })
  t.equal(code(base), 'ok')
  t.equal(code(base.subarray(0, 239)), 'too-short', '239 bytes')
  t.equal(code(new Uint8Array(0)), 'too-short', 'empty')
  t.equal(code(raw({ padTo: DHCP_MAX_PACKET_SIZE + 1 })), 'too-long', '1501 bytes')
  t.equal(code(raw({ padTo: DHCP_MAX_PACKET_SIZE })), 'ok', '1500 bytes')
  t.equal(code(raw({ padTo: 600 }), { maxLength: 576 }), 'too-long', 'configurable limit')
  t.equal(code(raw({ cookie: [0x63, 0x82, 0x53, 0x64] })), 'bad-magic-cookie')
  t.equal(code(raw({ cookie: [0, 0, 0, 0] })), 'bad-magic-cookie', 'BOOTP vend field without cookie')
  t.equal(code(raw({ htype: 99, hlen: 17 })), 'bad-hlen')
  t.equal(code(raw({ htype: 99, hlen: 16 })), 'ok', 'unknown htype, hlen ≤ 16')
  t.equal(code(raw({ htype: 1, hlen: 5 })), 'htype-hlen-mismatch', 'ethernet needs 6')
  t.equal(code(raw({ htype: 6, hlen: 8 })), 'htype-hlen-mismatch', 'IEEE 802 needs 6')
  t.equal(code(raw({ htype: 32, hlen: 6 })), 'htype-hlen-mismatch', 'InfiniBand needs 0 (RFC 4390)')
  t.equal(code(raw({ htype: 32, hlen: 0, chaddr: new Array(16).fill(0) })), 'ok', 'InfiniBand with hlen 0')
  t.equal(code(raw({ options: [53, 1, 1, 12, 10, 1, 2] })), 'option-overrun', 'length past the end')
  t.equal(code(raw({ options: [53, 1, 1, 12] })), 'option-overrun', 'no length byte')
  t.equal(code(raw({ options: [53, 1, 1] })), 'missing-end', 'no END')
  t.equal(code(raw({ options: [53, 1, 1, 0, 0, 0] })), 'missing-end', 'only PAD after options')
  t.equal(code(raw({ options: [] })), 'missing-end', 'empty options field')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 1, 255], file: opt(67, bytes('x')) })), 'missing-end', 'overloaded file without END')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 1, 255], file: [67, 200, 1] })), 'option-overrun', 'option in file past its field')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 1, 255], file: new Array(128).fill(0) })), 'missing-end', 'all-PAD file')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 2, 255], sname: [12, 1, 0x61] })), 'missing-end', 'overloaded sname without END')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 4, 255] })), 'invalid-overload', 'value 4')
  t.equal(code(raw({ options: [53, 1, 1, 52, 2, 1, 1, 255] })), 'invalid-overload', 'length 2')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 1, 52, 1, 1, 255], file: [255] })), 'invalid-overload', 'twice')
  t.equal(code(raw({ options: [53, 1, 1, 52, 1, 1, 255], file: [52, 1, 2, 255] })), 'invalid-overload', '52 inside file')
  t.equal(code(raw({ options: [12, 1, 0x61, 255] })), 'missing-message-type', 'BOOTP (no 53)')
  t.equal(code(raw({ options: [53, 1, 0, 255] })), 'invalid-message-type', 'type 0')
  t.equal(code(raw({ options: [53, 1, 19, 255] })), 'invalid-message-type', 'type 19')
  t.equal(code(raw({ options: [53, 2, 1, 1, 255] })), 'invalid-message-type', 'length 2')
  t.equal(code(raw({ options: [53, 0, 255] })), 'invalid-message-type', 'length 0')
  t.equal(code(raw({ options: [53, 1, 1, 53, 1, 1, 255] })), 'invalid-message-type', 'two 53 instances concatenate to length 2')
})

t.test('error offsets point at the problem', async (t) => {
  const over = decodePacket(raw({ options: [53, 1, 1, 12, 10, 1, 2] }))
  t.ok(!over.ok && over.error.offset === 243)
  const cookie = decodePacket(raw({ cookie: [1, 2, 3, 4] }))
  t.ok(!cookie.ok && cookie.error.offset === 236 && /0x01020304/.test(cookie.error.message))
  const hlen = decodePacket(raw({ htype: 1, hlen: 7 }))
  t.ok(!hlen.ok && hlen.error.offset === 2)
  const mt = decodePacket(raw({ options: [0, 53, 1, 77, 255] }))
  t.ok(!mt.ok && mt.error.offset === 241)
})
