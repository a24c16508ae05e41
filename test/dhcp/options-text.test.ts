import t from 'tap'
import { bootfileName, domainName, hostName, tftpServerName } from '../../server/dhcp/codec/index.js'

t.same([hostName, domainName, tftpServerName, bootfileName].map((c) => c.code), [12, 15, 66, 67])

for (const c of [hostName, domainName, tftpServerName, bootfileName]) {
  t.test(c.name, async (t) => {
    t.same(c.decode(Uint8Array.from(Buffer.from('node-01'))), { ok: true, value: 'node-01' })
    t.same(c.decode(Uint8Array.from([...Buffer.from('ab'), 0, 0])), { ok: true, value: 'ab' }, 'trailing NULs dropped')
    const r = c.decode(new Uint8Array(0))
    t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length', 'empty rejected (RFC 2132: minimum length 1)')
    t.same(c.encode('ipxe.efi'), Uint8Array.from(Buffer.from('ipxe.efi')))
    t.equal(c.format('a"b'), '"a\\"b"', 'format is JSON-quoted')
  })
}

t.test('bytes above 0x7f survive 1:1', async (t) => {
  const data = Uint8Array.of(0x68, 0xe9, 0xff)
  const r = hostName.decode(data)
  t.ok(r.ok)
  if (r.ok) t.same(hostName.encode(r.value), data)
})
