import t from 'tap'
import { clientId } from '../../server/dhcp/codec/index.js'

t.test('ethernet client id (RFC 2132 §9.14)', async (t) => {
  const data = Uint8Array.of(1, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc)
  const r = clientId.decode(data)
  t.ok(r.ok)
  if (!r.ok) return
  t.equal(r.value.type, 1)
  t.same(r.value.id, data.subarray(1))
  t.equal(clientId.format(r.value), 'ethernet 52:54:00:aa:bb:cc')
  t.same(clientId.encode(r.value), data, 'round trip')
})

t.test('RFC 4361 IAID+DUID and opaque ids', async (t) => {
  const duid = Uint8Array.of(255, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4)
  const r = clientId.decode(duid)
  t.ok(r.ok && clientId.format(r.value).startsWith('iaid-duid '))
  const opaque = clientId.decode(Uint8Array.of(0, 0x41))
  t.ok(opaque.ok && clientId.format(opaque.value) === 'opaque 41')
})

t.test('too short', async (t) => {
  for (const len of [0, 1]) {
    const r = clientId.decode(new Uint8Array(len).fill(1))
    t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length')
  }
})
