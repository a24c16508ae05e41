import t from 'tap'
import { cidrContains, intToIPv4, ipv4ToInt, parseCidr, parseIPv4, parseMac, parseName, parseXname } from '../../server/inventory/addresses.js'

t.test('MAC spellings', async (t) => {
  for (const s of ['ec:e7:a7:05:a1:fc', 'EC:E7:A7:05:A1:FC', 'ec-e7-a7-05-a1-fc', 'ece7.a705.a1fc', 'ece7a705a1fc', ' ec:e7:a7:05:a1:fc ']) {
    t.equal(parseMac(s), 'ec:e7:a7:05:a1:fc', s)
  }
  t.equal(parseMac('2:0:0:a8:4f:4'), '02:00:00:a8:4f:04', 'one-digit octets')
  for (const s of ['', 'ec:e7:a7:05:a1', 'ec:e7:a7:05:a1:fc:00', 'zz:e7:a7:05:a1:fc', 'ec:e7-a7:05:a1:fc', 'ece7a705a1f', 'ec:e7:a7:05:a1:fcc']) {
    t.equal(parseMac(s), undefined, `rejects '${s}'`)
  }
})

t.test('IPv4', async (t) => {
  t.equal(parseIPv4('172.16.0.1'), '172.16.0.1')
  for (const s of ['172.16.0', '172.16.0.256', '172.016.0.1', '1.2.3.4.5', 'a.b.c.d', '']) t.equal(parseIPv4(s), undefined, `rejects '${s}'`)
  t.equal(intToIPv4(ipv4ToInt('255.255.255.255')), '255.255.255.255')
  t.equal(ipv4ToInt('172.16.0.1'), 0xac100001)
})

t.test('CIDR', async (t) => {
  const c = parseCidr('172.16.0.0/24')!
  t.same({ first: c.first, last: c.last, prefix: c.prefix }, { first: 0xac100000, last: 0xac1000ff, prefix: 24 })
  t.ok(cidrContains(c, '172.16.0.77'))
  t.notOk(cidrContains(c, '172.16.1.1'))
  t.equal(parseCidr('172.16.0.1/24'), undefined, 'host bits set')
  t.equal(parseCidr('172.16.0.0/33'), undefined)
  t.equal(parseCidr('172.16.0.0'), undefined)
  t.ok(parseCidr('0.0.0.0/0'))
})

t.test('xnames and names', async (t) => {
  for (const s of ['x1000c1s7b0n0', 'x1000c1s7b0', 'x1000', 'X3000C0S17B1N1']) t.ok(parseXname(s), s)
  for (const s of ['x1000c1s7b0n0z', 'n0', 'x', 'x1000c1s7n0']) t.equal(parseXname(s), undefined, `rejects ${s}`)
  t.equal(parseName('NID001'), 'nid001')
  for (const s of ['-nid', 'nid_1', 'a'.repeat(64), '', 'nid 1']) t.equal(parseName(s), undefined, `rejects '${s}'`)
})
