import t from 'tap'
import { ipxeEncap, IpxeSubOpt } from '../../server/dhcp/codec/index.js'
import { ipxeEncapsulatedOptions } from '../../server/dhcp/decide/index.js'

t.test('175 from an iPXE DISCOVER', async (t) => {
  const data = Uint8Array.of(0xb1, 5, 1, 0x80, 0x86, 0x10, 0x0e, 0xeb, 3, 1, 21, 1, 0x13, 1, 1, 0, 0x24, 1, 1)
  const r = ipxeEncap.decode(data)
  t.ok(r.ok)
  if (!r.ok) return
  t.same(r.value.map((s) => s.code), [IpxeSubOpt.BUS_ID, IpxeSubOpt.VERSION, IpxeSubOpt.FEATURE_HTTP, IpxeSubOpt.FEATURE_EFI])
  t.equal(ipxeEncap.format(r.value), 'bus-id=018086100e version=011501 http=01 efi=01')
})

t.test('175 with END and malformed', async (t) => {
  const r = ipxeEncap.decode(Uint8Array.of(176, 1, 1, 255, 9, 9))
  t.ok(r.ok && r.value.length === 1)
  const bad = ipxeEncap.decode(Uint8Array.of(176, 2, 1))
  t.equal(bad.ok ? 'ok' : bad.error.code, 'invalid-option-value')
})

t.test('ipxeEncapsulatedOptions: 176 no-pxedhcp = 1', async (t) => {
  const v = ipxeEncapsulatedOptions()
  t.same(v, Uint8Array.of(176, 1, 1))
  const r = ipxeEncap.decode(v)
  t.ok(r.ok && r.value[0]?.code === IpxeSubOpt.NO_PXEDHCP && r.value[0].data[0] === 1)
})
