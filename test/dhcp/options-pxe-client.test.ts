import t from 'tap'
import { clientArch, clientGuid, clientNdi, guidString } from '../../server/dhcp/codec/index.js'

t.test('93 client arch (RFC 4578 §2.1)', async (t) => {
  t.same(clientArch.decode(Uint8Array.of(0, 7)), { ok: true, value: [7] })
  t.same(clientArch.decode(Uint8Array.of(0, 16, 0, 7)), { ok: true, value: [16, 7] })
  t.same(clientArch.decode(Uint8Array.of(1, 0)), { ok: true, value: [256] })
  for (const len of [0, 1, 3]) {
    const r = clientArch.decode(new Uint8Array(len))
    t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length', `length ${len}`)
  }
  t.same(clientArch.encode([0, 11]), Uint8Array.of(0, 0, 0, 11))
})

t.test('94 client NDI (RFC 4578 §2.2)', async (t) => {
  t.same(clientNdi.decode(Uint8Array.of(1, 3, 16)), { ok: true, value: { type: 1, major: 3, minor: 16 } })
  t.equal(clientNdi.format({ type: 1, major: 2, minor: 1 }), 'UNDI 2.1')
  const r = clientNdi.decode(Uint8Array.of(1, 2))
  t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length')
  t.same(clientNdi.encode({ type: 1, major: 3, minor: 10 }), Uint8Array.of(1, 3, 10))
})

t.test('97 client GUID (RFC 4578 §2.3)', async (t) => {
  const guid = Uint8Array.of(0x9a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x40, 0x61, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9)
  const data = Uint8Array.of(0, ...guid)
  const r = clientGuid.decode(data)
  t.ok(r.ok)
  if (!r.ok) return
  t.same(r.value.guid, guid)
  t.equal(clientGuid.format(r.value), '3d2c1b9a-5f4e-6140-8293-a4b5c6d7e8f9', 'SMBIOS byte order, as Wireshark shows it')
  t.equal(guidString(guid), '3d2c1b9a-5f4e-6140-8293-a4b5c6d7e8f9')
  t.same(clientGuid.encode(r.value), data)
  const badType = clientGuid.decode(Uint8Array.of(1, ...guid))
  t.equal(badType.ok ? 'ok' : badType.error.code, 'invalid-option-value')
  const badLen = clientGuid.decode(Uint8Array.of(0, ...guid.subarray(1)))
  t.equal(badLen.ok ? 'ok' : badLen.error.code, 'invalid-option-length')
})
