import t from 'tap'
import { parseBootVendorClass, vendorClass, vendorSpecific, PxeSubOpt } from '../../server/dhcp/codec/index.js'

t.test('60 vendor class', async (t) => {
  const s = 'PXEClient:Arch:00007:UNDI:003016'
  t.same(vendorClass.decode(Uint8Array.from(Buffer.from(s))), { ok: true, value: s })
  const e = vendorClass.decode(new Uint8Array(0))
  t.equal(e.ok ? 'ok' : e.error.code, 'invalid-option-length')
  t.same(vendorClass.encode('HTTPClient'), Uint8Array.from(Buffer.from('HTTPClient')))
})

t.test('PXE and HTTP boot vendor class forms (PXE spec 2.1, UEFI 2.10 §24.7)', async (t) => {
  const table: [string, ReturnType<typeof parseBootVendorClass>][] = [
    ['PXEClient:Arch:00000:UNDI:002001', { kind: 'PXEClient', arch: 0, undi: { major: 2, minor: 1 } }],
    ['PXEClient:Arch:00007:UNDI:003016', { kind: 'PXEClient', arch: 7, undi: { major: 3, minor: 16 } }],
    ['PXEClient:Arch:00011:UNDI:003000', { kind: 'PXEClient', arch: 11, undi: { major: 3, minor: 0 } }],
    ['HTTPClient:Arch:00016:UNDI:003000', { kind: 'HTTPClient', arch: 16, undi: { major: 3, minor: 0 } }],
    ['HTTPClient', { kind: 'HTTPClient' }],
    ['PXEClient', { kind: 'PXEClient' }],
    ['PXEClient:Arch:7', { kind: 'PXEClient' }],
    ['PXEClient:Arch:99999', { kind: 'PXEClient' }],
    ['udhcp 1.35.0', undefined],
    ['MSFT 5.0', undefined],
    ['pxeclient', undefined],
  ]
  for (const [s, want] of table) t.same(parseBootVendorClass(s), want, s)
})

t.test('43 PXE vendor options (PXE spec 2.1)', async (t) => {
  // discovery-control = 8 (skip discovery), a boot item, a pad, END, trailing junk ignored
  const data = Uint8Array.of(6, 1, 8, 0, 71, 4, 0x80, 0, 0, 0, 255, 0xde, 0xad)
  const r = vendorSpecific.decode(data)
  t.ok(r.ok)
  if (!r.ok) return
  t.same(
    r.value.map((s) => [s.code, [...s.data]]),
    [
      [PxeSubOpt.DISCOVERY_CONTROL, [8]],
      [PxeSubOpt.BOOT_ITEM, [0x80, 0, 0, 0]],
    ],
  )
  t.equal(vendorSpecific.format(r.value), 'discovery-control=08 boot-item=80000000')
  t.same(vendorSpecific.encode(r.value), Uint8Array.of(6, 1, 8, 71, 4, 0x80, 0, 0, 0, 255))
  t.same(vendorSpecific.decode(vendorSpecific.encode(r.value)), r, 'round trip')
})

t.test('43 that is not a sub-option list', async (t) => {
  const r = vendorSpecific.decode(Uint8Array.of(6, 5, 1))
  t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-value')
  const r2 = vendorSpecific.decode(Uint8Array.of(6))
  t.equal(r2.ok ? 'ok' : r2.error.code, 'invalid-option-value', 'missing length byte')
})
