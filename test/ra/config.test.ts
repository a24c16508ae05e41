/**
 * The `ra` configuration keys: defaults, which interfaces advertise, and errors
 * that name the key (a bad prefix, min_interval above 0.75 × max_interval).
 */
import t from 'tap'
import { parseConfig } from '../../server/config/load.js'
import { NetbootError } from '../../server/errors.js'
import { raInterfaces, raOptions } from '../../server/ra/setup.js'
import pino from 'pino'

const log = pino({ level: 'silent' })

t.test('defaults: on, RFC 4861 intervals, no prefix, the provisioning interfaces', async (t) => {
  const c = parseConfig(`
server: { address: 10.0.0.1, interfaces: [eth1, eth2] }
dhcp:
  subnets:
    - { name: a, network: 10.0.0.0/24, interface: eth2 }
    - { name: b, network: 10.0.1.0/24, interface: eth3 }
    - { name: relayed, network: 10.0.2.0/24 }
`, 'test.yaml')
  t.equal(c.config.ra.enabled, true)
  t.same(raInterfaces(c), ['eth1', 'eth2', 'eth3'], 'server.interfaces and the subnets\' interfaces, once each')
  const o = raOptions(c, log)
  t.same({ max: o.maxIntervalS, min: o.minIntervalS, prefixes: o.prefixes, mtu: o.mtu }, { max: 600, min: 198, prefixes: [], mtu: undefined })
})

t.test('explicit keys', async (t) => {
  const c = parseConfig('ra: { interfaces: [prov0], max_interval: 30, min_interval: 10, mtu: 9000, prefixes: ["FD00:96:0:0::/64"] }\n', 'test.yaml')
  t.same(raInterfaces(c), ['prov0'])
  const o = raOptions(c, log)
  t.same({ max: o.maxIntervalS, min: o.minIntervalS, mtu: o.mtu }, { max: 30, min: 10, mtu: 9000 })
  t.match(o.prefixes, [{ prefix: 'fd00:96::', length: 64, onLink: true, autonomous: true, validLifetime: 2_592_000, preferredLifetime: 604_800 }])
})

t.test('errors name the key and line', async (t) => {
  const bad = (text: string): string => {
    try { parseConfig(text, 'test.yaml'); return 'no error' } catch (e) { t.ok(e instanceof NetbootError); return `${(e as NetbootError).message} ${JSON.stringify((e as NetbootError).details)}` }
  }
  t.match(bad('ra:\n  prefixes: [fd00:96::/48]\n'), /test\.yaml:2.*ra\.prefixes\[0\]: expected an IPv6 \/64 prefix/)
  t.match(bad('ra:\n  prefixes: [not-a-prefix]\n'), /ra\.prefixes\[0\]/)
  t.match(bad('ra:\n  max_interval: 100\n  min_interval: 90\n'), /test\.yaml:3.*ra\.min_interval: must be at most 0\.75 × ra\.max_interval \(75\)/)
  t.match(bad('ra:\n  max_interval: 2\n'), /ra\.max_interval/)
  t.match(bad('ra:\n  interval: 20\n'), /ra\.interval: unknown key/)
})
