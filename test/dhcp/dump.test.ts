import t from 'tap'
import { decodePacket, dumpPacket, formatOption } from '../../server/dhcp/codec/index.js'
import { opt, raw } from './helpers.js'

t.test('one line per header field, then one per option', async (t) => {
  const d = decodePacket(raw({ options: [53, 1, 1, ...opt(240, [1, 2]), ...opt(93, [0, 7, 1]), 255], chaddr: [1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9] }))
  t.ok(d.ok)
  if (!d.ok) return
  const lines = dumpPacket(d.value).trimEnd().split('\n')
  t.same(
    lines.map((l) => l.split(':')[0]),
    ['op', 'htype', 'hlen', 'hops', 'xid', 'secs', 'flags', 'ciaddr', 'yiaddr', 'siaddr', 'giaddr', 'chaddr', 'sname', 'file', 'overload', 'option 53 message-type', 'option 240 option-240', 'option 93 client-arch'],
  )
  t.equal(lines[11], 'chaddr: 01:02:03:04:05:06 padding 00000000000000000009', 'non-zero chaddr padding is shown')
  t.equal(lines[16], 'option 240 option-240: 0102 (2 bytes)', 'unknown option as hex')
  t.equal(lines[17], 'option 93 client-arch: invalid invalid-option-length 000701 (3 bytes)', 'malformed typed option shows its error')
})

t.test('formatOption', async (t) => {
  t.equal(formatOption(54, Uint8Array.of(10, 0, 0, 1)), '10.0.0.1')
  t.equal(formatOption(51, Uint8Array.of(0xff, 0xff, 0xff, 0xff)), 'infinite')
  t.equal(formatOption(77, Uint8Array.of(0x69, 0x50, 0x58, 0x45)), 'legacy "iPXE"')
})
