import t from 'tap'
import {
  broadcastAddress,
  dnsServers,
  ntpServers,
  requestedIp,
  routers,
  serverId,
  subnetMask,
  type OptionCodec,
} from '../../server/dhcp/codec/index.js'

const singles: OptionCodec<string>[] = [subnetMask, broadcastAddress, requestedIp, serverId]
const lists: OptionCodec<string[]>[] = [routers, dnsServers, ntpServers]

t.same(
  [subnetMask, routers, dnsServers, broadcastAddress, ntpServers, requestedIp, serverId].map((c) => c.code),
  [1, 3, 6, 28, 42, 50, 54],
  'codes per RFC 2132',
)

for (const c of singles) {
  t.test(c.name, async (t) => {
    t.same(c.decode(Uint8Array.of(10, 99, 0, 1)), { ok: true, value: '10.99.0.1' })
    t.same(c.encode('255.255.255.0'), Uint8Array.of(255, 255, 255, 0))
    for (const len of [0, 3, 5, 8]) {
      const r = c.decode(new Uint8Array(len))
      t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length', `length ${len} rejected`)
    }
  })
}

for (const c of lists) {
  t.test(c.name, async (t) => {
    t.same(c.decode(Uint8Array.of(10, 0, 0, 1, 10, 0, 0, 2)), { ok: true, value: ['10.0.0.1', '10.0.0.2'] })
    t.same(c.encode(['1.2.3.4', '5.6.7.8']), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8))
    t.equal(c.format(['1.2.3.4', '5.6.7.8']), '1.2.3.4, 5.6.7.8')
    for (const len of [0, 3, 6, 9]) {
      const r = c.decode(new Uint8Array(len))
      t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length', `length ${len} rejected`)
    }
  })
}

t.test('a list of 64 addresses (RFC 3396 long option content) decodes', async (t) => {
  const data = new Uint8Array(256)
  for (let i = 0; i < 64; i++) data.set([10, 0, 1, i], i * 4)
  const r = dnsServers.decode(data)
  t.ok(r.ok)
  if (r.ok) t.equal(r.value.length, 64)
})
