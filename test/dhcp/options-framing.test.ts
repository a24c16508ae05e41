import t from 'tap'
import { formatOverload, messageType, overload, parameterRequestList } from '../../server/dhcp/codec/index.js'

t.test('53 message type', async (t) => {
  for (let v = 1; v <= 18; v++) t.same(messageType.decode(Uint8Array.of(v)), { ok: true, value: v })
  for (const bad of [Uint8Array.of(0), Uint8Array.of(19), Uint8Array.of(255), Uint8Array.of(1, 1), new Uint8Array(0)]) {
    const r = messageType.decode(bad)
    t.equal(r.ok ? 'ok' : r.error.code, 'invalid-message-type', `rejects ${Buffer.from(bad).toString('hex') || 'empty'}`)
  }
  t.equal(messageType.format(1), 'DHCPDISCOVER (1)')
  t.equal(messageType.format(6), 'DHCPNAK (6)')
  t.same(messageType.encode(5), Uint8Array.of(5))
})

t.test('52 overload', async (t) => {
  for (const v of [1, 2, 3]) t.same(overload.decode(Uint8Array.of(v)), { ok: true, value: v })
  for (const bad of [Uint8Array.of(0), Uint8Array.of(4), Uint8Array.of(1, 2), new Uint8Array(0)]) {
    const r = overload.decode(bad)
    t.equal(r.ok ? 'ok' : r.error.code, 'invalid-overload')
  }
  t.same([0, 1, 2, 3].map(formatOverload), ['none', 'file', 'sname', 'file+sname'])
})

t.test('55 parameter request list', async (t) => {
  t.same(parameterRequestList.decode(Uint8Array.of(1, 3, 6, 175)), { ok: true, value: [1, 3, 6, 175] })
  const r = parameterRequestList.decode(new Uint8Array(0))
  t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length')
  t.same(parameterRequestList.encode([1, 3, 67]), Uint8Array.of(1, 3, 67))
  t.equal(parameterRequestList.format([1, 67, 240]), '1 subnet-mask, 67 bootfile-name, 240 option-240')
})
