import t from 'tap'
import { interfaceMtu, leaseTime, maxMessageSize, rebindingTime, renewalTime } from '../../server/dhcp/codec/index.js'

t.same([interfaceMtu, leaseTime, maxMessageSize, renewalTime, rebindingTime].map((c) => c.code), [26, 51, 57, 58, 59])

t.test('u32 time options', async (t) => {
  for (const c of [leaseTime, renewalTime, rebindingTime]) {
    t.same(c.decode(Uint8Array.of(0, 0, 0x0e, 0x10)), { ok: true, value: 3600 }, c.name)
    t.same(c.decode(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), { ok: true, value: 0xffffffff }, `${c.name} infinite is unsigned`)
    t.equal(c.format(0xffffffff), 'infinite')
    t.equal(c.format(600), '600s')
    t.same(c.encode(86400), Uint8Array.of(0, 1, 0x51, 0x80))
    for (const len of [0, 2, 3, 5]) {
      const r = c.decode(new Uint8Array(len))
      t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length')
    }
  }
})

t.test('interface MTU (RFC 2132 §5.1, minimum 68)', async (t) => {
  t.same(interfaceMtu.decode(Uint8Array.of(0x05, 0xdc)), { ok: true, value: 1500 })
  const low = interfaceMtu.decode(Uint8Array.of(0, 67))
  t.equal(low.ok ? 'ok' : low.error.code, 'invalid-option-value')
  t.same(interfaceMtu.encode(9000), Uint8Array.of(0x23, 0x28))
})

t.test('max message size (RFC 2132 §9.10, minimum 576)', async (t) => {
  t.same(maxMessageSize.decode(Uint8Array.of(0x02, 0x40)), { ok: true, value: 576 })
  t.same(maxMessageSize.decode(Uint8Array.of(0x05, 0xc0)), { ok: true, value: 1472 })
  const low = maxMessageSize.decode(Uint8Array.of(0x02, 0x3f))
  t.equal(low.ok ? 'ok' : low.error.code, 'invalid-option-value', '575 is below the legal minimum')
  const len = maxMessageSize.decode(Uint8Array.of(2))
  t.equal(len.ok ? 'ok' : len.error.code, 'invalid-option-length')
})
