import t from 'tap'
import { relayAgentInfo } from '../../server/dhcp/codec/index.js'

t.test('82 sub-options kept raw and in order (RFC 3046 §2.0)', async (t) => {
  // circuit-id "eth0/1", remote-id 6 bytes, link-selection 10.1.2.0; code 0 and 255 are ordinary here
  const data = Uint8Array.of(1, 6, ...Buffer.from('eth0/1'), 2, 6, 0, 1, 2, 3, 4, 5, 5, 4, 10, 1, 2, 0, 0, 1, 0xee, 255, 0)
  const r = relayAgentInfo.decode(data)
  t.ok(r.ok)
  if (!r.ok) return
  t.same(r.value.map((s) => s.code), [1, 2, 5, 0, 255])
  t.same(relayAgentInfo.encode(r.value), data, 'byte-for-byte round trip')
  t.match(relayAgentInfo.format(r.value), /^circuit-id=657468302f31 remote-id=000102030405 link-selection=0a010200 sub-0=ee sub-255=$/)
})

t.test('malformed', async (t) => {
  const short = relayAgentInfo.decode(Uint8Array.of(1))
  t.equal(short.ok ? 'ok' : short.error.code, 'invalid-option-length')
  const over = relayAgentInfo.decode(Uint8Array.of(1, 9, 0))
  t.equal(over.ok ? 'ok' : over.error.code, 'invalid-option-value')
})
